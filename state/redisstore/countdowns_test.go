package redisstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

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

func TestPendingDeadlinesAreCountedByKindAsTheyStartMoveAndStop(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
		set := func(account, event string, deadline *time.Time, kind state.TimerKind) {
			t.Helper()
			loaded, _, err := s.Load(ctx, []string{account}, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := state.NewAccount(account)
			outcomes, err := s.Commit(ctx, []state.Step{{
				Event: state.EventRef{AccountID: account, EventID: event}, ExpectedVersion: loaded[account].Version,
				Account: &a, SetNextDeadline: true, NextDeadline: deadline, NextDeadlineKind: string(kind),
			}})
			if err != nil || outcomes[0].Outcome != state.Applied {
				t.Fatalf("set deadline: %v %v", outcomes, err)
			}
		}
		want := func(reserve, overdue int64) {
			t.Helper()
			got, err := s.PendingTimersByKind(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got[string(state.TimerReserveUnfreeze)] != reserve || got[string(state.TimerCaseOverdue)] != overdue {
				t.Fatalf("pending by kind %v, want %d reserve and %d case overdue", got, reserve, overdue)
			}
		}
		set("acct-a", "e1", &at, state.TimerReserveUnfreeze)
		set("acct-b", "e2", &at, state.TimerReserveUnfreeze)
		want(2, 0)
		later := at.Add(time.Hour)
		set("acct-a", "e3", &later, state.TimerReserveUnfreeze) // moved, same kind
		want(2, 0)
		set("acct-b", "e4", &later, state.TimerCaseOverdue) // the earliest is now a case's
		want(1, 1)
		set("acct-a", "e5", nil, "") // every timer of acct-a stopped
		want(0, 1)
	})
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
