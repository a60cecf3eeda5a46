// Package producers publishes to JetStream: the outbox relay that delivers the engine's
// decisions to notifiers and the payout gateway, and a client upstream systems (and
// refundctl, and tests) use to publish inbound CloudEvents.
package producers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/state/redisstore"
)

// OutboundStream holds every event the engine publishes ("refunds.>").
const OutboundStream = "REFUNDS_EVENTS"

// EnsureOutboundStream creates or updates the stream notifiers consume from. Its
// duplicate window is longer than the relay's claim delay, so an event republished
// after a relay crash is dropped by JetStream rather than delivered twice.
func EnsureOutboundStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas <= 0 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        OutboundStream,
		Description: "Refund engine decisions: case status, review and payout requests, reserve, balances",
		Subjects:    []string{"refunds.>"},
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      30 * 24 * time.Hour,
		Duplicates:  10 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", OutboundStream, err)
	}
	return nil
}

// Outbox is what the relay needs from the store.
type Outbox interface {
	ReadOutbox(ctx context.Context, consumer string, count int) ([]redisstore.OutboxEntry, error)
	ReadOwnPendingOutbox(ctx context.Context, consumer string, count int) ([]redisstore.OutboxEntry, error)
	ClaimStaleOutbox(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]redisstore.OutboxEntry, error)
	AckOutbox(ctx context.Context, entries []redisstore.OutboxEntry) error
}

var _ Outbox = (*redisstore.Store)(nil)

// RelayConfig tunes the relay. Zero values take the defaults stated on each field.
type RelayConfig struct {
	// Consumer names this relay in the outbox consumer group; unique per instance.
	Consumer string
	// BatchSize is the most entries read per partition at once. Default 200: with 16
	// partitions that keeps the publishes in flight under nats.go's default limit of
	// 4,000 pending asynchronous publishes.
	BatchSize int
	// Poll is how often the outbox is checked when nothing wakes the relay. Default
	// 100ms. The intake wakes it after each save, so this bounds only the delay for
	// entries written by another instance whose relay is gone.
	Poll time.Duration
	// ClaimAfter is how long an entry may stay read but unpublished before another
	// relay takes it over. Default 30 seconds.
	ClaimAfter time.Duration
	// Registerer receives the relay's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Relay publishes outbox entries to JetStream and removes them once JetStream has
// stored them. Each is published with Nats-Msg-Id set to its event id.
type Relay struct {
	js        jetstream.JetStream
	outbox    Outbox
	log       zerolog.Logger
	cfg       RelayConfig
	wake      chan struct{}
	published prometheus.Counter
	failed    prometheus.Counter
}

// NewRelay returns a relay from outbox to js.
func NewRelay(js jetstream.JetStream, outbox Outbox, log zerolog.Logger, cfg RelayConfig) (*Relay, error) {
	if cfg.Consumer == "" {
		return nil, errors.New("relay: a consumer name is required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.ClaimAfter <= 0 {
		cfg.ClaimAfter = 30 * time.Second
	}
	r := &Relay{
		js: js, outbox: outbox, log: log, cfg: cfg,
		wake: make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refunds_relay_published_total", Help: "Outbound events stored by JetStream.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "refunds_relay_publish_failures_total", Help: "Outbound publishes that failed and will be retried.",
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(r.published, r.failed)
	}
	return r, nil
}

// Wake makes the relay look at the outbox now. It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx is cancelled, then publishes what is already in the outbox
// (for at most drainTimeout) and returns.
func (r *Relay) Run(ctx context.Context, drainTimeout time.Duration) error {
	ticker := time.NewTicker(r.cfg.Poll)
	defer ticker.Stop()
	lastClaim := time.Time{}
	work := context.WithoutCancel(ctx)
	for {
		for ctx.Err() == nil {
			// Entries of other relays that died are claimed on a timer, busy or not.
			if time.Since(lastClaim) >= r.cfg.ClaimAfter/2 {
				lastClaim = time.Now()
				r.relay(work, r.claimStale)
			}
			// This relay's own failed publishes go again first, so that within a
			// partition nothing newer overtakes them. After a failure, wait for the
			// next poll rather than spin while NATS is away.
			if taken, failed := r.relay(work, r.readOwnPending); failed > 0 {
				break
			} else if taken > 0 {
				continue
			}
			if taken, failed := r.relay(work, r.readNew); taken == 0 || failed > 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
			defer cancel()
			for drainCtx.Err() == nil {
				if taken, failed := r.relay(drainCtx, r.readNew); taken == 0 || failed > 0 {
					break
				}
			}
			return nil
		case <-r.wake:
		case <-ticker.C:
		}
	}
}

func (r *Relay) readOwnPending(ctx context.Context) ([]redisstore.OutboxEntry, error) {
	return r.outbox.ReadOwnPendingOutbox(ctx, r.cfg.Consumer, r.cfg.BatchSize)
}

func (r *Relay) readNew(ctx context.Context) ([]redisstore.OutboxEntry, error) {
	return r.outbox.ReadOutbox(ctx, r.cfg.Consumer, r.cfg.BatchSize)
}

func (r *Relay) claimStale(ctx context.Context) ([]redisstore.OutboxEntry, error) {
	return r.outbox.ClaimStaleOutbox(ctx, r.cfg.Consumer, r.cfg.ClaimAfter, r.cfg.BatchSize)
}

// relay takes one set of entries, publishes them and acknowledges the published ones.
// It returns how many it took and how many it could not publish, so the caller loops
// while there is more and backs off after a failure.
func (r *Relay) relay(ctx context.Context, take func(context.Context) ([]redisstore.OutboxEntry, error)) (taken, failed int) {
	entries, err := take(ctx)
	if err != nil {
		r.log.Error().Err(err).Msg("read outbox")
		return 0, 1
	}
	if len(entries) == 0 {
		return 0, 0
	}
	done := r.publish(ctx, entries)
	if err := r.outbox.AckOutbox(ctx, done); err != nil {
		// They stay pending and go again; JetStream drops the republish as a duplicate
		// within its window.
		r.log.Error().Err(err).Int("entries", len(done)).Msg("acknowledge outbox entries")
		return len(entries), len(entries)
	}
	return len(entries), len(entries) - len(done)
}

// publish sends every entry asynchronously and waits for JetStream's acks; it returns
// the entries that may be acknowledged: in each partition, those JetStream stored up to
// the first that it did not. The rest stay this relay's pending entries and go again,
// in order, before anything newer. One connection publishes in outbox order, so a
// single relay keeps each partition's order; several relays sharing the outbox do not
// order between them.
func (r *Relay) publish(ctx context.Context, entries []redisstore.OutboxEntry) []redisstore.OutboxEntry {
	futures := make([]jetstream.PubAckFuture, len(entries))
	var firstErr error
	for i, e := range entries {
		msg := nats.NewMsg(e.Subject)
		msg.Data = e.Body
		msg.Header.Set(nats.MsgIdHdr, e.ID)
		msg.Header.Set("Content-Type", "application/cloudevents+json")
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		futures[i] = f
	}
	// One deadline for the whole set: once it passes, every wait below ends at once.
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make([]redisstore.OutboxEntry, 0, len(entries))
	blocked := make(map[int]bool) // partitions with an entry not stored
	for i, f := range futures {
		p := entries[i].Partition()
		stored := false
		if f != nil && !blocked[p] {
			select {
			case <-f.Ok():
				stored = true
			case err := <-f.Err():
				firstErr = cmp.Or(firstErr, err)
			case <-waitCtx.Done():
				firstErr = cmp.Or(firstErr, error(fmt.Errorf("no ack from JetStream: %w", waitCtx.Err())))
			}
		}
		if !stored {
			// Later entries of this partition are not acknowledged even if stored:
			// they go again after this one (JetStream drops the repeats by id).
			r.failed.Inc()
			blocked[p] = true
			continue
		}
		done = append(done, entries[i])
	}
	r.published.Add(float64(len(done)))
	if failed := len(entries) - len(done); failed > 0 {
		r.log.Warn().Err(firstErr).Int("not_stored", failed).Int("stored", len(done)).Msg("outbound events not stored; will retry in order")
	}
	return done
}
