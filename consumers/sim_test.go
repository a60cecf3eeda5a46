package consumers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// A deterministic simulation, in the spirit of TigerBeetle's VOPR: a seeded random
// history of billing facts for a few accounts goes through the real intake (decide,
// commit, settle) and the real store on miniredis, delivered the way JetStream would
// with faults at its seams:
//
//   - two intakes with their own stores and caches take interleaved batches, so they
//     race on the same accounts (a conflicting instance);
//   - an ack is lost: an acknowledged message is delivered again;
//   - a process dies between save and ack: the batch is saved, nothing is acknowledged,
//     and everything in it is delivered again;
//   - a publisher retries: the same event is in the stream twice.
//
// The facts chosen are the ones whose effect does not depend on their order, so the
// final state must equal a fault-free run of the same events, and every effect must be
// counted once. A failure prints its seed; `go test -run Sim ./consumers/ -sim.seed N`
// replays it exactly. CI runs simSeeds seeds; -sim.seeds explores more.

var (
	simSeed  = flag.Uint64("sim.seed", 0, "replay one simulation seed (0: run -sim.seeds seeds)")
	simSeeds = flag.Int("sim.seeds", 40, "how many seeds the simulation explores")
)

// simSeedList is -sim.seed alone when given, else seeds 1 to -sim.seeds.
func simSeedList() []uint64 {
	if *simSeed != 0 {
		return []uint64{*simSeed}
	}
	seeds := make([]uint64, 0, *simSeeds)
	for i := range *simSeeds {
		seeds = append(seeds, uint64(i+1))
	}
	return seeds
}

func TestSimIntakeUnderFaultsEndsAsAFaultFreeRun(t *testing.T) {
	seeds := simSeedList()
	histories, faults := 0, map[string]int{}
	for _, seed := range seeds {
		history := simHistory(seed)
		clean := simRun(t, seed, history, false, faults)
		faulty := simRun(t, seed, history, true, faults)
		for id, want := range clean {
			if got := faulty[id]; got != want {
				t.Fatalf("seed %d: account %s ended as\n %s\nwith faults, and as\n %s\nwithout; replay with -sim.seed %d", seed, id, got, want, seed)
			}
		}
		histories++
	}
	t.Logf("%d histories checked; faults injected: %v", histories, faults)
}

// simHistory is a seeded history of order-independent facts for 3 accounts.
func simHistory(seed uint64) []events.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	var evs []events.Event
	add := func(typ events.Type, acct, id string, p events.Payload) {
		ev, err := events.New(typ, acct, "/sim", id, at.Add(time.Duration(r.IntN(1000))*time.Minute), p)
		if err != nil {
			panic(err)
		}
		evs = append(evs, ev)
	}
	cents := func(max int64) events.Amount { return events.Amount{Decimal: decimal.New(1+r.Int64N(max), -2)} }
	for a := range 3 {
		acct := fmt.Sprintf("acct-sim-%d", a)
		add(events.AccountOpened, acct, acct+"-open", &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true})
		for i := range 1 + r.IntN(4) {
			add(events.TopupReceived, acct, fmt.Sprintf("%s-t%d", acct, i), &events.TopupReceivedData{
				TopupID: fmt.Sprintf("t%d", i), Amount: cents(100000), Currency: "CNY", Channel: "alipay", PayerType: "individual", PayerName: "Li Wei"})
		}
		for i := range r.IntN(8) {
			add(events.ConsumptionRecorded, acct, fmt.Sprintf("%s-c%d", acct, i), &events.ConsumptionRecordedData{ConsumptionID: fmt.Sprintf("c%d", i), Amount: cents(30000)})
		}
		for i := range r.IntN(3) {
			add(events.BillIssued, acct, fmt.Sprintf("%s-b%d", acct, i), &events.BillIssuedData{BillID: fmt.Sprintf("b%d", i), Amount: cents(5000)})
		}
		for i := range r.IntN(3) {
			add(events.VoucherGranted, acct, fmt.Sprintf("%s-v%d", acct, i), &events.VoucherGrantedData{VoucherID: fmt.Sprintf("v%d", i), Amount: cents(2000)})
		}
	}
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	return evs
}

// simRun delivers history to the intake(s) until every message is settled for good,
// and returns each account's ledger as JSON.
func simRun(t *testing.T, seed uint64, history []events.Event, withFaults bool, faults map[string]int) map[string]string {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 2))
	mr := miniredis.RunT(t)
	var intakes []*Intake
	var stores []*redisstore.Store
	var clients []*redis.Client
	instances := 1
	if withFaults {
		instances = 2
	}
	for range instances {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), Protocol: connect.DefaultRedisProtocol})
		t.Cleanup(func() { _ = rdb.Close() })
		clients = append(clients, rdb)
		store := redisstore.New(rdb)
		if err := store.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock := func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }
		stores = append(stores, store)
		intakes = append(intakes, NewIntake(nil, nil, store, zerolog.Nop(), Config{Clock: clock}))
	}
	stream := newSimStream(history)
	if withFaults {
		for _, ev := range history {
			if r.IntN(5) == 0 { // a publisher's retry: the same event stored twice
				stream.add(ev)
				faults["republished"]++
			}
		}
	}
	for rounds := 0; stream.pending() > 0; rounds++ {
		if rounds > 10000 {
			t.Fatalf("seed %d: %d messages still unsettled after %d rounds", seed, stream.pending(), rounds)
		}
		in := intakes[r.IntN(len(intakes))]
		batch := stream.take(1 + r.IntN(6))
		crash := withFaults && r.IntN(8) == 0
		if crash {
			in.beforeAck = func() error { return errors.New("killed between save and ack") }
			faults["crash between save and ack"]++
		}
		_, err := in.handle(context.Background(), NewBatch(batch))
		in.beforeAck = nil
		if crash != (err != nil) {
			t.Fatalf("seed %d: handle returned %v", seed, err)
		}
		for _, m := range batch {
			sm := m.(*simMsg)
			if withFaults && sm.settled == "ack" && r.IntN(10) == 0 {
				sm.settled = "" // the ack was lost on its way
				faults["lost ack"]++
			}
			stream.settle(sm)
		}
	}
	// Every outbound event is in the outbox once: a decision saved twice would have
	// queued its events twice.
	ids := map[string]bool{}
	for p := range redisstore.Partitions {
		entries, err := clients[0].XRange(context.Background(), fmt.Sprintf("rf:{p%02d}:outbox", p), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			id, _ := e.Values["id"].(string)
			if ids[id] {
				t.Fatalf("seed %d: outbound event %s queued twice", seed, id)
			}
			ids[id] = true
		}
	}
	ledgers := map[string]string{}
	for _, ev := range history {
		a, ok, err := stores[0].Account(context.Background(), ev.Subject)
		if err != nil || !ok {
			t.Fatalf("seed %d: account %s: found %t, err %v", seed, ev.Subject, ok, err)
		}
		l := a.Ledger(state.DefaultRules())
		ledgers[ev.Subject] = fmt.Sprintf("cash %s consumed %s overdue %s vouchers %s unfunded %s topups %d",
			l.Cash, l.Consumed, l.Overdue, l.Vouchers, l.Unfunded, len(l.TopUps))
	}
	return ledgers
}

// simStream holds messages the way a JetStream consumer does: each stored message is
// delivered until it is acked or terminated; a nak'd or unsettled one comes back.
type simStream struct {
	queue []*simMsg
	seq   uint64
}

func newSimStream(history []events.Event) *simStream {
	s := &simStream{}
	for _, ev := range history {
		s.add(ev)
	}
	return s
}

func (s *simStream) add(ev events.Event) {
	body, err := ev.Encode()
	if err != nil {
		panic(err)
	}
	s.seq++
	s.queue = append(s.queue, &simMsg{subject: ev.NATSSubject(), data: body, seq: s.seq})
}

func (s *simStream) pending() int { return len(s.queue) }

// take delivers up to n messages, oldest first.
func (s *simStream) take(n int) []jetstream.Msg {
	n = min(n, len(s.queue))
	out := make([]jetstream.Msg, 0, n)
	for _, m := range s.queue[:n] {
		m.delivered++
		m.settled = ""
		out = append(out, m)
	}
	s.queue = s.queue[n:]
	return out
}

// settle puts a message that was not acked or terminated back at the end of the queue.
func (s *simStream) settle(m *simMsg) {
	if m.settled == "ack" || m.settled == "term" {
		return
	}
	s.queue = append(s.queue, m)
}

// simMsg is one stored message as the intake sees it.
type simMsg struct {
	subject   string
	data      []byte
	seq       uint64
	delivered uint64
	settled   string
}

func (m *simMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered, Timestamp: time.Date(2026, 11, 23, 7, 59, 0, 0, time.UTC),
		Stream: "SIM", Sequence: jetstream.SequencePair{Stream: m.seq}}, nil
}
func (m *simMsg) Data() []byte                     { return m.data }
func (m *simMsg) Headers() nats.Header             { return nats.Header{} }
func (m *simMsg) Subject() string                  { return m.subject }
func (m *simMsg) Reply() string                    { return "" }
func (m *simMsg) Ack() error                       { m.settled = "ack"; return nil }
func (m *simMsg) DoubleAck(context.Context) error  { m.settled = "ack"; return nil }
func (m *simMsg) Nak() error                       { m.settled = "nak"; return nil }
func (m *simMsg) NakWithDelay(time.Duration) error { m.settled = "nak"; return nil }
func (m *simMsg) InProgress() error                { return nil }
func (m *simMsg) Term() error                      { m.settled = "term"; return nil }
func (m *simMsg) TermWithReason(string) error      { m.settled = "term"; return nil }
