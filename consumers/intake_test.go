package consumers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/producers"
	"github.com/payinfra/refunds/state/redisstore"
)

// harness is real NATS and Redis in containers with the intake's streams created.
type harness struct {
	js    jetstream.JetStream
	cons  jetstream.Consumer
	store *redisstore.Store
	pub   *producers.Publisher
}

func startHarness(t *testing.T) *harness {
	t.Helper()
	js := testenv.StartNATS(t).JetStream(t)
	store := testenv.PreparedStore(t, testenv.StartRedis(t).Client(t))
	ctx := context.Background()
	// A short ack wait so that an event held by a crashed intake comes back quickly.
	cons, err := consumers.EnsureStreams(ctx, js, consumers.StreamSettings{AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{js: js, cons: cons, store: store, pub: producers.NewPublisher(js)}
}

// runIntake runs an intake until the test ends or stop is called, and returns a
// channel that receives Run's result.
func (h *harness) runIntake(t *testing.T, configure func(*consumers.Intake)) (done <-chan error, stop func()) {
	t.Helper()
	in := consumers.NewIntake(h.js, h.cons, h.store, zerolog.New(zerolog.NewTestWriter(t)), consumers.Config{})
	if configure != nil {
		configure(in)
	}
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		result <- in.Run(ctx)
	}()
	stop = func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("intake did not stop within 10s of cancel")
		}
	}
	t.Cleanup(stop)
	return result, stop
}

func (h *harness) publish(t *testing.T, ev events.Event) {
	t.Helper()
	if _, err := h.pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// publishAgainAfterDuplicateWindow publishes ev under a fresh Nats-Msg-Id, so JetStream
// stores it a second time exactly as it would once its duplicate window has passed.
func (h *harness) publishAgainAfterDuplicateWindow(t *testing.T, ev events.Event) {
	t.Helper()
	body, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.pub.PublishRaw(context.Background(), ev.NATSSubject(), ev.ID+"-republished", body); err != nil {
		t.Fatal(err)
	}
}

func newEvent(t *testing.T, typ events.Type, account, id string, p events.Payload) events.Event {
	t.Helper()
	ev, err := events.New(typ, account, "/billing", id, time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC), p)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func openAccount(t *testing.T, account string) events.Event {
	return newEvent(t, events.AccountOpened, account, account+"-opened", &events.AccountOpenedData{HolderType: "individual", HolderName: "Zhang San", Verified: true})
}

func topUp(t *testing.T, account, id, amount string) events.Event {
	return newEvent(t, events.TopupReceived, account, id, &events.TopupReceivedData{
		TopupID: id, Amount: mustAmount(t, amount), Currency: "CNY", Channel: "alipay", PayerType: "individual", PayerName: "Zhang San",
	})
}

func mustAmount(t *testing.T, s string) events.Amount {
	t.Helper()
	var a events.Amount
	if err := a.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
		t.Fatal(err)
	}
	return a
}

// eventually polls check until it returns nil or the time runs out.
func eventually(t *testing.T, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) cashIs(account, want string) func() error {
	return func() error {
		a, ok, err := h.store.Account(context.Background(), account)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("account " + account + " not saved yet")
		}
		got := a.Ledger(defaultRules).Cash
		if got.String() != want {
			return errors.New("cash of " + account + " is " + got.String() + ", want " + want)
		}
		return nil
	}
}

func (h *harness) allAcknowledged(t *testing.T) func() error {
	return func() error {
		info, err := h.cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return errors.New("consumer still has unacknowledged or pending events")
		}
		return nil
	}
}

// outboxFor counts queued outbound events for account.
func (h *harness) outboxFor(t *testing.T, account string) int {
	t.Helper()
	entries, err := h.store.ClaimStaleOutbox(context.Background(), "test-reader", 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := h.store.ReadOutbox(context.Background(), "test-reader", 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range append(entries, fresh...) {
		if ev, err := events.Decode(e.Body); err == nil && ev.Subject == account {
			n++
		}
	}
	return n
}

func TestIntakeAgainstRealNATSAndRedis(t *testing.T) {
	h := startHarness(t)

	t.Run("an event id seen before changes nothing, even after the duplicate window", func(t *testing.T) {
		_, stop := h.runIntake(t, nil)
		defer stop()
		h.publish(t, openAccount(t, "acct-dup"))
		h.publish(t, topUp(t, "acct-dup", "t-dup", "100.00"))
		// A consumption has no business id the ledger could deduplicate on: only the
		// event id stands between a replay and a second charge.
		spend := newEvent(t, events.ConsumptionRecorded, "acct-dup", "c-dup", &events.ConsumptionRecordedData{ConsumptionID: "c-dup", Amount: mustAmount(t, "30.00")})
		h.publish(t, spend)
		eventually(t, 10*time.Second, h.cashIs("acct-dup", "70"))
		h.publishAgainAfterDuplicateWindow(t, spend)
		eventually(t, 10*time.Second, h.allAcknowledged(t))
		if err := h.cashIs("acct-dup", "70")(); err != nil {
			t.Fatal(err)
		}
		if n := h.outboxFor(t, "acct-dup"); n != 2 {
			t.Fatalf("outbox holds %d balance changes, want exactly 2 (top-up, consumption)", n)
		}
	})

	t.Run("a fact announced again under another event id counts once, even after it is complete", func(t *testing.T) {
		_, stop := h.runIntake(t, nil)
		defer stop()
		const acct = "acct-fact"
		h.publish(t, openAccount(t, acct))
		h.publish(t, topUp(t, acct, "t-fact", "100.00"))
		h.publish(t, newEvent(t, events.ConsumptionRecorded, acct, "c-1", &events.ConsumptionRecordedData{ConsumptionID: "c-fact", Amount: mustAmount(t, "30.00")}))
		h.publish(t, newEvent(t, events.BillIssued, acct, "b-1", &events.BillIssuedData{BillID: "b-fact", Amount: mustAmount(t, "20.00")}))
		h.publish(t, newEvent(t, events.BillPaid, acct, "p-1", &events.BillPaidData{BillID: "b-fact", Amount: mustAmount(t, "20.00")}))
		eventually(t, 10*time.Second, h.cashIs(acct, "70"))
		eventually(t, 10*time.Second, h.allAcknowledged(t))
		// Republished by upstream under new ids: the consumption, and the bill that was
		// paid in full (the ledger no longer holds it).
		h.publish(t, newEvent(t, events.ConsumptionRecorded, acct, "c-2", &events.ConsumptionRecordedData{ConsumptionID: "c-fact", Amount: mustAmount(t, "30.00")}))
		h.publish(t, newEvent(t, events.BillIssued, acct, "b-2", &events.BillIssuedData{BillID: "b-fact", Amount: mustAmount(t, "20.00")}))
		eventually(t, 10*time.Second, h.allAcknowledged(t))
		a, _, err := h.store.Account(context.Background(), acct)
		if err != nil {
			t.Fatal(err)
		}
		if l := a.Ledger(defaultRules); l.Cash.String() != "70" || !l.Overdue.IsZero() {
			t.Fatalf("cash %s, overdue %s: want 70 and 0, each fact counted once", l.Cash, l.Overdue)
		}

		// The same consumption id with another amount is a contradiction, not a repeat.
		h.publish(t, newEvent(t, events.ConsumptionRecorded, acct, "c-3", &events.ConsumptionRecordedData{ConsumptionID: "c-fact", Amount: mustAmount(t, "99.00")}))
		eventually(t, 10*time.Second, h.allAcknowledged(t))
		if err := h.cashIs(acct, "70")(); err != nil {
			t.Fatal(err)
		}
		dl, err := h.js.OrderedConsumer(context.Background(), consumers.DeadLetterStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.DeadLetterPrefix + "billing.consumption.recorded." + acct},
		})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := dl.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil || !strings.Contains(msg.Headers().Get(events.HeaderReason), "already counted with other data") {
			t.Fatalf("dead letter: %v %v", err, msg)
		}
	})

	t.Run("a redelivery after a crash before the ack changes nothing", func(t *testing.T) {
		_, stop := h.runIntake(t, nil)
		h.publish(t, openAccount(t, "acct-crash"))
		h.publish(t, topUp(t, "acct-crash", "t-crash", "250.00"))
		eventually(t, 10*time.Second, h.cashIs("acct-crash", "250"))
		eventually(t, 10*time.Second, h.allAcknowledged(t))
		stop()

		crashed := errors.New("killed after saving, before acking")
		done, _ := h.runIntake(t, func(in *consumers.Intake) { in.CrashBeforeAckForTest(crashed) })
		h.publish(t, newEvent(t, events.ConsumptionRecorded, "acct-crash", "c-crash", &events.ConsumptionRecordedData{ConsumptionID: "c-crash", Amount: mustAmount(t, "100.00")}))
		select {
		case err := <-done:
			if !errors.Is(err, crashed) {
				t.Fatalf("intake stopped with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the crashing intake never saved a batch")
		}
		if err := h.cashIs("acct-crash", "150")(); err != nil {
			t.Fatalf("the crashed intake did not save before crashing: %v", err)
		}
		// The consumption was saved but never acknowledged: JetStream redelivers it
		// after the ack wait to the next intake, which must recognise it and not
		// consume the 100 a second time.
		h.runIntake(t, nil)
		eventually(t, 15*time.Second, h.allAcknowledged(t))
		if err := h.cashIs("acct-crash", "150")(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a malformed event is dead-lettered with its reason and does not block the next", func(t *testing.T) {
		_, stop := h.runIntake(t, nil)
		defer stop()
		if _, err := h.pub.PublishRaw(context.Background(), "billing.topup.received.acct-bad", "garbage-1", []byte(`{"specversion":"1.0","id":"x"`)); err != nil {
			t.Fatal(err)
		}
		h.publish(t, openAccount(t, "acct-bad"))
		h.publish(t, topUp(t, "acct-bad", "t-good", "7.00"))
		eventually(t, 10*time.Second, h.cashIs("acct-bad", "7"))

		dl, err := h.js.OrderedConsumer(context.Background(), consumers.DeadLetterStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.DeadLetterPrefix + "billing.topup.received.acct-bad"},
		})
		if err != nil {
			t.Fatal(err)
		}
		msg, err := dl.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("no dead letter: %v", err)
		}
		if reason := msg.Headers().Get(events.HeaderReason); reason == "" {
			t.Fatal("dead letter has no reason")
		}
		if string(msg.Data()) != `{"specversion":"1.0","id":"x"` {
			t.Fatalf("dead letter body %q is not the original", msg.Data())
		}
		eventually(t, 10*time.Second, h.allAcknowledged(t))
	})

	t.Run("an event whose subject names another account than its envelope is refused", func(t *testing.T) {
		_, stop := h.runIntake(t, nil)
		defer stop()
		h.publish(t, openAccount(t, "acct-victim"))
		spoof := topUp(t, "acct-victim", "t-spoof", "1000.00")
		body, _ := spoof.Encode()
		if _, err := h.pub.PublishRaw(context.Background(), "billing.topup.received.acct-attacker", "spoof-1", body); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, h.allAcknowledged(t))
		if err := h.cashIs("acct-victim", "0")(); err != nil {
			t.Fatal(err)
		}
	})
}
