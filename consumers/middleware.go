package consumers

import (
	"context"
	"time"

	"github.com/payinfra/refunds/events"
)

// BatchHandler processes one batch of fetched messages and reports what became of
// each. An error stops the intake.
type BatchHandler func(ctx context.Context, b *Batch) ([]Settled, error)

// Settled is what became of one message: its event type ("malformed" when it did not
// decode) and its outcome (applied, duplicate, conflict, failed, refused, waiting).
type Settled struct {
	Type    events.Type
	Outcome string
}

// Middleware wraps a BatchHandler with a cross-cutting concern (metrics, tracing),
// as Watermill's handler middleware does, so the handler itself stays about events.
type Middleware func(BatchHandler) BatchHandler

// chain wraps h in mws, the first outermost.
func chain(h BatchHandler, mws ...Middleware) BatchHandler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// withMetrics counts every message by type and outcome and times every batch. With nil
// metrics it records nothing.
func withMetrics(m *Metrics) Middleware {
	return func(next BatchHandler) BatchHandler {
		if m == nil {
			return next
		}
		return func(ctx context.Context, b *Batch) ([]Settled, error) {
			started := time.Now()
			report, err := next(ctx, b)
			for _, s := range report {
				m.count(s.Type, s.Outcome)
			}
			m.observeBatch(len(b.Msgs), time.Since(started))
			return report, err
		}
	}
}
