package producers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/producers"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

type relayHarness struct {
	js    jetstream.JetStream
	store *redisstore.Store
	rdb   *redis.Client
	nats  *testenv.NATS
}

func startRelayHarness(t *testing.T) *relayHarness {
	t.Helper()
	natsServer := testenv.StartNATS(t)
	// No reconnect buffer: a publish during an outage fails at once instead of
	// waiting in the client, so the relay's retry path is what keeps the order.
	js := natsServer.JetStream(t, nats.ReconnectWait(100*time.Millisecond), nats.ReconnectBufSize(-1))
	rdb := testenv.StartRedis(t).Client(t)
	store := testenv.PreparedStore(t, rdb)
	ctx := context.Background()
	if err := producers.EnsureOutboundStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	return &relayHarness{js: js, store: store, rdb: rdb, nats: natsServer}
}

// queue puts n outbound events for each of accounts in the outbox.
func (h *relayHarness) queue(t *testing.T, prefix string, accounts, n int) {
	t.Helper()
	for a := range accounts {
		id := fmt.Sprintf("%s-%d", prefix, a)
		for i := range n {
			eventID := fmt.Sprintf("rf-%s-%d", id, i)
			h.enqueue(t, id, eventID, "refunds.account.balance_changed."+id, `{"id":"`+eventID+`"}`)
		}
	}
}

// enqueue appends one encoded event to the account's outbox partition, in the fields
// the store's Lua step writes (id, subject, body). The relay publishes what it finds
// there, whatever wrote it; writing it directly lets a test queue bodies no decision
// would produce.
func (h *relayHarness) enqueue(t *testing.T, account, id, subject, body string) {
	t.Helper()
	key := fmt.Sprintf("rf:{p%02d}:outbox", redisstore.Partition(account))
	if err := h.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []any{"id", id, "subject", subject, "body", body}}).Err(); err != nil {
		t.Fatal(err)
	}
}

func (h *relayHarness) runRelay(t *testing.T, name string, claimAfter time.Duration) {
	t.Helper()
	h.runRelayWith(t, producers.RelayConfig{Consumer: name, ClaimAfter: claimAfter})
}

func (h *relayHarness) runRelayWith(t *testing.T, cfg producers.RelayConfig) {
	t.Helper()
	cfg.Poll = 20 * time.Millisecond
	relay, err := producers.NewRelay(h.js, h.store, zerolog.New(zerolog.NewTestWriter(t)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runForTheTest(t, relay)
}

// runForTheTest runs relay until the test ends.
func runForTheTest(t *testing.T, relay *producers.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = relay.Run(ctx, time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// storedInOrder lists the bodies stored for accounts whose id starts with prefix, in
// stream order.
func (h *relayHarness) storedInOrder(t *testing.T, prefix string) []string {
	t.Helper()
	cons, err := h.js.OrderedConsumer(context.Background(), producers.OutboundStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return bodies
		}
		if strings.HasPrefix(msg.Subject(), "refunds.account.balance_changed."+prefix) {
			bodies = append(bodies, string(msg.Data()))
		}
	}
}

// storedMsgs reads the messages stored on subject, in stream order.
func (h *relayHarness) storedMsgs(t *testing.T, subject string) []jetstream.Msg {
	t.Helper()
	cons, err := h.js.OrderedConsumer(context.Background(), producers.OutboundStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return msgs
		}
		msgs = append(msgs, msg)
	}
}

// stored counts the events in the outbound stream for accounts whose id starts with
// prefix, and how many distinct bodies they have.
func (h *relayHarness) stored(t *testing.T, prefix string) (total, distinct int) {
	t.Helper()
	cons, err := h.js.OrderedConsumer(context.Background(), producers.OutboundStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return total, len(seen)
		}
		if !strings.HasPrefix(msg.Subject(), "refunds.account.balance_changed."+prefix) {
			continue
		}
		total++
		seen[string(msg.Data())] = true
	}
}

func (h *relayHarness) waitForEmptyOutbox(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := h.store.OutboxLength(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox still holds %d entries", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRelay(t *testing.T) {
	h := startRelayHarness(t)
	ctx := context.Background()

	t.Run("every queued event is stored once and leaves the outbox", func(t *testing.T) {
		h.queue(t, "acct-normal", 40, 3)
		h.runRelay(t, "relay-normal", 30*time.Second)
		h.waitForEmptyOutbox(t)
		if total, distinct := h.stored(t, "acct-normal-"); total != 120 || distinct != 120 {
			t.Fatalf("stored %d events (%d distinct), want 120", total, distinct)
		}
	})

	// afterARelayDied queues 2 events for each of 5 accounts, has a relay named dead
	// take them all and die, then runs a relay named next (claiming after claimAfter)
	// and checks each event is stored once.
	afterARelayDied := func(t *testing.T, prefix, dead, next string, claimAfter time.Duration) {
		t.Helper()
		h.queue(t, prefix, 5, 2)
		taken, err := h.store.ReadOutbox(ctx, dead, 1000)
		if err != nil || len(taken) != 10 {
			t.Fatalf("the dying relay took %d entries, err %v", len(taken), err)
		}
		h.runRelay(t, next, claimAfter)
		h.waitForEmptyOutbox(t)
		if total, distinct := h.stored(t, prefix+"-"); total != 10 || distinct != 10 {
			t.Fatalf("stored %d events (%d distinct), want 10", total, distinct)
		}
	}

	t.Run("entries a relay took and never published are taken over by another", func(t *testing.T) {
		afterARelayDied(t, "acct-orphan", "relay-that-died", "relay-survivor", 200*time.Millisecond)
	})

	t.Run("through a NATS outage each account's events are stored once, in order", func(t *testing.T) {
		h.runRelay(t, "relay-outage", 30*time.Second)
		if err := h.nats.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			for i := range 4 {
				id := fmt.Sprintf("rf-outage-%d-%d", round, i)
				h.enqueue(t, "acct-outage", id, "refunds.account.balance_changed.acct-outage", id)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := h.nats.Start(ctx); err != nil {
			t.Fatal(err)
		}
		h.waitForEmptyOutbox(t)
		got := h.storedInOrder(t, "acct-outage")
		var want []string
		for round := range 3 {
			for i := range 4 {
				want = append(want, fmt.Sprintf("rf-outage-%d-%d", round, i))
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("stored\n %v\nwant\n %v", got, want)
		}
	})

	t.Run("an event JetStream keeps refusing is parked and its partition goes on", func(t *testing.T) {
		// No stream takes "nowhere.>": JetStream will never store the first event.
		h.enqueue(t, "acct-poison", "rf-poison", "nowhere.acct-poison", "rf-poison")
		for i := range 3 {
			id := fmt.Sprintf("rf-after-poison-%d", i)
			h.enqueue(t, "acct-poison", id, "refunds.account.balance_changed.acct-poison", id)
		}
		h.runRelay(t, "relay-poison", 30*time.Second)
		h.waitForEmptyOutbox(t)
		got := h.storedInOrder(t, "acct-poison")
		if want := "rf-after-poison-0 rf-after-poison-1 rf-after-poison-2"; strings.Join(got, " ") != want {
			t.Fatalf("stored %v, want %s", got, want)
		}
		parkedKey := fmt.Sprintf("rf:{p%02d}:outbox:parked", redisstore.Partition("acct-poison"))
		parked, err := h.rdb.XRange(ctx, parkedKey, "-", "+").Result()
		if err != nil || len(parked) != 1 || parked[0].Values["id"] != "rf-poison" {
			t.Fatalf("parked %+v, err %v: want the refused event", parked, err)
		}
	})

	t.Run("a relay started under the name of one that died holding entries publishes them", func(t *testing.T) {
		// Claiming them takes 30 s of idleness: only reading its own pending entries
		// can publish them in time.
		afterARelayDied(t, "acct-reborn", "relay-reborn", "relay-reborn", 30*time.Second)
	})

	t.Run("an event published before a crash and published again is stored once", func(t *testing.T) {
		h.queue(t, "acct-crash", 3, 2)
		// A relay published them, then died before acknowledging the outbox entries.
		taken, err := h.store.ReadOutbox(ctx, "relay-crashed", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range taken {
			msg := nats.NewMsg(e.Subject)
			msg.Data, msg.Header = e.Body, nats.Header{nats.MsgIdHdr: []string{e.ID}}
			if _, err := h.js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		h.runRelay(t, "relay-after-crash", 200*time.Millisecond)
		h.waitForEmptyOutbox(t)
		if total, distinct := h.stored(t, "acct-crash-"); total != 6 || distinct != 6 {
			t.Fatalf("stored %d events (%d distinct), want each of the 6 once", total, distinct)
		}
	})
}

// balanceStep is the step of an event (causeID) that opens account, at its expected
// version, with one outbound balance_changed event, outboundID.
func balanceStep(t *testing.T, account, causeID, outboundID, version string, at time.Time) state.Step {
	t.Helper()
	ev, err := events.New(events.BalanceChanged, account, state.Source, outboundID, at,
		&events.BalanceChangedData{CauseID: causeID, CauseType: events.TopupReceived, Currency: "CNY", Cash: events.MustAmount("5.00"), Withdrawable: events.MustAmount("5.00")})
	if err != nil {
		t.Fatal(err)
	}
	acct := state.NewAccount(account)
	acct.Opened, acct.Currency = true, "CNY"
	return state.Step{
		Event: state.EventRef{AccountID: account, EventID: causeID}, ExpectedVersion: version, Account: &acct,
		Outbound: []events.Event{ev},
	}
}

// commitTraced saves one step through the store's Lua script, as the intake does, with
// one outbound event and the given trace context.
func (h *relayHarness) commitTraced(t *testing.T, account, traceParent, traceState string) {
	t.Helper()
	step := balanceStep(t, account, "evt-"+account, "rf-"+account, "", time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))
	step.TraceParent, step.TraceState = traceParent, traceState
	if out, err := h.store.Commit(context.Background(), []state.Step{step}); err != nil || out[0].Outcome != state.Applied {
		t.Fatalf("commit: %v, err %v", out, err)
	}
}

const (
	savedParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	savedState  = "vendor=opaque"
)

func TestRelayPublishesTheTraceContext(t *testing.T) {
	h := startRelayHarness(t)

	t.Run("without a tracer: the saved context as it is, and none for an old-format entry", func(t *testing.T) {
		h.commitTraced(t, "acct-traced", savedParent, savedState)
		h.commitTraced(t, "acct-untraced", "", "")
		// An entry as the store wrote them before trace contexts were kept.
		h.enqueue(t, "acct-old", "rf-acct-old", "refunds.account.balance_changed.acct-old", `{"id":"rf-acct-old"}`)
		h.runRelay(t, "relay-trace", 30*time.Second)
		h.waitForEmptyOutbox(t)

		tests := []struct {
			account, wantParent, wantState string
		}{
			{"acct-traced", savedParent, savedState},
			{"acct-untraced", "", ""},
			{"acct-old", "", ""},
		}
		for _, tt := range tests {
			msgs := h.storedMsgs(t, "refunds.account.balance_changed."+tt.account)
			if len(msgs) != 1 {
				t.Fatalf("%s: %d messages stored, want 1", tt.account, len(msgs))
			}
			hdr := msgs[0].Headers()
			if got := hdr.Get("traceparent"); got != tt.wantParent {
				t.Errorf("%s: traceparent %q, want %q", tt.account, got, tt.wantParent)
			}
			if got := hdr.Get("tracestate"); got != tt.wantState {
				t.Errorf("%s: tracestate %q, want %q", tt.account, got, tt.wantState)
			}
			if hdr.Get(nats.MsgIdHdr) != "rf-"+tt.account {
				t.Errorf("%s: Nats-Msg-Id %q", tt.account, hdr.Get(nats.MsgIdHdr))
			}
		}
	})

	t.Run("with a tracer: a publish span, child of the saved context, named in the header", func(t *testing.T) {
		exporter := tracetest.NewInMemoryExporter()
		provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
		t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
		h.commitTraced(t, "acct-span", savedParent, savedState)
		h.runRelayWith(t, producers.RelayConfig{Consumer: "relay-span", Tracer: provider.Tracer("test")})
		h.waitForEmptyOutbox(t)

		msgs := h.storedMsgs(t, "refunds.account.balance_changed.acct-span")
		if len(msgs) != 1 {
			t.Fatalf("%d messages stored, want 1", len(msgs))
		}
		published := tracing.FromHeader(msgs[0].Headers())
		saved := tracing.Parse(savedParent, savedState)
		var span *tracetest.SpanStub
		waitUntil(t, func() bool {
			for _, s := range exporter.GetSpans() {
				if s.SpanContext.SpanID() == published.SpanID() {
					span = &s
					return true
				}
			}
			return false
		})
		if published.TraceID() != saved.TraceID() || published.TraceState().String() != savedState {
			t.Errorf("published in trace %s state %q, want %s %q", published.TraceID(), published.TraceState(), saved.TraceID(), savedState)
		}
		if span.Parent.SpanID() != saved.SpanID() || span.Name != "send refunds.account.balance_changed" || span.SpanKind != trace.SpanKindProducer {
			t.Errorf("publish span %q kind %v parent %s, want send refunds.account.balance_changed, producer, child of %s", span.Name, span.SpanKind, span.Parent.SpanID(), saved.SpanID())
		}
	})
}

// waitUntil polls ok every 20ms for up to 10 seconds.
func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingOutbox counts the relay's reads of the outbox.
type countingOutbox struct {
	producers.Outbox
	reads atomic.Int64
}

func (o *countingOutbox) ReadOutbox(ctx context.Context, consumer string, count int) ([]state.OutboxEntry, error) {
	o.reads.Add(1)
	return o.Outbox.ReadOutbox(ctx, consumer, count)
}

// failingDeletes refuses to remove entries from the outbox while failing is set.
type failingDeletes struct {
	countingOutbox
	failing atomic.Bool
	failed  atomic.Int64
}

func (o *failingDeletes) DeleteOutbox(ctx context.Context, entries []state.OutboxEntry) error {
	if o.failing.Load() {
		o.failed.Add(1)
		return errors.New("redis is away")
	}
	return o.countingOutbox.DeleteOutbox(ctx, entries)
}

// commitChain saves n steps of account through the store's Lua script, as the intake
// does, each with one outbound event whose id and body are <prefix>-<i>, and returns
// their results.
func (h *relayHarness) commitChain(t *testing.T, account, prefix string, n int) []state.StepResult {
	t.Helper()
	version := ""
	var results []state.StepResult
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		step := balanceStep(t, account, "evt-"+id, id, version, time.Date(2026, 11, 23, 8, 0, i, 0, time.UTC))
		out, err := h.store.Commit(context.Background(), []state.Step{step})
		if err != nil || out[0].Outcome != state.Applied {
			t.Fatalf("commit %s: %v, err %v", id, out, err)
		}
		version = step.NextVersion()
		results = append(results, out[0])
	}
	return results
}

// wantStoredInOrder checks that the balance_changed events stored for account are
// want, in that order, each once.
func (h *relayHarness) wantStoredInOrder(t *testing.T, account string, want []string) {
	t.Helper()
	got := h.idsInOrder(t, "refunds.account.balance_changed."+account)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("stored\n %v\nwant\n %v", got, want)
	}
}

// idsInOrder lists the ids of the events stored on subject, in stream order.
func (h *relayHarness) idsInOrder(t *testing.T, subject string) []string {
	t.Helper()
	var ids []string
	for _, m := range h.storedMsgs(t, subject) {
		ids = append(ids, m.Headers().Get(nats.MsgIdHdr))
	}
	return ids
}

func TestEventsHandedToTheRelay(t *testing.T) {
	h := startRelayHarness(t)
	ctx := context.Background()

	// startRelay runs a relay over outbox.
	startRelay := func(t *testing.T, outbox producers.Outbox, cfg producers.RelayConfig) *producers.Relay {
		t.Helper()
		relay, err := producers.NewRelay(h.js, outbox, zerolog.New(zerolog.NewTestWriter(t)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		runForTheTest(t, relay)
		return relay
	}

	// startIdleRelay runs a relay that reads the outbox only as it starts (it polls
	// hourly), and returns once it has.
	startIdleRelay := func(t *testing.T, name string) (*producers.Relay, *countingOutbox) {
		t.Helper()
		outbox := &countingOutbox{Outbox: h.store}
		relay := startRelay(t, outbox, producers.RelayConfig{Consumer: name, Poll: time.Hour})
		waitUntil(t, func() bool { return outbox.reads.Load() >= 1 })
		return relay, outbox
	}

	t.Run("a saved step names where the outbox holds each of its events", func(t *testing.T) {
		results := h.commitChain(t, "acct-positions", "rf-positions", 3)
		key := fmt.Sprintf("rf:{p%02d}:outbox", redisstore.Partition("acct-positions"))
		held, err := h.rdb.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		at := map[string]redis.XMessage{}
		for _, m := range held {
			at[m.ID] = m
		}
		for i, r := range results {
			if len(r.Saved) != 1 {
				t.Fatalf("step %d: %d saved entries, want 1", i, len(r.Saved))
			}
			e := r.Saved[0]
			m, ok := at[e.Position]
			if !ok || m.Values["id"] != e.ID || m.Values["body"] != string(e.Body) || m.Values["subject"] != e.Subject {
				t.Fatalf("step %d: saved %s at %q, the outbox holds %+v there", i, e.ID, e.Position, m.Values)
			}
			if e.Partition != redisstore.Partition("acct-positions") {
				t.Fatalf("step %d: partition %d, want %d", i, e.Partition, redisstore.Partition("acct-positions"))
			}
		}
		// Leave the outbox empty for the next test.
		if err := h.store.AckOutbox(ctx, slicesOfSaved(results)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("handed events are stored once, in order, and leave the outbox without a read", func(t *testing.T) {
		relay, outbox := startIdleRelay(t, "relay-handed")
		readsBefore := outbox.reads.Load()
		results := h.commitChain(t, "acct-handed", "rf-handed", 20)
		for _, r := range results {
			relay.Hand(r.Saved)
		}
		h.waitForEmptyOutbox(t)
		if got := outbox.reads.Load() - readsBefore; got != 0 {
			t.Fatalf("the relay read the outbox %d times for what it was handed", got)
		}
		h.wantStoredInOrder(t, "acct-handed", idsOf("rf-handed", 20))
	})

	t.Run("what is handed while a pass waits for its acks is sent in that pass, after what it sent", func(t *testing.T) {
		js := newHeldAcks(t, h.js, "")
		relay := h.startHeldRelay(t, js, "relay-join")
		results := h.commitChain(t, "acct-join", "rf-join", 6)
		for _, r := range results[:3] {
			relay.Hand(r.Saved)
		}
		waitUntil(t, func() bool { return len(js.sentIDs()) == 3 })
		// JetStream has not acknowledged the first three: without joining, the pass
		// would wait for those acks before it sent anything more.
		for _, r := range results[3:] {
			relay.Hand(r.Saved)
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(js.sentIDs()) < 6 {
			if time.Now().After(deadline) {
				t.Fatalf("sent %v while the first acks were held; want the later three sent too", js.sentIDs())
			}
			time.Sleep(5 * time.Millisecond)
		}
		h.releaseAndWant(t, js, "acct-join", "rf-join", 6)
		if got := strings.Join(js.sentIDs(), " "); got != strings.Join(idsOf("rf-join", 6), " ") {
			t.Fatalf("sent %s, want them in the order they were saved", got)
		}
	})

	t.Run("a pass takes in what is handed for a while only, then waits for its acks", func(t *testing.T) {
		js := newHeldAcks(t, h.js, "")
		relay := h.startHeldRelay(t, js, "relay-join-ends")
		results := h.commitChain(t, "acct-join-ends", "rf-join-ends", 2)
		relay.Hand(results[0].Saved)
		waitUntil(t, func() bool { return len(js.sentIDs()) == 1 })
		time.Sleep(400 * time.Millisecond) // past the 250 ms a pass takes things in for
		relay.Hand(results[1].Saved)
		time.Sleep(100 * time.Millisecond)
		if got := js.sentIDs(); len(got) != 1 {
			t.Fatalf("sent %v: the second joined a pass 400 ms old", got)
		}
		h.releaseAndWant(t, js, "acct-join-ends", "rf-join-ends", 2)
	})

	t.Run("what is handed after a publish of the pass failed waits, and goes after the failed event", func(t *testing.T) {
		// The first event of acct-fail is refused once, at once; another account's
		// event in the same pass holds the pass open, waiting for its ack.
		js := newHeldAcks(t, h.js, "rf-fail-0")
		relay := h.startHeldRelay(t, js, "relay-join-fails")
		failing := h.commitChain(t, "acct-fail", "rf-fail", 2)
		other := h.commitChain(t, "acct-fail-other", "rf-fail-other", 1)
		relay.Hand(append(slices.Clone(failing[0].Saved), other[0].Saved...))
		waitUntil(t, func() bool { return slices.Contains(js.sentIDs(), "rf-fail-other-0") })
		relay.Hand(failing[1].Saved)
		time.Sleep(100 * time.Millisecond) // time enough to join, were it allowed to
		if slices.Contains(js.sentIDs(), "rf-fail-1") {
			t.Fatalf("sent %v: rf-fail-1 joined a pass in which rf-fail-0 had failed", js.sentIDs())
		}
		h.releaseAndWant(t, js, "acct-fail", "rf-fail", 2)
	})

	t.Run("handed events whose removal from the outbox failed are read back and stored once", func(t *testing.T) {
		outbox := &failingDeletes{countingOutbox: countingOutbox{Outbox: h.store}}
		outbox.failing.Store(true)
		relay := startRelay(t, outbox, producers.RelayConfig{Consumer: "relay-delete-fails", Poll: time.Hour})
		waitUntil(t, func() bool { return outbox.reads.Load() >= 1 })
		results := h.commitChain(t, "acct-delete-fails", "rf-delete-fails", 5)
		for _, r := range results {
			relay.Hand(r.Saved)
		}
		waitUntil(t, func() bool { return outbox.failed.Load() >= 1 })
		outbox.failing.Store(false)
		// The next read of the outbox, which the poll would make, finds them.
		relay.SavedUnhanded()
		h.waitForEmptyOutbox(t)
		h.wantStoredInOrder(t, "acct-delete-fails", idsOf("rf-delete-fails", 5))
	})

	t.Run("through a NATS outage handed events are stored once, in order, from the outbox", func(t *testing.T) {
		// Reads of 2 entries a partition: the outbox's backlog takes several, and
		// what is handed meanwhile must wait for all of them.
		relay := startRelay(t, h.store, producers.RelayConfig{Consumer: "relay-handed-outage", Poll: 20 * time.Millisecond, BatchSize: 2})
		if err := h.nats.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		results := h.commitChain(t, "acct-handed-outage", "rf-handed-outage", 13)
		for i, r := range results[:12] {
			relay.Hand(r.Saved)
			if i%4 == 3 {
				time.Sleep(150 * time.Millisecond)
			}
		}
		if err := h.nats.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// Handed once NATS is back, while the earlier ones may still wait in the
		// outbox: it must not overtake them.
		relay.Hand(results[12].Saved)
		h.waitForEmptyOutbox(t)
		h.wantStoredInOrder(t, "acct-handed-outage", idsOf("rf-handed-outage", 13))
	})

	t.Run("after a restart, what is handed waits for the backlog an earlier process left", func(t *testing.T) {
		// An earlier process saved 6 events of the account and died before publishing
		// them; this one saves the 7th and hands it as its relay starts, reading 2
		// entries a partition at a time.
		results := h.commitChain(t, "acct-backlog", "rf-backlog", 7)
		relay, err := producers.NewRelay(h.js, h.store, zerolog.New(zerolog.NewTestWriter(t)), producers.RelayConfig{Consumer: "relay-backlog", Poll: 50 * time.Millisecond, BatchSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		relay.Hand(results[6].Saved)
		runForTheTest(t, relay)
		h.waitForEmptyOutbox(t)
		h.wantStoredInOrder(t, "acct-backlog", idsOf("rf-backlog", 7))
	})

	t.Run("after a save whose outcome is not known, what is handed waits for a read of the outbox", func(t *testing.T) {
		relay, _ := startIdleRelay(t, "relay-unknown")
		// The first save's reply was lost: its event is in the outbox, never handed.
		results := h.commitChain(t, "acct-unknown", "rf-unknown", 2)
		relay.SavedUnhanded()
		relay.Hand(results[1].Saved)
		h.waitForEmptyOutbox(t)
		h.wantStoredInOrder(t, "acct-unknown", idsOf("rf-unknown", 2))
	})

	t.Run("what is handed while a save that hands nothing runs waits for what that save wrote", func(t *testing.T) {
		relay, _ := startIdleRelay(t, "relay-held")
		// The timer runner saves the first event and does not hand it; the intake
		// saves the second right after and hands it before the runner is done.
		relay.HoldHanded()
		results := h.commitChain(t, "acct-held", "rf-held", 2)
		relay.Hand(results[1].Saved)
		time.Sleep(100 * time.Millisecond) // time enough to publish it, were it not held
		relay.ReleaseHanded(true)
		h.waitForEmptyOutbox(t)
		h.wantStoredInOrder(t, "acct-held", idsOf("rf-held", 2))
	})

	t.Run("an event both read and handed is published once", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		outbox := &countingOutbox{Outbox: h.store}
		relay := startRelay(t, outbox, producers.RelayConfig{Consumer: "relay-both", Poll: time.Hour, Registerer: reg})
		waitUntil(t, func() bool { return outbox.reads.Load() >= 1 })
		results := h.commitChain(t, "acct-both", "rf-both", 5)
		// Read before what was handed is taken: the read publishes all five.
		relay.SavedUnhanded()
		for _, r := range results {
			relay.Hand(r.Saved)
		}
		h.waitForEmptyOutbox(t)
		h.wantStoredInOrder(t, "acct-both", idsOf("rf-both", 5))
		time.Sleep(100 * time.Millisecond) // anything published twice would be by now
		if n := publishedTotal(t, reg); n != 5 {
			t.Fatalf("the relay published %v events, want each of the 5 once", n)
		}
	})

	t.Run("events handed to a relay that never runs are published from the outbox by another", func(t *testing.T) {
		stopped, err := producers.NewRelay(h.js, h.store, zerolog.New(zerolog.NewTestWriter(t)), producers.RelayConfig{Consumer: "relay-never-ran"})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range h.commitChain(t, "acct-handed-lost", "rf-handed-lost", 5) {
			stopped.Hand(r.Saved) // never published: this relay never runs
		}
		startRelay(t, h.store, producers.RelayConfig{Consumer: "relay-next", Poll: 20 * time.Millisecond})
		h.waitForEmptyOutbox(t)
		h.wantStoredInOrder(t, "acct-handed-lost", idsOf("rf-handed-lost", 5))
	})
}

func slicesOfSaved(results []state.StepResult) []state.OutboxEntry {
	var saved []state.OutboxEntry
	for _, r := range results {
		saved = append(saved, r.Saved...)
	}
	return saved
}

func idsOf(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ids
}

// publishedTotal reads refunds_relay_published_total from reg.
func publishedTotal(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "refunds_relay_published_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no refunds_relay_published_total")
	return 0
}

// heldAcks is JetStream whose acks of asynchronous publishes reach the caller only
// once releaseAcks is called; it records the ids it was asked to publish, in order,
// and refuses the first publish of failFirst at once.
type heldAcks struct {
	jetstream.JetStream
	release   chan struct{}
	releaseMu sync.Once
	failFirst string
	mu        sync.Mutex
	sent      []string
	refused   bool
}

// newHeldAcks holds js's acks until releaseAcks, or the end of the test.
func newHeldAcks(t *testing.T, js jetstream.JetStream, failFirst string) *heldAcks {
	j := &heldAcks{JetStream: js, release: make(chan struct{}), failFirst: failFirst}
	t.Cleanup(j.releaseAcks) // a test that fails early must not leave its relay waiting
	return j
}

// startHeldRelay runs a relay over js that reads the outbox only as it starts, and
// returns once it has.
func (h *relayHarness) startHeldRelay(t *testing.T, js *heldAcks, name string) *producers.Relay {
	t.Helper()
	outbox := &countingOutbox{Outbox: h.store}
	relay, err := producers.NewRelay(js, outbox, zerolog.New(zerolog.NewTestWriter(t)), producers.RelayConfig{Consumer: name, Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runForTheTest(t, relay)
	waitUntil(t, func() bool { return outbox.reads.Load() >= 1 })
	return relay
}

// releaseAndWant lets js's acks through, and checks that account's n events
// <prefix>-<i> are stored, each once and in order, and the outbox emptied.
func (h *relayHarness) releaseAndWant(t *testing.T, js *heldAcks, account, prefix string, n int) {
	t.Helper()
	js.releaseAcks()
	h.waitForEmptyOutbox(t)
	h.wantStoredInOrder(t, account, idsOf(prefix, n))
}

func (j *heldAcks) releaseAcks() { j.releaseMu.Do(func() { close(j.release) }) }

func (j *heldAcks) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	id := m.Header.Get(nats.MsgIdHdr)
	j.mu.Lock()
	j.sent = append(j.sent, id)
	refuse := id == j.failFirst && !j.refused
	j.refused = j.refused || refuse
	j.mu.Unlock()
	if refuse {
		return nil, errors.New("refused once by the test")
	}
	f, err := j.JetStream.PublishMsgAsync(m, opts...)
	if err != nil {
		return nil, err
	}
	held := &heldFuture{PubAckFuture: f, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	go func() {
		<-j.release
		select {
		case ack := <-f.Ok():
			held.ok <- ack
		case err := <-f.Err():
			held.err <- err
		}
	}()
	return held, nil
}

func (j *heldAcks) sentIDs() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.sent)
}

type heldFuture struct {
	jetstream.PubAckFuture
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *heldFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *heldFuture) Err() <-chan error            { return f.err }
