package consumers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/events"
)

// BatchHandler processes one batch of fetched messages and reports what became of
// each. An error stops the intake.
type BatchHandler func(ctx context.Context, b *Batch) ([]Settled, error)

// Settled is what became of one message: its event type ("malformed" when it did not
// decode) and its outcome (applied, duplicate, conflict, failed, refused, waiting).
type Settled struct {
	// Msg is the message's index in the batch's Msgs.
	Msg     int
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

// withTracing records a span per message of the batch, named for its event type
// ("malformed" for one that did not decode), a child of the trace context its publisher
// sent or a new root without one. The outbound events an event causes carry its span's
// context (decodedMsg.trace), so the notifiers' work joins the same trace. The spans end
// once the batch is settled, with what became of each event. The attributes name the
// event and its account, never the payload: a withdrawal carries bank account numbers
// and payee names. With a nil tracer it records nothing (see Config.Tracer).
func withTracing(tracer trace.Tracer) Middleware {
	return func(next BatchHandler) BatchHandler {
		if tracer == nil {
			return next
		}
		return func(ctx context.Context, b *Batch) ([]Settled, error) {
			spans := make([]trace.Span, len(b.Msgs))
			for i, m := range b.Msgs {
				d := &b.decoded[i]
				name := "malformed"
				attrs := []attribute.KeyValue{
					attribute.String("messaging.system", "nats"),
					attribute.String("messaging.operation.type", "process"),
					attribute.String("messaging.destination.name", m.Subject()),
				}
				if d.err == nil {
					name = string(d.event.Type)
					attrs = append(attrs,
						attribute.String("cloudevents.event_id", d.event.ID),
						attribute.String("cloudevents.event_type", string(d.event.Type)),
						attribute.String("cloudevents.event_subject", d.event.Subject),
					)
				}
				opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
				parent := ctx
				if d.trace.IsValid() {
					parent = trace.ContextWithRemoteSpanContext(ctx, d.trace)
				} else {
					opts = append(opts, trace.WithNewRoot())
				}
				_, spans[i] = tracer.Start(parent, name, opts...)
				d.trace = spans[i].SpanContext()
			}
			report, err := next(ctx, b)
			for _, s := range report {
				if s.Msg < 0 || s.Msg >= len(spans) {
					continue
				}
				span := spans[s.Msg]
				span.SetAttributes(attribute.String("refunds.outcome", s.Outcome))
				switch s.Outcome {
				case "refused":
					span.SetStatus(codes.Error, "dead-lettered")
				case "failed":
					span.SetStatus(codes.Error, "will be retried")
				}
			}
			if err != nil {
				for _, span := range spans {
					span.SetStatus(codes.Error, err.Error())
				}
			}
			for _, span := range spans {
				span.End()
			}
			return report, err
		}
	}
}
