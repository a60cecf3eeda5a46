package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/producers"
)

// outboundHeaders reads the headers of every event the engine published for account,
// by event: its type and, for a balance change, the id of the event that caused it.
type outboundMsg struct {
	event  events.Event
	header nats.Header
}

func (d *daemon) outboundMsgs(t *testing.T, account string) []outboundMsg {
	t.Helper()
	cons, err := d.js.OrderedConsumer(context.Background(), producers.OutboundStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"refunds.*.*." + account},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []outboundMsg
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		ev, err := events.Decode(msg.Data())
		if err != nil {
			t.Fatalf("the engine published an event that does not decode: %v", err)
		}
		out = append(out, outboundMsg{event: ev, header: msg.Headers()})
	}
}

// causedBy is the balance change published because of event causeID, once there is one.
func (d *daemon) causedBy(t *testing.T, account, causeID string) outboundMsg {
	t.Helper()
	var found outboundMsg
	waitFor(t, func() string {
		for _, m := range d.outboundMsgs(t, account) {
			if data, ok := m.event.Payload.(*events.BalanceChangedData); ok && data.CauseID == causeID {
				found = m
				return ""
			}
		}
		return fmt.Sprintf("no balance change of %s caused by %s published yet", account, causeID)
	})
	return found
}

// publishIn publishes an event with the trace context of ctx, as upstream does.
func (d *daemon) publishIn(t *testing.T, ctx context.Context, typ events.Type, account, id string, p events.Payload) {
	t.Helper()
	ev, err := events.New(typ, account, "/billing", id, time.Now().UTC(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pub.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
}

// otlpCollector stands in for an OTLP/HTTP collector: it counts the trace exports
// posted to it.
type otlpCollector struct {
	mu      sync.Mutex
	exports int
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && len(body) > 0 {
		c.mu.Lock()
		c.exports++
		c.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *otlpCollector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exports
}

func TestRefunddCarriesTheTraceContext(t *testing.T) {
	natsURL, redisURL := testenv.StartNATS(t).URL, testenv.StartRedis(t).URL
	const inboundParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	inbound := tracing.Parse(inboundParent, "")
	traced := trace.ContextWithRemoteSpanContext(context.Background(), inbound)
	topUp := func(id string) *events.TopupReceivedData {
		return &events.TopupReceivedData{TopupID: id, Amount: events.MustAmount("10.00"), Currency: "CNY", Channel: "alipay", PayerType: "individual", PayerName: "Li Si"}
	}
	opened := &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Si", Verified: true}

	t.Run("exporter off (the default): the inbound context as received, none without one or from a timer", func(t *testing.T) {
		d := startDaemon(t, natsURL, redisURL, withHold(testHold))
		const acct = "acct-trace-off"
		d.publishIn(t, context.Background(), events.AccountOpened, acct, acct+"-open", opened)
		d.publishIn(t, traced, events.TopupReceived, acct, "e-traced", topUp("t-traced"))
		d.publishIn(t, context.Background(), events.TopupReceived, acct, "e-untraced", topUp("t-untraced"))

		if got := d.causedBy(t, acct, "e-traced").header.Get("traceparent"); got != inboundParent {
			t.Errorf("outbound event of a traced inbound event: traceparent %q, want the inbound %q", got, inboundParent)
		}
		if got := d.causedBy(t, acct, "e-untraced").header.Get("traceparent"); got != "" {
			t.Errorf("outbound event of an inbound event without a trace context: traceparent %q, want none", got)
		}

		// The reserve is frozen because of a traced event, and unfrozen by a timer.
		d.publishIn(t, traced, events.ResourceCreated, acct, acct+"-create", &events.ResourceCreatedData{ResourceID: "ecs-1", BillingMode: "payg"})
		d.publishIn(t, traced, events.ResourceReleased, acct, acct+"-release", &events.ResourceReleasedData{ResourceID: "ecs-1"})
		var frozen, unfrozen []outboundMsg
		waitFor(t, func() string {
			frozen, unfrozen = nil, nil
			for _, m := range d.outboundMsgs(t, acct) {
				switch m.event.Type {
				case events.ReserveFrozen:
					frozen = append(frozen, m)
				case events.ReserveUnfrozen:
					unfrozen = append(unfrozen, m)
				}
			}
			if len(frozen) != 1 || len(unfrozen) != 1 {
				return fmt.Sprintf("%d reserve frozen and %d unfrozen published, want 1 of each", len(frozen), len(unfrozen))
			}
			return ""
		})
		if got := frozen[0].header.Get("traceparent"); got != inboundParent {
			t.Errorf("reserve frozen by a traced event: traceparent %q, want %q", got, inboundParent)
		}
		if got := unfrozen[0].header.Get("traceparent"); got != "" {
			t.Errorf("reserve unfrozen by a timer: traceparent %q, want none with the exporter off", got)
		}
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("exporter on: the same trace through the engine's spans, a new trace without one, spans exported", func(t *testing.T) {
		collector := &otlpCollector{}
		srv := httptest.NewServer(collector)
		t.Cleanup(srv.Close)
		d := startDaemon(t, natsURL, redisURL, func(c *Config, _ *hooks) { c.OTLPEndpoint = srv.URL })
		const acct = "acct-trace-on"
		d.publishIn(t, context.Background(), events.AccountOpened, acct, acct+"-open", opened)
		d.publishIn(t, traced, events.TopupReceived, acct, "e-traced-on", topUp("t-traced-on"))
		d.publishIn(t, context.Background(), events.TopupReceived, acct, "e-untraced-on", topUp("t-untraced-on"))

		got := tracing.FromHeader(d.causedBy(t, acct, "e-traced-on").header)
		if got.TraceID() != inbound.TraceID() || got.SpanID() == inbound.SpanID() {
			t.Errorf("outbound event of a traced inbound event in trace %s from span %s; want trace %s, from the engine's own span (not %s)",
				got.TraceID(), got.SpanID(), inbound.TraceID(), inbound.SpanID())
		}
		fresh := tracing.FromHeader(d.causedBy(t, acct, "e-untraced-on").header)
		if !fresh.IsValid() || fresh.TraceID() == inbound.TraceID() {
			t.Errorf("outbound event of an inbound event without a trace context: %v (trace %s), want a valid new trace", fresh.IsValid(), fresh.TraceID())
		}
		// A stop exports what the batcher still holds.
		if err := d.stop(); err != nil {
			t.Fatal(err)
		}
		if collector.count() == 0 {
			t.Error("no trace export reached the OTLP endpoint")
		}
	})
}
