package redisstore_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

func TestReserveDeadlinesAreClaimedOnceAndNeverLost(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		deadline := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		lease := 10 * time.Second
		setDeadline := func(account, event string, at *time.Time) {
			t.Helper()
			a := state.NewAccount(account)
			loaded, _, err := s.Load(ctx, []string{account}, nil)
			if err != nil {
				t.Fatal(err)
			}
			version := loaded[account].Version
			outcomes, err := s.Commit(ctx, []state.Step{{
				Event: state.EventRef{AccountID: account, EventID: event}, ExpectedVersion: version,
				Account: &a, SetNextDeadline: true, NextDeadline: at,
			}})
			if err != nil || outcomes[0].Outcome != state.Applied {
				t.Fatalf("set deadline: %v %v", outcomes, err)
			}
		}
		claim := func(now time.Time) []string {
			t.Helper()
			got, err := s.ClaimDueTimers(ctx, now, lease, 100)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			return got
		}

		setDeadline("acct-a", "e-a", &deadline)
		later := deadline.Add(time.Hour)
		setDeadline("acct-b", "e-b", &later)

		t.Run("nothing is claimed before its deadline", func(t *testing.T) {
			if got := claim(deadline.Add(-time.Millisecond)); len(got) != 0 {
				t.Fatalf("claimed %v", got)
			}
		})
		t.Run("at the deadline exactly one caller claims it", func(t *testing.T) {
			if got := claim(deadline); !slices.Equal(got, []string{"acct-a"}) {
				t.Fatalf("claimed %v, want [acct-a]", got)
			}
			if got := claim(deadline); len(got) != 0 {
				t.Fatalf("a second caller also claimed %v", got)
			}
		})
		t.Run("a claim whose lease ran out is claimed again", func(t *testing.T) {
			if got := claim(deadline.Add(lease)); !slices.Equal(got, []string{"acct-a"}) {
				t.Fatalf("claimed %v after the lease, want [acct-a]", got)
			}
		})
		t.Run("firing releases the claim", func(t *testing.T) {
			a := state.NewAccount("acct-a")
			loaded, _, err := s.Load(ctx, []string{"acct-a"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			outcomes, err := s.Commit(ctx, []state.Step{{
				Event: state.EventRef{AccountID: "acct-a"}, ExpectedVersion: loaded["acct-a"].Version, Account: &a,
				SetNextDeadline: true, NextDeadline: nil, Fired: true,
			}})
			if err != nil || outcomes[0].Outcome != state.Applied {
				t.Fatalf("fire: %v %v", outcomes, err)
			}
			if got := claim(later); !slices.Equal(got, []string{"acct-b"}) {
				t.Fatalf("claimed %v at acct-b's deadline, want only acct-b (acct-a fired)", got)
			}
		})
		t.Run("a moved deadline replaces the pending one, and none removes it", func(t *testing.T) {
			moved := deadline.Add(48 * time.Hour)
			setDeadline("acct-c", "e-c1", &deadline)
			setDeadline("acct-c", "e-c2", &moved)
			if got := claim(deadline.Add(time.Hour)); slices.Contains(got, "acct-c") {
				t.Fatalf("the old deadline of acct-c was claimed: %v", got)
			}
			setDeadline("acct-c", "e-c3", nil)
			if got := claim(moved.Add(time.Hour)); slices.Contains(got, "acct-c") {
				t.Fatalf("a cancelled countdown was claimed: %v", got)
			}
		})
		t.Run("a firing leaves no idempotency record", func(t *testing.T) {
			_, seen, err := s.Load(ctx, nil, []state.EventRef{{AccountID: "acct-a"}})
			if err != nil {
				t.Fatal(err)
			}
			if seen[state.EventRef{AccountID: "acct-a"}] != "" {
				t.Fatal("the firing was remembered as an event")
			}
		})
	})
}

// moveDeadline commits a step of account that sets its next deadline (none when at is
// nil) of kind, firing its claimed deadline when fired.
func moveDeadline(t *testing.T, s *redisstore.Store, account, event string, at *time.Time, kind state.TimerKind, fired bool) {
	t.Helper()
	ctx := context.Background()
	loaded, _, err := s.Load(ctx, []string{account}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := state.NewAccount(account)
	outcomes, err := s.Commit(ctx, []state.Step{{
		Event: state.EventRef{AccountID: account, EventID: event}, ExpectedVersion: loaded[account].Version,
		Account: &a, SetNextDeadline: true, NextDeadline: at, NextDeadlineKind: string(kind), Fired: fired,
	}})
	if err != nil || outcomes[0].Outcome != state.Applied {
		t.Fatalf("set deadline: %v %v", outcomes, err)
	}
}

// wantPendingByKind wants the store to count reserve countdowns and overdue cases so.
func wantPendingByKind(t *testing.T, s *redisstore.Store, reserve, overdue int64) {
	t.Helper()
	got, err := s.PendingTimersByKind(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got[string(state.TimerReserveUnfreeze)] != reserve || got[string(state.TimerCaseOverdue)] != overdue {
		t.Fatalf("pending by kind %v, want %d reserve and %d case overdue", got, reserve, overdue)
	}
}

func TestPendingDeadlinesAreCountedByKindAsTheyStartMoveAndStop(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		moveDeadline(t, s, "acct-a", "e1", &at, state.TimerReserveUnfreeze, false)
		moveDeadline(t, s, "acct-b", "e2", &at, state.TimerReserveUnfreeze, false)
		wantPendingByKind(t, s, 2, 0)
		later := at.Add(time.Hour)
		moveDeadline(t, s, "acct-a", "e3", &later, state.TimerReserveUnfreeze, false) // moved, same kind
		wantPendingByKind(t, s, 2, 0)
		moveDeadline(t, s, "acct-b", "e4", &later, state.TimerCaseOverdue, false) // the earliest is now a case's
		wantPendingByKind(t, s, 1, 1)
		moveDeadline(t, s, "acct-a", "e5", nil, "", false) // every timer of acct-a stopped
		wantPendingByKind(t, s, 0, 1)
	})
}

func TestAClaimedDeadlineKeepsItsKindUntilTheStepThatFiresIt(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		moveDeadline(t, s, "acct-a", "e1", &at, state.TimerCaseOverdue, false)
		moveDeadline(t, s, "acct-b", "e2", &at, state.TimerReserveUnfreeze, false)
		wantPendingByKind(t, s, 1, 1)
		// Due at their deadline to the millisecond, though their scores carry a kind.
		claimed, err := s.ClaimDueTimers(ctx, at, time.Second, 10)
		if slices.Sort(claimed); err != nil || !slices.Equal(claimed, []string{"acct-a", "acct-b"}) {
			t.Fatalf("claimed %v (%v) at the deadline, want both accounts", claimed, err)
		}
		// A lease that ran out is claimed again, and still knows the kind.
		if again, err := s.ClaimDueTimers(ctx, at.Add(time.Second), time.Second, 10); err != nil || len(again) != 2 {
			t.Fatalf("claimed %v (%v) after the lease ran out, want both again", again, err)
		}
		// acct-a's case is reported overdue, and its next deadline is a countdown;
		// acct-b's countdown ends, and nothing is left.
		next := at.Add(24 * time.Hour)
		moveDeadline(t, s, "acct-a", "fire-a", &next, state.TimerReserveUnfreeze, true)
		wantPendingByKind(t, s, 2, 0)
		moveDeadline(t, s, "acct-b", "fire-b", nil, "", true)
		wantPendingByKind(t, s, 1, 0)
		_, _, kinds, _ := redisstore.TimerKeysForTest("acct-a")
		if n := s.ClientForTest().HLen(ctx, kinds).Val(); n != 0 {
			t.Fatalf("%s holds %d kinds: on a new database the scores alone keep them", kinds, n)
		}
	})
}

func TestADeadlineMovedWhileClaimedIsUncountedOnce(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		claim := func(now time.Time, want int) {
			t.Helper()
			if got, err := s.ClaimDueTimers(ctx, now, time.Second, 10); err != nil || len(got) != want {
				t.Fatalf("claimed %v (%v), want %d accounts", got, err, want)
			}
		}
		moveDeadline(t, s, "acct-a", "e1", &at, state.TimerCaseOverdue, false)
		moveDeadline(t, s, "acct-b", "e2", &at, state.TimerCaseOverdue, false)
		moveDeadline(t, s, "acct-keep", "e3", &at, state.TimerCaseOverdue, false)
		claim(at, 3)
		// While the claims are held: acct-a's case ends (no deadline left); acct-b's
		// deadline becomes a countdown, then stops too.
		moveDeadline(t, s, "acct-a", "e4", nil, "", false)
		later := at.Add(time.Hour)
		moveDeadline(t, s, "acct-b", "e5", &later, state.TimerReserveUnfreeze, false)
		moveDeadline(t, s, "acct-b", "e6", nil, "", false)
		wantPendingByKind(t, s, 0, 1)
		// A lease runs out and the claims are taken again before they fire.
		claim(at.Add(time.Second), 3)
		// The claims fire, finding nothing left to do.
		moveDeadline(t, s, "acct-a", "fire-a", nil, "", true)
		moveDeadline(t, s, "acct-b", "fire-b", nil, "", true)
		wantPendingByKind(t, s, 0, 1)
		moveDeadline(t, s, "acct-keep", "fire-keep", nil, "", true)
		wantPendingByKind(t, s, 0, 0)
	})
}

func TestDeadlinesTheVersionBeforeCountedAreUncountedOnceAndItsKindsKeptForADay(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		// What the version before left: acct-old's case overdue at a whole ms, its kind
		// in the hash, counted.
		at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		due, _, kinds, counts := redisstore.TimerKeysForTest("acct-old")
		if err := rdb.ZAdd(ctx, due, redis.Z{Score: float64(at.UnixMilli()), Member: "acct-old"}).Err(); err != nil {
			t.Fatal(err)
		}
		rdb.HSet(ctx, kinds, "acct-old", string(state.TimerCaseOverdue))
		rdb.HSet(ctx, counts, string(state.TimerCaseOverdue), 1)
		rdb.Set(ctx, "rf:idempotency-hashes-since", "0", 0)
		s, c := storeOnAClock(t, rdb)
		wantPendingByKind(t, s, 0, 1)
		kindKept := func(account string) string {
			_, _, kinds, _ := redisstore.TimerKeysForTest(account)
			return rdb.HGet(ctx, kinds, account).Val()
		}

		// For a day an instance of the version before may still run, which reads kinds
		// from the hash alone: they are kept there too.
		moveDeadline(t, s, "acct-new", "e1", &at, state.TimerReserveUnfreeze, false)
		wantPendingByKind(t, s, 1, 1)
		if got := kindKept("acct-new"); got != string(state.TimerReserveUnfreeze) {
			t.Fatalf("on the day of the upgrade acct-new's kind in the hash is %q", got)
		}
		// That instance moves acct-new's deadline again, to a whole ms: no kind in
		// its score, and the hash as it was.
		rdb.ZAdd(ctx, due, redis.Z{Score: float64(at.Add(time.Hour).UnixMilli()), Member: "acct-new"})

		// After the day, each is uncounted once, from the hash or from its score, and
		// the hash empties as deadlines move.
		c.now = c.now.Add(redisstore.VersionOverlap)
		later := at.Add(2 * time.Hour)
		moveDeadline(t, s, "acct-old", "e2", &later, state.TimerReserveUnfreeze, false)
		wantPendingByKind(t, s, 2, 0)
		moveDeadline(t, s, "acct-new", "e3", &later, state.TimerCaseOverdue, false)
		wantPendingByKind(t, s, 1, 1)
		moveDeadline(t, s, "acct-old", "e4", nil, "", false)
		wantPendingByKind(t, s, 0, 1)
		if old, new := kindKept("acct-old"), kindKept("acct-new"); old != "" || new != "" {
			t.Fatalf("a day after the upgrade the hash still holds %q and %q", old, new)
		}
	})
}

func TestTheStepScriptKnowsEveryTimerKindByItsLastingCode(t *testing.T) {
	listed := regexp.MustCompile(`local timerKinds = \{([^}]*)\}`).FindStringSubmatch(redisstore.StepScriptForTest)
	if listed == nil {
		t.Fatal("apply.lua lists no timerKinds")
	}
	var codes []string
	for _, name := range strings.Split(listed[1], ",") {
		codes = append(codes, strings.Trim(strings.TrimSpace(name), "'"))
	}
	// A kind's code (its place in the list) is kept in the scores of pending
	// deadlines: the codes given stay, new kinds go after them, and 15 at most fit
	// in sixteenths of a millisecond.
	given := []string{string(state.TimerReserveUnfreeze), string(state.TimerCaseOverdue), string(state.TimerSettlementEnd)}
	if len(codes) < len(given) || !slices.Equal(codes[:len(given)], given) || len(codes) > 15 {
		t.Fatalf("apply.lua's timerKinds are %q: want %q first, and at most 15", codes, given)
	}
	for _, kind := range state.TimerKinds() {
		if !slices.Contains(codes, string(kind)) {
			t.Errorf("apply.lua's timerKinds %q lack %s: its deadlines would carry no kind and never be uncounted", codes, kind)
		}
	}
}

func TestCasesAreCountedByStatusAsTheyMoveAndNeverTwiceForARepeatedEvent(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		move := func(event, previous, status string) state.StepResult {
			t.Helper()
			loaded, _, err := s.Load(ctx, []string{"acct-c"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			changed, err := events.New(events.CaseStatusChanged, "acct-c", state.Source, event+"-out", at, &events.CaseStatusChangedData{
				CaseID: "w1", Kind: events.CaseWithdrawal, Previous: previous, Status: status, Amount: events.MustAmount("10.00")})
			if err != nil {
				t.Fatal(err)
			}
			a := state.NewAccount("acct-c")
			outcomes, err := s.Commit(ctx, []state.Step{{
				Event: state.EventRef{AccountID: "acct-c", EventID: event}, ExpectedVersion: loaded["acct-c"].Version,
				Account: &a, Outbound: []events.Event{changed}, Digest: digestOf(event),
			}})
			if err != nil {
				t.Fatal(err)
			}
			return outcomes[0]
		}
		want := func(inReview, rejected int64) {
			t.Helper()
			got, err := s.CasesByStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got["withdrawal/in_review"] != inReview || got["withdrawal/rejected"] != rejected {
				t.Fatalf("cases by status %v, want %d in review and %d rejected", got, inReview, rejected)
			}
		}
		move("e1", "", events.StatusInReview)
		want(1, 0)
		move("e2", events.StatusInReview, events.StatusRejected)
		want(0, 1)
		if r := move("e2", events.StatusInReview, events.StatusRejected); r.Outcome != state.Duplicate {
			t.Fatalf("the repeated event: %v", r.Outcome)
		}
		want(0, 1)
	})
}
