package consumers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/workload"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// The second simulation runs whole histories (withdrawals with reviews and payout
// results, resources and their reserve, bills, transfers, refused events) from
// internal/workload through two intakes, two timer runners and an outbox relay on one
// miniredis, with these faults at the seams besides those of the first:
//
//   - a timer fires twice: both runners fire what is due, and a claim whose lease ran
//     out is claimed and fired again;
//   - a relay dies mid-batch: it publishes part of what it read and stops before it
//     acknowledges any of it; another relay takes the entries over.
//
// The model is state.Rebuild of the same history: every account and case must end
// as it says, every outbox entry must be published, and no effect may go out under
// two ids. A failure prints its seed; -sim.seed N replays it.
func TestSimCasesTimersAndRelayUnderFaultsEndAsTheModel(t *testing.T) {
	seeds := simSeedList()
	faults := map[string]int{}
	for _, seed := range seeds {
		simCases(t, seed, faults)
	}
	t.Logf("%d histories checked against the model; faults injected: %v", len(seeds), faults)
}

func simCases(t *testing.T, seed uint64, faults map[string]int) {
	t.Helper()
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	w := workload.Generate(workload.Options{Accounts: 3, Seed: seed, Start: start, RefusedEvery: 2})
	r := rand.New(rand.NewPCG(seed, 3))
	rules := state.DefaultRules()
	rules.ReserveHold = 2 * time.Minute
	now := start.Add(30 * time.Minute)
	clock := func() time.Time { return now }
	const lease = 5 * time.Second

	mr := miniredis.RunT(t)
	deadLetters := &simDeadLetters{ids: map[string]bool{}}
	var intakes []*Intake
	var runners []*Countdowns
	var stores []*redisstore.Store
	for range 2 {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), Protocol: connect.DefaultRedisProtocol})
		t.Cleanup(func() { _ = rdb.Close() })
		store := redisstore.New(rdb)
		if err := store.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		stores = append(stores, store)
		intakes = append(intakes, NewIntake(deadLetters, nil, store, zerolog.Nop(), Config{Clock: clock, Rules: &rules}))
		runners = append(runners, NewCountdowns(store, zerolog.Nop(), CountdownConfig{Clock: clock, Rules: &rules, Lease: lease}))
	}
	stream := &simStream{}
	for i, p := range w.Publications {
		if i > 0 && w.Publications[i-1].MsgID == p.MsgID {
			continue // JetStream drops a same-id duplicate within its window
		}
		stream.add(p.Event)
	}
	sink := newSimSink()
	ctx := context.Background()
	for rounds := 0; stream.pending() > 0; rounds++ {
		if rounds > 20000 {
			t.Fatalf("seed %d: %d messages still unsettled after %d rounds", seed, stream.pending(), rounds)
		}
		now = now.Add(time.Second)
		in := intakes[r.IntN(len(intakes))]
		batch := stream.take(1 + r.IntN(6))
		crash := r.IntN(8) == 0
		if crash {
			in.beforeAck = func() error { return errors.New("killed between save and ack") }
			faults["crash between save and ack"]++
		}
		if _, err := in.handle(ctx, NewBatch(batch)); crash != (err != nil) {
			t.Fatalf("seed %d: handle returned %v", seed, err)
		}
		in.beforeAck = nil
		for _, m := range batch {
			sm := m.(*simMsg)
			if sm.settled == "ack" && r.IntN(10) == 0 {
				sm.settled = "" // the ack was lost on its way
				faults["lost ack"]++
			}
			stream.settle(sm)
		}
		switch r.IntN(4) {
		case 0:
			runners[r.IntN(2)].FireDue(ctx)
		case 1:
			runners[0].FireDue(ctx)
			runners[1].FireDue(ctx)
			faults["timers fired by both runners"]++
		}
		if r.IntN(3) == 0 {
			sink.relay(t, stores[r.IntN(2)], r, faults)
		}
	}
	// Past every lease: a claim a runner made is claimed, and fired, again.
	now = now.Add(2 * lease)
	runners[0].FireDue(ctx)
	runners[1].FireDue(ctx)
	faults["timers claimed again after their lease"]++
	for sink.relay(t, stores[0], nil, faults) > 0 {
	}
	if n, err := stores[0].OutboxLength(ctx); err != nil || n != 0 {
		t.Fatalf("seed %d: outbox holds %d entries after the relay drained it (%v)", seed, n, err)
	}

	for id := range w.Refused {
		if !deadLetters.ids[id] {
			t.Fatalf("seed %d: %s should have been dead-lettered; replay with -sim.seed %d", seed, id, seed)
		}
	}
	for id := range deadLetters.ids {
		if !w.Refused[id] {
			t.Fatalf("seed %d: %s was dead-lettered, though the model applies it; replay with -sim.seed %d", seed, id, seed)
		}
	}
	faults["dead letters"] += len(deadLetters.ids)
	for _, acct := range w.Accounts {
		model := state.Rebuild(acct, w.History[acct], rules, now)
		live, ok, err := stores[0].Account(ctx, acct)
		if err != nil || !ok {
			t.Fatalf("seed %d: account %s: found %t, err %v", seed, acct, ok, err)
		}
		if got, want := simSummary(live, rules), simSummary(model.Account, rules); got != want {
			t.Fatalf("seed %d: account %s is\n %s\nthe model gives\n %s\nreplay with -sim.seed %d", seed, acct, got, want, seed)
		}
		ended, err := stores[0].EndedCases(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		cases := map[string]string{}
		for _, c := range ended {
			cases[c.ID] = c.Status
		}
		for id, c := range live.Cases {
			cases[id] = c.Status
		}
		want := map[string]string{}
		for id, c := range model.Ended {
			want[id] = c.Status
		}
		for id, c := range model.Account.Cases {
			want[id] = c.Status
		}
		if fmt.Sprint(cases) != fmt.Sprint(want) {
			t.Fatalf("seed %d: cases of %s are %v, the model gives %v; replay with -sim.seed %d", seed, acct, cases, want, seed)
		}
		for _, ev := range model.Outbound {
			if key := workload.Effect(ev); key != "" && len(sink.effects[key]) != 1 {
				t.Fatalf("seed %d: effect %q published under ids %v, want exactly one; replay with -sim.seed %d", seed, key, sink.effects[key], seed)
			}
		}
	}
	for key, ids := range sink.effects {
		if len(ids) != 1 {
			t.Fatalf("seed %d: effect %q published under ids %v; replay with -sim.seed %d", seed, key, ids, seed)
		}
	}
}

// simDeadLetters is the dead-letter stream: the ids of the events parked on it.
type simDeadLetters struct {
	jetstream.JetStream // only PublishMsg is used
	ids                 map[string]bool
}

func (d *simDeadLetters) PublishMsg(_ context.Context, msg *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ev, err := events.Decode(msg.Data)
	if err != nil {
		return nil, err
	}
	d.ids[ev.ID] = true
	return &jetstream.PubAck{}, nil
}

// simSink is JetStream's outbound stream as the relay sees it: it stores a message
// once per id, as Nats-Msg-Id deduplication does.
type simSink struct {
	ids     map[string]bool
	effects map[string][]string
}

func newSimSink() *simSink { return &simSink{ids: map[string]bool{}, effects: map[string][]string{}} }

// relay reads the outbox as one relay would and publishes it. With r set it may die
// mid-batch: it publishes part of what it read and acknowledges nothing; the next
// relay claims those entries back. It returns how many entries it handled.
func (s *simSink) relay(t *testing.T, store *redisstore.Store, r *rand.Rand, faults map[string]int) int {
	t.Helper()
	ctx := context.Background()
	stale, err := store.ClaimStaleOutbox(ctx, "relay", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := store.ReadOutbox(ctx, "relay", 100)
	if err != nil {
		t.Fatal(err)
	}
	entries := append(stale, fresh...)
	publish := len(entries)
	dies := r != nil && len(entries) > 1 && r.IntN(4) == 0
	if dies {
		publish = r.IntN(len(entries))
		faults["relay died mid-batch"]++
	}
	for _, e := range entries[:publish] {
		if e.Subject == "" || s.ids[e.ID] {
			continue
		}
		s.ids[e.ID] = true
		ev, err := events.Decode(e.Body)
		if err != nil {
			t.Fatalf("outbox entry %s does not decode: %v", e.ID, err)
		}
		if key := workload.Effect(ev); key != "" {
			s.effects[key] = append(s.effects[key], ev.ID)
		}
	}
	if dies {
		return len(entries)
	}
	if err := store.AckOutbox(ctx, entries); err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func simSummary(a state.Account, rules state.Rules) string {
	l := a.Ledger(rules)
	return fmt.Sprintf("cash %s held %s paid out %s consumed %s unfunded %s overdue %s unsettled %s transferred %s reserve %s/%s withdrawable %s",
		l.Cash, l.Held, l.PaidOut, l.Consumed, l.Unfunded, l.Overdue, l.Unsettled, l.Transferred, l.Reserve, l.ReserveState, l.Withdrawable)
}
