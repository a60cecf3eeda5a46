package consumers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/state"
)

// runIntakeWith runs an intake with cfg until the test ends.
func (h *harness) runIntakeWith(t *testing.T, cfg consumers.Config) {
	t.Helper()
	in := consumers.NewIntake(h.js, h.cons, h.store, zerolog.New(zerolog.NewTestWriter(t)), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = in.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// outboxEntryCausedBy waits for the outbound event the intake saved because of event
// causeID of account, and returns its outbox entry.
func (h *harness) outboxEntryCausedBy(t *testing.T, account, causeID string) state.OutboxEntry {
	t.Helper()
	var found state.OutboxEntry
	eventually(t, 10*time.Second, func() error {
		stale, err := h.store.ClaimStaleOutbox(context.Background(), "trace-reader", 0, 10000)
		if err != nil {
			return err
		}
		fresh, err := h.store.ReadOutbox(context.Background(), "trace-reader", 10000)
		if err != nil {
			return err
		}
		for _, e := range append(stale, fresh...) {
			ev, err := events.Decode(e.Body)
			if err != nil || ev.Subject != account {
				continue
			}
			if data, ok := ev.Payload.(*events.BalanceChangedData); ok && data.CauseID == causeID {
				found = e
				return nil
			}
		}
		return fmt.Errorf("no outbound event of %s caused by %s yet", account, causeID)
	})
	return found
}

const inboundTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// inboundContext is a context whose publish carries inboundTraceParent.
func inboundContext() (context.Context, trace.SpanContext) {
	sc := tracing.Parse(inboundTraceParent, "vendor=opaque")
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

func TestIntakeCarriesTheTraceContext(t *testing.T) {
	h := startHarness(t)
	traced, inbound := inboundContext()

	t.Run("without a tracer, the outbound events carry the inbound context as received", func(t *testing.T) {
		h.runIntakeWith(t, consumers.Config{})
		h.publish(t, openAccount(t, "acct-trace-off"))
		if _, err := h.pub.Publish(traced, topUp(t, "acct-trace-off", "t-traced-off", "10.00")); err != nil {
			t.Fatal(err)
		}
		h.publish(t, topUp(t, "acct-trace-off", "t-untraced-off", "5.00"))

		e := h.outboxEntryCausedBy(t, "acct-trace-off", "t-traced-off")
		if e.TraceParent != inboundTraceParent || e.TraceState != "vendor=opaque" {
			t.Errorf("outbound saved with %q %q, want the inbound %q vendor=opaque", e.TraceParent, e.TraceState, inboundTraceParent)
		}
		if e := h.outboxEntryCausedBy(t, "acct-trace-off", "t-untraced-off"); e.TraceParent != "" || e.TraceState != "" {
			t.Errorf("outbound of an event without a trace context saved with %q %q, want none", e.TraceParent, e.TraceState)
		}
	})

	t.Run("with a tracer, a span per event, child of the inbound context, and the outbound carry it", func(t *testing.T) {
		exporter := tracetest.NewInMemoryExporter()
		provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
		t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
		h.runIntakeWith(t, consumers.Config{Tracer: provider.Tracer("test")})
		h.publish(t, openAccount(t, "acct-trace-on"))
		if _, err := h.pub.Publish(traced, topUp(t, "acct-trace-on", "t-traced-on", "10.00")); err != nil {
			t.Fatal(err)
		}
		h.publish(t, topUp(t, "acct-trace-on", "t-untraced-on", "5.00"))
		withParent := h.outboxEntryCausedBy(t, "acct-trace-on", "t-traced-on")
		root := h.outboxEntryCausedBy(t, "acct-trace-on", "t-untraced-on")

		spanOf := func(eventID string) tracetest.SpanStub {
			t.Helper()
			var found tracetest.SpanStub
			eventually(t, 10*time.Second, func() error {
				for _, s := range exporter.GetSpans() {
					for _, a := range s.Attributes {
						if a.Key == "cloudevents.event_id" && a.Value.AsString() == eventID {
							found = s
							return nil
						}
					}
				}
				return fmt.Errorf("no span for event %s yet", eventID)
			})
			return found
		}

		span := spanOf("t-traced-on")
		if span.Name != string(events.TopupReceived) || span.SpanKind != trace.SpanKindConsumer {
			t.Errorf("span %q kind %v, want %s, consumer", span.Name, span.SpanKind, events.TopupReceived)
		}
		if span.Parent.SpanID() != inbound.SpanID() || span.SpanContext.TraceID() != inbound.TraceID() || !span.Parent.IsRemote() {
			t.Errorf("span in trace %s with parent %s, want trace %s, remote parent %s", span.SpanContext.TraceID(), span.Parent.SpanID(), inbound.TraceID(), inbound.SpanID())
		}
		if want, _ := tracing.Format(span.SpanContext); withParent.TraceParent != want {
			t.Errorf("outbound saved with %q, want the event's span %q", withParent.TraceParent, want)
		}
		if !hasAttribute(span.Attributes, "refunds.outcome", "applied") || !hasAttribute(span.Attributes, "cloudevents.event_subject", "acct-trace-on") {
			t.Errorf("span attributes %v lack the outcome or the account", span.Attributes)
		}

		rootSpan := spanOf("t-untraced-on")
		if rootSpan.Parent.IsValid() {
			t.Errorf("span of an event without a trace context has parent %s, want a new root", rootSpan.Parent.SpanID())
		}
		if want, _ := tracing.Format(rootSpan.SpanContext); root.TraceParent != want || want == "" {
			t.Errorf("outbound saved with %q, want the new root span's %q", root.TraceParent, want)
		}
	})

	t.Run("a dead letter carries the inbound trace context", func(t *testing.T) {
		h.runIntakeWith(t, consumers.Config{})
		msg := nats.NewMsg("billing.topup.received.acct-trace-dl")
		msg.Data = []byte(`{"not":"an event"}`)
		msg.Header.Set(nats.MsgIdHdr, "dl-traced")
		tracing.Inject(traced, msg.Header)
		if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		dl, err := h.js.OrderedConsumer(context.Background(), consumers.DeadLetterStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"deadletter.billing.topup.received.acct-trace-dl"},
		})
		if err != nil {
			t.Fatal(err)
		}
		parked, err := dl.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("no dead letter: %v", err)
		}
		if got := parked.Headers().Get("traceparent"); got != inboundTraceParent {
			t.Errorf("dead letter traceparent %q, want %q", got, inboundTraceParent)
		}
	})
}

func hasAttribute(attrs []attribute.KeyValue, key, value string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && a.Value.AsString() == value {
			return true
		}
	}
	return false
}
