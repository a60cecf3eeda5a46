package redisstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

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
