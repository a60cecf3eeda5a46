package consumers_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// lockstepStore makes two countdown runners load the same accounts before either saves:
// the first Load of each runner waits for the other's. claimed is closed once the
// first runner has claimed.
type lockstepStore struct {
	consumers.CountdownStore
	bothLoaded *sync.WaitGroup
	once       sync.Once
	claimed    chan struct{}
}

func (s *lockstepStore) ClaimDueTimers(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	got, err := s.CountdownStore.ClaimDueTimers(ctx, now, lease, limit)
	if s.claimed != nil {
		close(s.claimed)
		s.claimed = nil
	}
	return got, err
}

func (s *lockstepStore) Load(ctx context.Context, ids []string, refs []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error) {
	loaded, seen, err := s.CountdownStore.Load(ctx, ids, refs)
	s.once.Do(func() {
		s.bothLoaded.Done()
		s.bothLoaded.Wait()
	})
	return loaded, seen, err
}

func TestTwoRunnersFiringTheSameDeadlineTogetherReleaseTheReserveOnce(t *testing.T) {
	for name, rdb := range map[string]func(t *testing.T) *redis.Client{
		"miniredis": func(t *testing.T) *redis.Client {
			return redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr(), Protocol: connect.DefaultRedisProtocol})
		},
		"redis-server": func(t *testing.T) *redis.Client { return testenv.StartRedis(t).Client(t) },
	} {
		t.Run(name, func(t *testing.T) {
			client := rdb(t)
			t.Cleanup(func() { _ = client.Close() })
			store := testenv.PreparedStore(t, client)
			ctx := context.Background()
			rules := state.DefaultRules()
			deadline := countingDownAccount(t, store, rules, "acct-race")

			// Runner b's clock is past runner a's lease, so b takes a's claim while a
			// is still working on it, as when a stalls.
			var bothLoaded sync.WaitGroup
			bothLoaded.Add(2)
			aClaimed := make(chan struct{})
			runner := func(now time.Time, claimed chan struct{}) *consumers.Countdowns {
				return consumers.NewCountdowns(&lockstepStore{CountdownStore: store, bothLoaded: &bothLoaded, claimed: claimed},
					zerolog.New(zerolog.NewTestWriter(t)), consumers.CountdownConfig{
						Rules: &rules, Lease: time.Millisecond, Clock: func() time.Time { return now },
					})
			}
			a := runner(deadline, aClaimed)
			b := runner(deadline.Add(time.Second), nil)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); a.FireDue(ctx) }()
			go func() {
				defer wg.Done()
				<-aClaimed
				b.FireDue(ctx)
			}()
			wg.Wait()

			acct, _, err := store.Account(ctx, "acct-race")
			if err != nil {
				t.Fatal(err)
			}
			if l := acct.Ledger(rules); l.ReserveState != state.ReserveNone {
				t.Fatalf("reserve %s, want released", l.ReserveState)
			}
			if n := countOutbox(t, store, events.ReserveUnfrozen); n != 1 {
				t.Fatalf("%d refunds.reserve.unfrozen queued, want exactly 1", n)
			}
			if n, _ := store.PendingTimers(ctx); n != 0 {
				t.Fatalf("%d deadlines still pending or claimed after the release", n)
			}
		})
	}
}

// countingDownAccount saves an account whose pay-as-you-go resource was released, and
// returns its reserve deadline.
func countingDownAccount(t *testing.T, store *redisstore.Store, rules state.Rules, id string) time.Time {
	t.Helper()
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	a := state.NewAccount(id)
	var version string
	for i, ev := range []struct {
		typ events.Type
		p   events.Payload
	}{
		{events.AccountOpened, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true}},
		{events.ResourceCreated, &events.ResourceCreatedData{ResourceID: "ecs-1", BillingMode: "payg"}},
		{events.ResourceReleased, &events.ResourceReleasedData{ResourceID: "ecs-1"}},
	} {
		e, err := events.New(ev.typ, id, "/billing", id+"-"+string(rune('a'+i)), at, ev.p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := state.Apply(a, e, rules, at)
		if err != nil {
			t.Fatal(err)
		}
		step := d.Step(state.EventRef{AccountID: id, EventID: e.ID}, version)
		if out, err := store.Commit(context.Background(), []state.Step{step}); err != nil || out[0].Outcome != state.Applied {
			t.Fatalf("save %s: %v %v", ev.typ, out, err)
		}
		a, version = d.Account, step.NextVersion()
	}
	return *a.ReserveDeadline(rules)
}

func countOutbox(t *testing.T, store *redisstore.Store, typ events.Type) int {
	t.Helper()
	entries, err := store.ReadOutbox(context.Background(), "counter", 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if ev, err := events.Decode(e.Body); err == nil && ev.Type == typ {
			n++
		}
	}
	return n
}

// holdLog records, in order, a runner's holds on the relay and its saves.
type holdLog struct {
	consumers.CountdownStore
	mu    sync.Mutex
	calls []string
}

func (h *holdLog) note(call string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, call)
}

func (h *holdLog) HoldHanded() { h.note("hold") }
func (h *holdLog) ReleaseHanded(saved bool) {
	if saved {
		h.note("release, read first")
	} else {
		h.note("release")
	}
}

func (h *holdLog) Commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error) {
	h.note("save")
	return h.CountdownStore.Commit(ctx, steps)
}

// The timer runner saves for the accounts the intake hands events of, on its own
// goroutine: it holds the relay's handed events while it saves, and has what it
// saved read from the outbox before them.
func TestTheTimerRunnerHoldsHandedEventsWhileItSaves(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr(), Protocol: connect.DefaultRedisProtocol})
	t.Cleanup(func() { _ = client.Close() })
	store := testenv.PreparedStore(t, client)
	rules := state.DefaultRules()
	deadline := countingDownAccount(t, store, rules, "acct-hold")
	log := &holdLog{CountdownStore: store}
	runner := consumers.NewCountdowns(log, zerolog.New(zerolog.NewTestWriter(t)), consumers.CountdownConfig{
		Rules: &rules, Relay: log, Clock: func() time.Time { return deadline },
	})
	runner.FireDue(context.Background())
	if got, want := strings.Join(log.calls, "; "), "hold; save; release, read first"; got != want {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if n := countOutbox(t, store, events.ReserveUnfrozen); n != 1 {
		t.Fatalf("%d refunds.reserve.unfrozen queued, want 1", n)
	}
}
