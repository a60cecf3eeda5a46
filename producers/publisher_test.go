package producers_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/producers"
)

// The publisher upstream uses puts the trace context of the caller's ctx on the
// message, whichever way it publishes, so the engine continues the caller's trace.
func TestPublisherInjectsTheTraceContextOfItsContext(t *testing.T) {
	js := testenv.StartNATS(t).JetStream(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TRACE_TEST", Subjects: []string{"billing.>"}}); err != nil {
		t.Fatal(err)
	}
	pub := producers.NewPublisher(js)
	provider := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = provider.Shutdown(ctx) })
	spanCtx, span := provider.Tracer("billing").Start(ctx, "bill the customer")
	defer span.End()
	remote := tracing.Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=opaque")

	newEvent := func(id string) events.Event {
		ev, err := events.New(events.ResourceReleased, "acct-pub", "/billing", id, time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC), &events.ResourceReleasedData{ResourceID: "ecs-1"})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	tests := []struct {
		name string
		ctx  context.Context
		want trace.SpanContext // not valid: no header
		send func(ctx context.Context, ev events.Event) error
	}{
		{name: "Publish, the caller's span", ctx: spanCtx, want: span.SpanContext(), send: func(ctx context.Context, ev events.Event) error {
			_, err := pub.Publish(ctx, ev)
			return err
		}},
		{name: "Publish, a remote context", ctx: trace.ContextWithRemoteSpanContext(ctx, remote), want: remote, send: func(ctx context.Context, ev events.Event) error {
			_, err := pub.Publish(ctx, ev)
			return err
		}},
		{name: "Publish, none", ctx: ctx, send: func(ctx context.Context, ev events.Event) error {
			_, err := pub.Publish(ctx, ev)
			return err
		}},
		{name: "PublishAll", ctx: spanCtx, want: span.SpanContext(), send: func(ctx context.Context, ev events.Event) error {
			_, err := pub.PublishAll(ctx, []events.Event{ev}, 0, 0, nil)
			return err
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := newEvent("evt-pub-" + string(rune('a'+i)))
			if err := tt.send(tt.ctx, ev); err != nil {
				t.Fatal(err)
			}
			stored, err := js.Stream(ctx, "TRACE_TEST")
			if err != nil {
				t.Fatal(err)
			}
			msg, err := stored.GetLastMsgForSubject(ctx, ev.NATSSubject())
			if err != nil {
				t.Fatal(err)
			}
			if msg.Header.Get("Nats-Msg-Id") != ev.ID {
				t.Fatalf("stored message %s is not event %s", msg.Header.Get("Nats-Msg-Id"), ev.ID)
			}
			got := tracing.FromHeader(msg.Header)
			if !tt.want.IsValid() {
				if msg.Header.Get("traceparent") != "" {
					t.Fatalf("traceparent %q without a trace context in ctx", msg.Header.Get("traceparent"))
				}
				return
			}
			if got.TraceID() != tt.want.TraceID() || got.SpanID() != tt.want.SpanID() || got.TraceState().String() != tt.want.TraceState().String() {
				t.Fatalf("header names %s/%s %q, want %s/%s %q", got.TraceID(), got.SpanID(), got.TraceState(), tt.want.TraceID(), tt.want.SpanID(), tt.want.TraceState())
			}
		})
	}
}
