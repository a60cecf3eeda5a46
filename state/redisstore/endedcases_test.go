package redisstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// succeededWithdrawal is an ended withdrawal as most end: paid out by the original
// route.
func succeededWithdrawal(id string, at time.Time) state.Case {
	return state.Case{
		ID: id, Kind: events.CaseWithdrawal, Status: events.StatusSucceeded, Amount: decimal.RequireFromString("180.11"),
		TopupID: "t2", Route: events.RouteOriginal, OpenedAt: at, PayoutID: "po-" + id,
		History: []state.CaseEntry{
			{Status: events.StatusApprovedPendingTransfer, At: at, By: state.ByRules, Reason: "original payment route"},
			{Status: events.StatusSucceeded, At: at.Add(15 * time.Second), By: state.ByPayout, Reason: "payout succeeded"},
		},
	}
}

// endedStep is a step of account that ends cases (and indexes them, as the step that
// opened them did), on the version expected.
func endedStep(account, eventID, expected string, ended ...state.Case) state.Step {
	st := state.Step{
		Event: state.EventRef{AccountID: account, EventID: eventID}, ExpectedVersion: expected,
		Account: accountWithCash(account, "1"), Digest: digestOf(eventID), ClosedCases: ended,
	}
	for _, c := range ended {
		st.OpenedCases = append(st.OpenedCases, c.ID)
	}
	return st
}

// whereKept says where the store keeps an ended case: "account" (a "ce:" field of
// the account's hash), "apart" (the account's hash of ended cases), "both" or "".
func whereKept(t *testing.T, rdb *redis.Client, account, caseID string) string {
	t.Helper()
	ctx := context.Background()
	inAccount := rdb.HExists(ctx, redisstore.AccountKeyForTest(account), "ce:"+caseID).Val()
	apart := rdb.HExists(ctx, redisstore.ClosedCasesKeyForTest(account), caseID).Val()
	switch {
	case inAccount && apart:
		return "both"
	case inAccount:
		return "account"
	case apart:
		return "apart"
	}
	return ""
}

// wantEndedCase checks that every way of reading an ended case finds it as it ended:
// by its id (the read API), in its account's list, and for an event that names it.
func wantEndedCase(t *testing.T, s *redisstore.Store, account string, want state.Case) {
	t.Helper()
	ctx := context.Background()
	got, owner, ok, err := s.Case(ctx, want.ID)
	if err != nil || !ok || owner != account || got.Status != want.Status || len(got.History) != len(want.History) {
		t.Fatalf("case %s by its id: %+v of %q, found %v (%v); want %s with %d moves", want.ID, got, owner, ok, err, want.Status, len(want.History))
	}
	listed, err := s.EndedCases(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(listed, func(c state.Case) bool { return c.ID == want.ID })
	if i < 0 || len(listed[i].History) != len(want.History) {
		t.Fatalf("case %s is not listed as it ended among its account's %d ended cases", want.ID, len(listed))
	}
	ref := state.EventRef{AccountID: account, EventID: "evt-naming-" + want.ID, CaseID: want.ID}
	loaded, _, err := s.Load(ctx, []string{account}, []state.EventRef{ref})
	if err != nil || loaded[account].Err != nil {
		t.Fatalf("load for an event naming %s: %v %v", want.ID, err, loaded[account].Err)
	}
	all := loaded[account].Account.AllCases()
	if i := slices.IndexFunc(all, func(c state.Case) bool { return c.ID == want.ID }); i < 0 || len(all[i].History) != len(want.History) {
		t.Fatalf("an event naming %s is decided without it as it ended", want.ID)
	}
}

func TestEndedCasesAreKeptInTheirAccountsHashADayAfterTheUpgrade(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		// A database the version before wrote: it holds keys, and never had the
		// key-per-record layout.
		if err := rdb.Set(ctx, "rf:idempotency-hashes-since", "0", 0).Err(); err != nil {
			t.Fatal(err)
		}
		s, c := storeOnAClock(t, rdb)
		const account = "acct-ended"
		during := endedStep(account, "evt-1", "", succeededWithdrawal("w-1", upgradedAt))
		if got := commitOne(t, s, during); got != state.Applied {
			t.Fatalf("a step ending a case: %s", got)
		}
		// The version before, which may still run for a day, cannot read an account
		// holding an ended case: it finds it apart, where it keeps them.
		if got := whereKept(t, rdb, account, "w-1"); got != "apart" {
			t.Fatalf("a case ended during the day of overlap is kept in %q, want apart", got)
		}

		c.now = upgradedAt.Add(redisstore.VersionOverlap + time.Second)
		after := preparedAt(t, rdb, c)
		ended := endedStep(account, "evt-2", during.NextVersion(), succeededWithdrawal("w-2", c.now))
		if got := commitOne(t, after, ended); got != state.Applied {
			t.Fatalf("a step ending a case a day later: %s", got)
		}
		if got := whereKept(t, rdb, account, "w-2"); got != "account" {
			t.Fatalf("a case ended a day after the upgrade is kept in %q, want in its account's hash", got)
		}
		for _, c := range []state.Case{during.ClosedCases[0], ended.ClosedCases[0]} {
			wantEndedCase(t, after, account, c)
		}
		// The ended case is no part of the account's document.
		a, ok, err := after.Account(ctx, account)
		if err != nil || !ok || len(a.Cases) != 0 || !a.Consumed.Equal(decimal.NewFromInt(1)) {
			t.Fatalf("the account reads as %+v, found %v (%v)", a, ok, err)
		}
	})
}

func TestAnEndedCaseThatWouldMakeItsAccountsHashDearIsKeptApart(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		s := newStore(t, rdb)
		const account = "acct-long"
		at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
		short := succeededWithdrawal("w-1", at)
		first := endedStep(account, "evt-1", "", short)
		if got := commitOne(t, s, first); got != state.Applied {
			t.Fatalf("ending a case: %s", got)
		}
		if got := whereKept(t, rdb, account, "w-1"); got != "account" {
			t.Fatalf("a case of two moves is kept in %q, want in its account's hash", got)
		}

		// The payout is reversed after its success, and the case changes again with a
		// long history of its own words: deflated it is still larger than a listpack
		// keeps (512 bytes), and would make the whole hash a hash table.
		long := short
		long.Status = events.StatusFailed
		long.History = slices.Clone(short.History)
		for i := range 20 {
			sum := sha256.Sum256(fmt.Appendf(nil, "note %d", i))
			long.History = append(long.History, state.CaseEntry{Status: events.StatusFailed, At: at.Add(time.Duration(i) * time.Hour), By: state.ByPayout,
				Reason: fmt.Sprintf("payout reversed after success: bank reference %x", sum[:16])})
		}
		again := endedStep(account, "evt-2", first.NextVersion(), long)
		if got := commitOne(t, s, again); got != state.Applied {
			t.Fatalf("changing the ended case: %s", got)
		}
		if got := whereKept(t, rdb, account, "w-1"); got != "apart" {
			t.Fatalf("a case with a long history is kept in %q, want apart alone (no stale copy in the account)", got)
		}
		wantEndedCase(t, s, account, long)

		// An account with many fields keeps further cases apart: every step searches
		// its listpack end to end.
		var many []state.Case
		for i := range 80 {
			many = append(many, succeededWithdrawal(fmt.Sprintf("w-many-%02d", i), at))
		}
		crowded := endedStep(account, "evt-3", again.NextVersion(), many...)
		if got := commitOne(t, s, crowded); got != state.Applied {
			t.Fatalf("ending 80 cases: %s", got)
		}
		ctx := context.Background()
		if n := rdb.HLen(ctx, redisstore.AccountKeyForTest(account)).Val(); n != 32 {
			t.Fatalf("the account's hash has %d fields after 80 cases ended, want 32", n)
		}
		listed, err := s.EndedCases(ctx, account)
		if err != nil || len(listed) != 81 {
			t.Fatalf("%d ended cases listed (%v), want 81", len(listed), err)
		}
		wantEndedCase(t, s, account, many[0])
		wantEndedCase(t, s, account, many[79])
	})
}

func TestReplacingAnAccountsHashKeepsTheEndedCasesInIt(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		s := newStore(t, rdb)
		const account = "acct-replaced"
		first := endedStep(account, "evt-1", "", succeededWithdrawal("w-1", upgradedAt))
		first.Account.TopUps = []state.TopUp{{ID: "t1", Amount: decimal.NewFromInt(50), Channel: "alipay", ReceivedAt: upgradedAt}}
		if got := commitOne(t, s, first); got != state.Applied {
			t.Fatalf("ending a case: %s", got)
		}
		// Another instance, which has not cached the account, decides the next step:
		// it replaces the hash whole, and the account it writes has no top-up left.
		other := preparedAt(t, rdb, &clock{now: upgradedAt})
		next := state.Step{Event: state.EventRef{AccountID: account, EventID: "evt-2"}, ExpectedVersion: first.NextVersion(),
			Account: accountWithCash(account, "2"), Digest: digestOf("evt-2")}
		if got := commitOne(t, other, next); got != state.Applied {
			t.Fatalf("a step from an instance without the account cached: %s", got)
		}
		fields := rdb.HKeys(ctx, redisstore.AccountKeyForTest(account)).Val()
		if slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, "tu:") }) {
			t.Fatalf("the replaced hash still has the top-up that left: %v", fields)
		}
		if got := whereKept(t, rdb, account, "w-1"); got != "account" {
			t.Fatalf("after the hash was replaced, the ended case is kept in %q, want still in the account's hash", got)
		}
		wantEndedCase(t, other, account, first.ClosedCases[0])
	})
}

func TestBeforeARollbackEveryEndedCaseMovesApartWhereTheVersionBeforeReadsIt(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		s := newStore(t, rdb)
		at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
		accounts := map[string][]state.Case{
			"acct-two":  {succeededWithdrawal("w-a1", at), succeededWithdrawal("w-a2", at)},
			"acct-one":  {succeededWithdrawal("w-b1", at)},
			"acct-none": nil,
		}
		versions := map[string]string{}
		for account, ended := range accounts {
			st := endedStep(account, "evt-"+account, "", ended...)
			if got := commitOne(t, s, st); got != state.Applied {
				t.Fatalf("%s: %s", account, got)
			}
			versions[account] = st.NextVersion()
		}
		if got := whereKept(t, rdb, "acct-two", "w-a1"); got != "account" {
			t.Fatalf("before the move, a case is kept in %q", got)
		}

		// An instance started before the move, not restarted, ends a case while the
		// move runs: it still keeps it in the account, and the move says so.
		late := endedStep("acct-late", "evt-late", "", succeededWithdrawal("w-late", at))
		var reports []redisstore.EndedCasesMoved
		moved, err := s.MoveEndedCasesApart(ctx, func(p redisstore.EndedCasesMoved) {
			if len(reports) == 0 && commitOne(t, s, late) != state.Applied {
				t.Error("the late step was not applied")
			}
			reports = append(reports, p)
		})
		if !errors.Is(err, redisstore.ErrEndedCasesStillInAccounts) || moved.Cases != 4 || len(reports) == 0 || reports[len(reports)-1].Accounts != 3 {
			t.Fatalf("moved %+v (%v), progress %+v: want 4 cases moved, 3 of 3 accounts reported, and the late one found", moved, err, reports)
		}
		if mark := rdb.Get(ctx, "rf:ended-cases-in-accounts-since").Val(); mark != redisstore.EndedCasesApartUntilDeleted {
			t.Fatalf("the mark is %q: instances started now would keep cases in accounts again a day later", mark)
		}
		accounts["acct-late"], versions["acct-late"] = late.ClosedCases, late.NextVersion()
		for account, ended := range accounts {
			fields := rdb.HKeys(ctx, redisstore.AccountKeyForTest(account)).Val()
			if slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, "ce:") }) {
				t.Fatalf("%s still holds an ended case the version before cannot read: %v", account, fields)
			}
			if v := rdb.HGet(ctx, redisstore.AccountKeyForTest(account), "v").Val(); v != versions[account] {
				t.Fatalf("%s: the move changed the version to %q: steps decided on it would conflict", account, v)
			}
			for _, c := range ended {
				if got := whereKept(t, rdb, account, c.ID); got != "apart" {
					t.Fatalf("%s after the move is kept in %q, want apart", c.ID, got)
				}
				wantEndedCase(t, s, account, c)
			}
		}

		// Restarted, an instance keeps the cases it ends apart, long after a day.
		restarted := preparedAt(t, rdb, &clock{now: time.Now().Add(30 * 24 * time.Hour)})
		next := endedStep("acct-one", "evt-after", versions["acct-one"], succeededWithdrawal("w-b2", at))
		if got := commitOne(t, restarted, next); got != state.Applied {
			t.Fatalf("a step after the move: %s", got)
		}
		if got := whereKept(t, rdb, "acct-one", "w-b2"); got != "apart" {
			t.Fatalf("a case ended by an instance restarted after the move is kept in %q, want apart", got)
		}
		if again, err := restarted.MoveEndedCasesApart(ctx, nil); err != nil || again.Cases != 0 {
			t.Fatalf("run again, it moved %+v (%v), want nothing", again, err)
		}
	})
}
