package producers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/events"
)

// Publisher publishes inbound CloudEvents the way upstream systems must: on subject
// "<type>.<account>", with Nats-Msg-Id set to the event id. refundctl and the tests use
// it; billing, the console, review and the payout gateway do the same in their code.
type Publisher struct{ js jetstream.JetStream }

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish validates ev, publishes it and waits until JetStream has stored it.
func (p *Publisher) Publish(ctx context.Context, ev events.Event) (*jetstream.PubAck, error) {
	body, err := ev.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return p.PublishRaw(ctx, ev.NATSSubject(), ev.ID, body)
}

// PublishRaw publishes body as is, for replaying captured events. msgID may be empty.
func (p *Publisher) PublishRaw(ctx context.Context, subject, msgID string, body []byte) (*jetstream.PubAck, error) {
	msg := nats.NewMsg(subject)
	msg.Data = body
	if msgID != "" {
		msg.Header.Set(nats.MsgIdHdr, msgID)
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", subject, err)
	}
	return ack, nil
}
