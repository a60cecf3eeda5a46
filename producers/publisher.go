package producers

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/tracing"
)

// Publisher publishes inbound CloudEvents the way upstream systems must: on subject
// "<type>.<account>", with Nats-Msg-Id set to the event id, and with the W3C trace
// context (traceparent, tracestate) of the caller's ctx when it has one, so the
// engine's work and the events it publishes join the caller's trace. refundctl and the
// tests use it; billing, the console, review and the payout gateway do the same in
// their code.
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
	tracing.Inject(ctx, msg.Header)
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", subject, err)
	}
	return ack, nil
}

// PublishResult counts what PublishAll did.
type PublishResult struct {
	Published  int // stored by JetStream
	Duplicates int // dropped by JetStream as repeats of a Nats-Msg-Id within its window
}

// PublishAll publishes evs asynchronously, at most window at a time, and returns once
// JetStream has confirmed every one. progress, when not nil, is called with how many
// are confirmed so far, every step confirmations and at the end. The first failed
// publish stops it: what was confirmed before stands, and its count is returned.
func (p *Publisher) PublishAll(ctx context.Context, evs []events.Event, window, step int, progress func(done int)) (PublishResult, error) {
	var res PublishResult
	if window <= 0 {
		window = 256
	}
	pending := make([]jetstream.PubAckFuture, 0, window)
	confirm := func() error {
		for _, f := range pending {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					res.Duplicates++
				} else {
					res.Published++
				}
			case err := <-f.Err():
				return fmt.Errorf("publish to %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
			if done := res.Published + res.Duplicates; progress != nil && step > 0 && done%step == 0 {
				progress(done)
			}
		}
		pending = pending[:0]
		return nil
	}
	for _, ev := range evs {
		body, err := ev.Encode()
		if err != nil {
			return res, fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		msg := nats.NewMsg(ev.NATSSubject())
		msg.Data = body
		msg.Header.Set(nats.MsgIdHdr, ev.ID)
		tracing.Inject(ctx, msg.Header)
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return res, fmt.Errorf("publish to %s: %w", msg.Subject, err)
		}
		if pending = append(pending, f); len(pending) == window {
			if err := confirm(); err != nil {
				return res, err
			}
		}
	}
	err := confirm()
	if progress != nil {
		progress(res.Published + res.Duplicates)
	}
	return res, err
}
