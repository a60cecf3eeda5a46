// Package consumers is the engine's intake: it takes inbound events from JetStream in
// batches, decides them with package state, saves each decision atomically with its
// outbound events, and only then acknowledges. Events that can never be applied are
// parked on the dead-letter stream with their reason; they never block the others.
package consumers

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/events"
)

// Stream and consumer names. Other teams publish to the subjects; the names are ours.
const (
	InboundStream    = "REFUNDS_INBOUND"
	DeadLetterStream = "REFUNDS_DEADLETTER"
	// DurableConsumer is shared by every refundd instance, so they split the work.
	DurableConsumer = "refundd"
)

// StreamSettings are the JetStream settings the intake creates its stream and consumer with.
type StreamSettings struct {
	// AckWait is how long a fetched event may stay unacknowledged before JetStream
	// redelivers it (to this or another instance). Default 30 seconds.
	AckWait time.Duration
	// MaxAge is how long the inbound stream keeps events. Default 7 days; the
	// idempotency retention in Redis must be longer.
	MaxAge time.Duration
	// Replicas of the streams; 1 for a single server, 3 in production clusters.
	Replicas int
	// DeadLetterMaxAge is how long refused events are kept. Default 30 days.
	DeadLetterMaxAge time.Duration
}

func (s StreamSettings) withDefaults() StreamSettings {
	if s.AckWait <= 0 {
		s.AckWait = 30 * time.Second
	}
	if s.MaxAge <= 0 {
		s.MaxAge = 7 * 24 * time.Hour
	}
	if s.Replicas <= 0 {
		s.Replicas = 1
	}
	if s.DeadLetterMaxAge <= 0 {
		s.DeadLetterMaxAge = 30 * 24 * time.Hour
	}
	return s
}

// InboundSubjects are the subjects of every inbound type in the catalog, one wildcard
// token for the account: "billing.topup.received.*" and so on. Listing them rather than
// "billing.>" leaves other teams' subjects to their own streams.
func InboundSubjects() []string {
	var subjects []string
	for _, spec := range events.Catalog() {
		if spec.Direction == events.Inbound {
			subjects = append(subjects, string(spec.Type)+".*")
		}
	}
	return subjects
}

// EnsureStreams creates or updates the inbound and dead-letter streams and the durable
// pull consumer, and returns the consumer.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, settings StreamSettings) (jetstream.Consumer, error) {
	settings = settings.withDefaults()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        InboundStream,
		Description: "Billing, console, review and payout events the refund engine consumes",
		Subjects:    InboundSubjects(),
		Storage:     jetstream.FileStorage,
		Replicas:    settings.Replicas,
		MaxAge:      settings.MaxAge,
		// What NATS itself takes (max_payload, 1 MiB), headers included: a larger
		// limit would promise room the server does not give.
		MaxMsgSize: events.MaxEventSize,
		Duplicates: 2 * time.Minute,
	}); err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", InboundStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "Inbound events the refund engine refused, with the reason in header Refunds-Reason",
		Subjects:    []string{events.DeadLetterPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    settings.Replicas,
		// Dead letters hold whole events, bank details included: kept long enough to
		// investigate and replay, not for ever.
		MaxAge:     settings.DeadLetterMaxAge,
		Duplicates: 10 * time.Minute,
	}); err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", DeadLetterStream, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, InboundStream, jetstream.ConsumerConfig{
		Durable:       DurableConsumer,
		Description:   "refundd intake, shared by every instance",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       settings.AckWait,
		MaxAckPending: 20000,
		// Never give up on an event by delivery count: transient failures (Redis down)
		// must not lose money events. Poison events are dead-lettered explicitly.
		MaxDeliver: -1,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s: %w", DurableConsumer, err)
	}
	return cons, nil
}
