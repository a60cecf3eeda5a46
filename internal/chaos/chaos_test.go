package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/internal/workload"
	"github.com/payinfra/refunds/producers"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// The defaults are CI's short run (about a minute); `task chaos` runs a long one.
var (
	chaosAccounts = flag.Int("chaos.accounts", 150, "accounts in the chaos workload")
	chaosRate     = flag.Int("chaos.rate", 400, "events published per second")
	chaosRounds   = flag.Int("chaos.rounds", 1, "rounds of the fault plan, at least; faults go on while publishing does")
	chaosSeed     = flag.Uint64("chaos.seed", 1, "the workload's seed")
)

// reserveHold is short so that every reserve countdown of the workload runs out
// while the test runs, and the unfreezing is checked too.
const reserveHold = 2 * time.Minute

// TestChaosNothingLostNothingDoubled publishes a workload of top-ups, consumption,
// vouchers, transfers, bills, credit notes, resources and withdrawals with their
// reviews and payout results (with duplicates under the same Nats-Msg-Id and past the
// duplicate window, events out of order, and events the engine must refuse), while
// two refundd processes run under a supervisor that restarts them, and a fault plan
// kills each refundd, both at once, Redis (appendfsync always) and NATS (sync_interval
// always) with SIGKILL. The publisher retries through the outages, as billing would.
// Then every account and case must equal a single in-memory replay of the same
// events; money must be conserved; every status change must have been published, none
// twice under different ids; and only the events that had to be refused are dead
// letters.
func TestChaosNothingLostNothingDoubled(t *testing.T) {
	bin := testenv.BuildCommand(t, "refundd")
	natsServer := testenv.StartDurableNATS(t)
	redisServer := testenv.StartDurableRedis(t)
	w := workload.Generate(workload.Options{Accounts: *chaosAccounts, Seed: *chaosSeed})

	sup := startSupervisor(t, bin, []string{
		"REFUNDS_NATS_URL=" + natsServer.URL,
		"REFUNDS_REDIS_URL=" + redisServer.URL,
		"REFUNDS_RESERVE_HOLD=" + reserveHold.String(),
		// A killed instance's events go to the other one after this long.
		"REFUNDS_ACK_WAIT=3s",
	}, "refundd-a", "refundd-b")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("refundd logs:\n%s", sup.logTail(40))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for _, inst := range sup.instances {
		if err := testenv.WaitReady(ctx, inst.httpAddr, nil); err != nil {
			t.Fatalf("%s not ready: %v", inst.name, err)
		}
	}

	nc, err := nats.Connect(natsServer.URL, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	started := time.Now()
	var published sync.WaitGroup
	var publishDone atomic.Bool
	var publishRetries atomic.Int64
	var publishErr error
	published.Add(1)
	go func() {
		defer published.Done()
		defer publishDone.Store(true)
		publishErr = publish(ctx, js, w.Publications, *chaosRate, &publishRetries)
	}()

	faults := map[string]int{}
	plan := []struct {
		name string
		do   func() error
	}{
		{"SIGKILL refundd-a", func() error { return sup.kill(ctx, 0) }},
		{"SIGKILL refundd-b", func() error { return sup.kill(ctx, 1) }},
		{"SIGKILL both refundd at once", func() error { return sup.killAll(ctx) }},
		{"SIGKILL Redis, start it again", func() error {
			if err := redisServer.Kill(ctx); err != nil {
				return err
			}
			time.Sleep(time.Second)
			return redisServer.Start(ctx)
		}},
		{"SIGKILL NATS, start it again", func() error {
			if err := natsServer.Kill(ctx); err != nil {
				return err
			}
			time.Sleep(time.Second)
			return natsServer.Start(ctx)
		}},
	}
	for round := 0; round < *chaosRounds || !publishDone.Load(); round++ {
		for _, f := range plan {
			time.Sleep(1500 * time.Millisecond)
			if err := f.do(); err != nil {
				t.Fatalf("fault %q: %v", f.name, err)
			}
			faults[f.name]++
		}
	}
	published.Wait()
	if publishErr != nil {
		t.Fatalf("publish: %v", publishErr)
	}
	t.Logf("published %d events (%d publications) in %s with %d retries through the outages",
		w.Events, len(w.Publications), time.Since(started).Round(time.Millisecond), publishRetries.Load())

	rdb := redisClient(t, redisServer.URL)
	store := redisstore.New(rdb)
	settled := waitUntilSettled(ctx, t, js, store)
	t.Logf("all events decided and published %s after the start", settled.Sub(started).Round(time.Millisecond))

	rules := state.DefaultRules()
	rules.ReserveHold = reserveHold
	now := time.Now()
	var mismatches []string
	mismatch := func(format string, args ...any) { mismatches = append(mismatches, fmt.Sprintf(format, args...)) }

	outbound := readStream(ctx, t, js, producers.OutboundStream)
	deadLetters := readStream(ctx, t, js, consumers.DeadLetterStream)
	byEffect, repeats := effectsOf(t, outbound)

	loaded, _, err := store.Load(ctx, w.Accounts, nil)
	if err != nil {
		t.Fatalf("load accounts: %v", err)
	}
	expected := map[string]bool{}
	cases := 0
	for _, acct := range w.Accounts {
		live := loaded[acct]
		if live.Err != nil || !live.Account.Opened {
			mismatch("%s: not in the store (%v)", acct, live.Err)
			continue
		}
		replay := state.Rebuild(acct, w.History[acct], rules, now)
		if replay.Waiting != 0 {
			t.Fatalf("%s: the replay leaves %d events waiting: the workload is not self-contained", acct, replay.Waiting)
		}
		compareLedgers(acct, live.Account.Ledger(rules), replay.Account.Ledger(rules), mismatch)
		ended, err := store.EndedCases(ctx, acct)
		if err != nil {
			t.Fatalf("ended cases of %s: %v", acct, err)
		}
		liveCases := map[string]state.Case{}
		for _, c := range ended {
			liveCases[c.ID] = c
		}
		for id, c := range live.Account.Cases {
			liveCases[id] = c
		}
		cases += len(liveCases)
		compareCases(acct, liveCases, replay, mismatch)
		checkConservation(acct, live.Account.Ledger(rules), liveCases, w.History[acct], w.Refused, mismatch)
		for _, ev := range replay.Outbound {
			if key := workload.Effect(ev); key != "" {
				expected[key] = true
			}
		}
	}
	for key := range expected {
		if len(byEffect[key]) == 0 {
			mismatch("never published: %s", key)
		}
	}
	for key, ids := range byEffect {
		if !expected[key] {
			mismatch("published, but the replay has no such effect: %s", key)
		}
		if len(ids) > 1 {
			mismatch("published under %d different ids, so applied more than once: %s %v", len(ids), key, ids)
		}
	}
	parked := map[string]bool{}
	for _, msg := range deadLetters {
		ev, err := events.Decode(msg.Data())
		if err != nil || !w.Refused[ev.ID] {
			mismatch("dead-lettered, though it should have been applied: %s (%s)", ev.ID, msg.Headers().Get(events.HeaderReason))
			continue
		}
		parked[ev.ID] = true
	}
	for id := range w.Refused {
		if !parked[id] {
			mismatch("should have been refused and dead-lettered, is not: %s", id)
		}
	}
	// The operator's audit must agree: it rebuilds every account from the inbound
	// stream and compares it with what the read API shows.
	audit := exec.Command(testenv.BuildCommand(t, "refundctl"), "--nats-url", natsServer.URL, "replay", "--all", "--reserve-hold", reserveHold.String())
	audit.Env = append(os.Environ(), "REFUNDS_HTTP_ADDR="+sup.instances[0].httpAddr)
	if report, err := audit.CombinedOutput(); err != nil || !strings.Contains(string(report), fmt.Sprintf("audit: %d accounts, 0 differ", len(w.Accounts))) {
		mismatch("refundctl replay --all: %v\n%s", err, report)
	}
	if strings.Contains(sup.logs(), "panic") {
		mismatch("a refundd log shows a panic")
	}

	restarts := 0
	for _, inst := range sup.instances {
		inst.mu.Lock()
		restarts += inst.starts - 1
		inst.mu.Unlock()
	}
	t.Logf("chaos: %d accounts, %d events (%d same-id duplicates, %d past the duplicate window, %d out of order, %d to refuse), "+
		"%d cases, %d outbound events (%d effects, %d repeats of an id), %d dead letters",
		len(w.Accounts), w.Events, w.SameIDDuplicates, w.LateDuplicates, w.OutOfOrder, len(w.Refused),
		cases, len(outbound), len(byEffect), repeats, len(deadLetters))
	t.Logf("chaos: faults injected %s; refundd restarted %d times; mismatches %d", describe(faults), restarts, len(mismatches))
	if len(mismatches) > 0 {
		sort.Strings(mismatches)
		t.Fatalf("%d mismatches, the first ones:\n%s", len(mismatches), strings.Join(mismatches[:min(20, len(mismatches))], "\n"))
	}
}

// publish publishes every publication in order at about rate per second, retrying
// each until JetStream stores it, as upstream billing would through an outage.
func publish(ctx context.Context, js jetstream.JetStream, pubs []workload.Publication, rate int, retries *atomic.Int64) error {
	pub := producers.NewPublisher(js)
	tick := time.Second / time.Duration(rate)
	next := time.Now()
	for _, p := range pubs {
		body, err := p.Event.Encode()
		if err != nil {
			return err
		}
		for {
			attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := pub.PublishRaw(attempt, p.Event.NATSSubject(), p.MsgID, body)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", p.MsgID, err)
			}
			retries.Add(1)
			time.Sleep(200 * time.Millisecond)
		}
		next = next.Add(tick)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	return nil
}

// waitUntilSettled waits until the intake has nothing pending or unacknowledged, the
// outbox is empty and the outbound stream has not grown for a while (timers that came
// due have fired), and returns when that began.
func waitUntilSettled(ctx context.Context, t *testing.T, js jetstream.JetStream, store *redisstore.Store) time.Time {
	t.Helper()
	const quiet = 4 * time.Second
	var lastOutbound uint64
	var since time.Time
	for {
		settled := false
		cons, err := js.Consumer(ctx, consumers.InboundStream, consumers.DurableConsumer)
		if err == nil {
			info, ierr := cons.Info(ctx)
			outbox, oerr := store.OutboxLength(ctx)
			stream, serr := js.Stream(ctx, producers.OutboundStream)
			if ierr == nil && oerr == nil && serr == nil {
				msgs := stream.CachedInfo().State.Msgs
				settled = info.NumPending == 0 && info.NumAckPending == 0 && outbox == 0 && msgs == lastOutbound
				lastOutbound = msgs
			}
		}
		switch {
		case !settled:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= quiet:
			return since
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the engine did not settle: %v", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// readStream reads every message of a stream.
func readStream(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) []jetstream.Msg {
	t.Helper()
	stream, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	total := stream.CachedInfo().State.Msgs
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	var msgs []jetstream.Msg
	for uint64(len(msgs)) < total {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		n := len(msgs)
		for msg := range batch.Messages() {
			msgs = append(msgs, msg)
		}
		if len(msgs) == n {
			t.Fatalf("read %s: %d of %d messages, then nothing", name, n, total)
		}
	}
	return msgs
}

// effectsOf groups the outbound events by effect, with the ids each was published
// under, and counts the messages that repeat an id (at-least-once publishing).
func effectsOf(t *testing.T, msgs []jetstream.Msg) (map[string][]string, int) {
	t.Helper()
	byEffect := map[string][]string{}
	seen := map[string]bool{}
	repeats := 0
	for _, msg := range msgs {
		ev, err := events.Decode(msg.Data())
		if err != nil {
			t.Fatalf("an outbound event does not decode: %v\n%s", err, msg.Data())
		}
		if seen[ev.ID] {
			repeats++
			continue
		}
		seen[ev.ID] = true
		if key := workload.Effect(ev); key != "" {
			byEffect[key] = append(byEffect[key], ev.ID)
		}
	}
	return byEffect, repeats
}

func compareLedgers(acct string, live, replay state.Ledger, mismatch func(string, ...any)) {
	fields := []struct {
		name       string
		live, want decimal.Decimal
	}{
		{"cash", live.Cash, replay.Cash}, {"transferred", live.Transferred, replay.Transferred},
		{"vouchers", live.Vouchers, replay.Vouchers}, {"credit notes", live.CreditNotes, replay.CreditNotes},
		{"overdue", live.Overdue, replay.Overdue}, {"unsettled", live.Unsettled, replay.Unsettled},
		{"held", live.Held, replay.Held}, {"reserve", live.Reserve, replay.Reserve},
		{"consumed", live.Consumed, replay.Consumed}, {"received", live.Received, replay.Received},
		{"paid out", live.PaidOut, replay.PaidOut}, {"withdrawable", live.Withdrawable, replay.Withdrawable},
	}
	for _, f := range fields {
		if !f.live.Equal(f.want) {
			mismatch("%s: %s is %s, the replay gives %s", acct, f.name, f.live, f.want)
		}
	}
	if live.ReserveState != replay.ReserveState {
		mismatch("%s: reserve %s, the replay gives %s", acct, live.ReserveState, replay.ReserveState)
	}
}

func compareCases(acct string, live map[string]state.Case, replay state.Replay, mismatch func(string, ...any)) {
	want := map[string]state.Case{}
	for id, c := range replay.Ended {
		want[id] = c
	}
	for id, c := range replay.Account.Cases {
		want[id] = c
	}
	for id, w := range want {
		c, ok := live[id]
		switch {
		case !ok:
			mismatch("%s: case %s is missing", acct, id)
		case c.Status != w.Status || !c.Amount.Equal(w.Amount) || c.TopupID != w.TopupID || c.Route != w.Route ||
			c.PayoutID != w.PayoutID || c.OverdueReported != w.OverdueReported:
			mismatch("%s: case %s is %s %s (payout %q, overdue %t), the replay gives %s %s (payout %q, overdue %t)",
				acct, id, c.Status, c.Amount, c.PayoutID, c.OverdueReported, w.Status, w.Amount, w.PayoutID, w.OverdueReported)
		}
	}
	for id := range live {
		if _, ok := want[id]; !ok {
			mismatch("%s: case %s exists, the replay has no such case", acct, id)
		}
	}
}

// checkConservation checks the live account against the workload alone, not the
// replay: what came in is what was consumed, paid out and is left, and the money
// held and paid out is that of the live cases.
func checkConservation(acct string, l state.Ledger, cases map[string]state.Case, history []events.Event, refused map[string]bool, mismatch func(string, ...any)) {
	var in, consumed decimal.Decimal
	seen := map[string]bool{}
	for _, ev := range history {
		if seen[ev.ID] || refused[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		switch p := ev.Payload.(type) {
		case *events.TopupReceivedData:
			in = in.Add(p.Amount.Decimal)
		case *events.TransferReceivedData:
			in = in.Add(p.Amount.Decimal)
		case *events.TransferRecalledData:
			in = in.Sub(p.Amount.Decimal)
		case *events.ConsumptionRecordedData:
			consumed = consumed.Add(p.Amount.Decimal)
		case *events.CycleSettledData:
			consumed = consumed.Add(p.Amount.Decimal)
		}
	}
	var held, paid decimal.Decimal
	for _, c := range cases {
		switch c.Status {
		case events.StatusInReview, events.StatusApprovedPendingTransfer:
			held = held.Add(c.Amount)
		case events.StatusSucceeded:
			paid = paid.Add(c.Amount)
		}
	}
	switch {
	case !l.Received.Equal(in):
		mismatch("%s: received %s, the workload brought in %s", acct, l.Received, in)
	case !l.Consumed.Add(l.Unfunded).Equal(consumed):
		mismatch("%s: consumed %s, the workload consumed %s", acct, l.Consumed.Add(l.Unfunded), consumed)
	case !l.Held.Equal(held) || !l.PaidOut.Equal(paid):
		mismatch("%s: held %s and paid out %s, its cases hold %s and paid out %s", acct, l.Held, l.PaidOut, held, paid)
	case !l.Received.Add(l.Credited).Equal(l.Consumed.Add(l.PaidOut).Add(l.Cash)):
		mismatch("%s: money not conserved: received %s + credited %s != consumed %s + paid out %s + cash %s",
			acct, l.Received, l.Credited, l.Consumed, l.PaidOut, l.Cash)
	}
}

func describe(faults map[string]int) string {
	var parts []string
	total := 0
	for name, n := range faults {
		parts = append(parts, fmt.Sprintf("%s ×%d", name, n))
		total += n
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
