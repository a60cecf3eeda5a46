// Package producers publishes to JetStream: the outbox relay that delivers the engine's
// decisions to notifiers and the payout gateway, and a client upstream systems (and
// refundctl, and tests) use to publish inbound CloudEvents.
package producers

import (
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
	ClaimStaleOutbox(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]redisstore.OutboxEntry, error)
	AckOutbox(ctx context.Context, entries []redisstore.OutboxEntry) error
}

var _ Outbox = (*redisstore.Store)(nil)

// RelayConfig tunes the relay. Zero values take the defaults stated on each field.
type RelayConfig struct {
	// Consumer names this relay in the outbox consumer group; unique per instance.
	Consumer string
	// BatchSize is the most entries read per partition at once. Default 500.
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
		cfg.BatchSize = 500
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
	for {
		if time.Since(lastClaim) >= r.cfg.ClaimAfter/2 {
			lastClaim = time.Now()
			r.relay(context.WithoutCancel(ctx), r.claimStale)
		}
		for r.relay(context.WithoutCancel(ctx), r.readNew) > 0 {
		}
		select {
		case <-ctx.Done():
			drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
			defer cancel()
			for drainCtx.Err() == nil && r.relay(drainCtx, r.readNew) > 0 {
			}
			return nil
		case <-r.wake:
		case <-ticker.C:
		}
	}
}

func (r *Relay) readNew(ctx context.Context) ([]redisstore.OutboxEntry, error) {
	return r.outbox.ReadOutbox(ctx, r.cfg.Consumer, r.cfg.BatchSize)
}

func (r *Relay) claimStale(ctx context.Context) ([]redisstore.OutboxEntry, error) {
	return r.outbox.ClaimStaleOutbox(ctx, r.cfg.Consumer, r.cfg.ClaimAfter, r.cfg.BatchSize)
}

// relay takes one set of entries, publishes them and acknowledges the published ones.
// It returns how many it took, so the caller loops while there is more.
func (r *Relay) relay(ctx context.Context, take func(context.Context) ([]redisstore.OutboxEntry, error)) int {
	entries, err := take(ctx)
	if err != nil {
		r.log.Error().Err(err).Msg("read outbox")
		return 0
	}
	if len(entries) == 0 {
		return 0
	}
	done := r.publish(ctx, entries)
	if err := r.outbox.AckOutbox(ctx, done); err != nil {
		// They stay pending and are claimed again; JetStream drops the republish as a
		// duplicate within its window.
		r.log.Error().Err(err).Int("entries", len(done)).Msg("acknowledge outbox entries")
	}
	return len(entries)
}

// publish sends every entry asynchronously and waits for JetStream's acks; it returns
// the entries JetStream stored. Order within a partition is kept because one
// connection publishes them in outbox order.
func (r *Relay) publish(ctx context.Context, entries []redisstore.OutboxEntry) []redisstore.OutboxEntry {
	futures := make([]jetstream.PubAckFuture, len(entries))
	for i, e := range entries {
		msg := nats.NewMsg(e.Subject)
		msg.Data = e.Body
		msg.Header.Set(nats.MsgIdHdr, e.ID)
		msg.Header.Set("Content-Type", "application/cloudevents+json")
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			r.failed.Inc()
			r.log.Warn().Err(err).Str("event_id", e.ID).Msg("publish outbound event; will retry")
			continue
		}
		futures[i] = f
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	done := make([]redisstore.OutboxEntry, 0, len(entries))
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
			done = append(done, entries[i])
		case err := <-f.Err():
			r.failed.Inc()
			r.log.Warn().Err(err).Str("event_id", entries[i].ID).Msg("outbound event not stored; will retry")
		case <-timeout.C:
			r.failed.Inc()
			r.log.Warn().Str("event_id", entries[i].ID).Msg("no ack for outbound event; will retry")
			return done
		case <-ctx.Done():
			return done
		}
	}
	r.published.Add(float64(len(done)))
	return done
}
