package redisstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// forEachRedis runs the suite against miniredis (what --dev uses) and against Debian's
// redis-server in a container, so both behave the same.
func forEachRedis(t *testing.T, suite func(t *testing.T, s *redisstore.Store)) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) { suite(t, newStore(t, rdb)) })
}

// forEachEmptyRedis is forEachRedis for a suite that prepares its own store.
func forEachEmptyRedis(t *testing.T, suite func(t *testing.T, rdb *redis.Client)) {
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), Protocol: connect.DefaultRedisProtocol})
		t.Cleanup(func() { _ = rdb.Close() })
		suite(t, rdb)
	})
	t.Run("redis-server", func(t *testing.T) {
		suite(t, testenv.StartRedis(t).Client(t))
	})
}

func newStore(t *testing.T, rdb *redis.Client) *redisstore.Store {
	t.Helper()
	t.Cleanup(func() { _ = rdb.Close() })
	return testenv.PreparedStore(t, rdb)
}

func accountWithCash(id, consumed string) *state.Account {
	a := state.NewAccount(id)
	a.Opened = true
	a.Currency = "CNY"
	a.Consumed = decimal.RequireFromString(consumed)
	return &a
}

// holderStep is a step of account that leaves it overdue, or not, under holder.
func holderStep(account, eventID, expectedVersion, holder string, overdue bool) state.Step {
	return state.Step{
		Event: state.EventRef{AccountID: account, EventID: eventID}, ExpectedVersion: expectedVersion,
		Account: accountWithCash(account, "0"), Digest: digestOf(eventID),
		HolderOverdue: &state.HolderOverdue{Name: holder, Overdue: overdue},
	}
}

func TestStore(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		ref := state.EventRef{AccountID: "acct-1", EventID: "evt-1"}
		out, err := events.New(events.BalanceChanged, "acct-1", state.Source, "rf-1", time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC),
			&events.BalanceChangedData{CauseID: "evt-1", CauseType: events.TopupReceived, Currency: "CNY", Cash: events.MustAmount("5.00"), Withdrawable: events.MustAmount("5.00")})
		if err != nil {
			t.Fatal(err)
		}
		wantBody, err := out.Encode()
		if err != nil {
			t.Fatal(err)
		}

		t.Run("an account never seen loads as new, with no version", func(t *testing.T) {
			accts, seen, err := s.Load(ctx, []string{"acct-1"}, []state.EventRef{ref})
			if err != nil {
				t.Fatal(err)
			}
			if accts["acct-1"].Version != "" || accts["acct-1"].Account.ID != "acct-1" || seen[ref] != "" {
				t.Fatalf("got %+v seen=%v", accts["acct-1"], seen[ref])
			}
			if _, ok, _ := s.Account(ctx, "acct-1"); ok {
				t.Fatal("Account reports an unknown account as found")
			}
		})

		first := state.Step{Event: ref, Account: accountWithCash("acct-1", "5"), Outbound: []events.Event{out}}
		t.Run("a step saves the account, remembers the event and queues its outbound events", func(t *testing.T) {
			outcomes, err := s.Commit(ctx, []state.Step{first})
			if err != nil || outcomes[0].Outcome != state.Applied {
				t.Fatalf("outcome %v, err %v", outcomes, err)
			}
			accts, seen, err := s.Load(ctx, []string{"acct-1"}, []state.EventRef{ref})
			if err != nil {
				t.Fatal(err)
			}
			if accts["acct-1"].Version != first.NextVersion() || first.NextVersion() == "" || !accts["acct-1"].Account.Consumed.Equal(decimal.NewFromInt(5)) || seen[ref] == "" {
				t.Fatalf("after commit: %+v seen=%v", accts["acct-1"], seen[ref])
			}
			if n, _ := s.OutboxLength(ctx); n != 1 {
				t.Fatalf("outbox holds %d entries, want 1", n)
			}
		})

		t.Run("the same event again is a duplicate and changes nothing", func(t *testing.T) {
			outcomes, err := s.Commit(ctx, []state.Step{{Event: ref, ExpectedVersion: first.NextVersion(), Account: accountWithCash("acct-1", "99"), Outbound: []events.Event{out}}})
			if err != nil || outcomes[0].Outcome != state.Duplicate {
				t.Fatalf("outcome %v, err %v", outcomes, err)
			}
			a, _, _ := s.Account(ctx, "acct-1")
			if !a.Consumed.Equal(decimal.NewFromInt(5)) {
				t.Fatalf("duplicate changed consumed to %s", a.Consumed)
			}
			if n, _ := s.OutboxLength(ctx); n != 1 {
				t.Fatalf("duplicate queued an outbound event: outbox holds %d", n)
			}
		})

		t.Run("a fact already counted is a duplicate under another event id", func(t *testing.T) {
			fact := "billing.consumption.recorded:c-7"
			first := state.Step{Event: state.EventRef{AccountID: "acct-5", EventID: "e-7a"}, Account: accountWithCash("acct-5", "7"), Fact: fact}
			again := state.Step{Event: state.EventRef{AccountID: "acct-5", EventID: "e-7b"}, ExpectedVersion: first.NextVersion(), Account: accountWithCash("acct-5", "14"), Fact: fact}
			elsewhere := state.Step{Event: state.EventRef{AccountID: "acct-6", EventID: "e-7c"}, Account: accountWithCash("acct-6", "7"), Fact: fact}
			outcomes, err := s.Commit(ctx, []state.Step{first, again, elsewhere})
			if err != nil || outcomes[0].Outcome != state.Applied || outcomes[1].Outcome != state.Duplicate || outcomes[2].Outcome != state.Applied {
				t.Fatalf("outcomes %v, err %v: want applied, duplicate, and applied on the other account", outcomes, err)
			}
			got, _, _ := s.Account(ctx, "acct-5")
			if !got.Consumed.Equal(decimal.NewFromInt(7)) {
				t.Fatalf("consumed %s, want the fact counted once", got.Consumed)
			}
			other := state.Step{Event: state.EventRef{AccountID: "acct-5", EventID: "e-7d"}, ExpectedVersion: first.NextVersion(),
				Account: accountWithCash("acct-5", "70"), Fact: fact, FactDigest: digestOf("other data")}
			if outcomes, err := s.Commit(ctx, []state.Step{other}); err != nil || outcomes[0].Outcome != state.FactConflict {
				t.Fatalf("outcome %v, err %v: the same fact with other data must be a conflict", outcomes, err)
			}
		})

		t.Run("one unreadable account does not stop the others", func(t *testing.T) {
			rdb := s.ClientForTest()
			if err := rdb.HSet(ctx, redisstore.AccountKeyForTest("acct-garbled"), "v", "x", "s", "{not json").Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, redisstore.AccountKeyForTest("acct-wrongtype"), "a string", 0).Err(); err != nil {
				t.Fatal(err)
			}
			accts, _, err := s.Load(ctx, []string{"acct-garbled", "acct-fine"}, nil)
			if err != nil || accts["acct-garbled"].Err == nil || accts["acct-fine"].Err != nil {
				t.Fatalf("load: %v; garbled err %v, fine err %v", err, accts["acct-garbled"].Err, accts["acct-fine"].Err)
			}
			bad := state.Step{Event: state.EventRef{AccountID: "acct-wrongtype", EventID: "e-w"}, Account: accountWithCash("acct-wrongtype", "1")}
			good := state.Step{Event: state.EventRef{AccountID: "acct-fine", EventID: "e-f"}, Account: accountWithCash("acct-fine", "1")}
			outcomes, err := s.Commit(ctx, []state.Step{bad, good})
			if err != nil || outcomes[0].Outcome != state.Failed || outcomes[1].Outcome != state.Applied {
				t.Fatalf("outcomes %v, err %v: want the bad step failed and the good one applied", outcomes, err)
			}
		})

		t.Run("an account another instance changed is read afresh, not from this one's cache", func(t *testing.T) {
			other := redisstore.New(s.ClientForTest())
			mine := state.Step{Event: state.EventRef{AccountID: "acct-cache", EventID: "e-c1"}, Account: accountWithCash("acct-cache", "1")}
			if out, err := s.Commit(ctx, []state.Step{mine}); err != nil || out[0].Outcome != state.Applied {
				t.Fatalf("commit: %v %v", out, err)
			}
			theirs := state.Step{Event: state.EventRef{AccountID: "acct-cache", EventID: "e-c2"}, ExpectedVersion: mine.NextVersion(), Account: accountWithCash("acct-cache", "2")}
			if out, err := other.Commit(ctx, []state.Step{theirs}); err != nil || out[0].Outcome != state.Applied {
				t.Fatalf("other commit: %v %v", out, err)
			}
			accts, _, err := s.Load(ctx, []string{"acct-cache"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := accts["acct-cache"]; got.Version != theirs.NextVersion() || !got.Account.Consumed.Equal(decimal.NewFromInt(2)) {
				t.Fatalf("loaded version %s consumed %s: want the other instance's write", got.Version, got.Account.Consumed)
			}
		})

		t.Run("the same event id on another account is another event", func(t *testing.T) {
			other := state.EventRef{AccountID: "acct-other", EventID: ref.EventID}
			_, seen, err := s.Load(ctx, nil, []state.EventRef{other})
			if err != nil || seen[other] != "" {
				t.Fatalf("seen %v, err %v: an id saved for acct-1 made acct-other's event a duplicate", seen[other], err)
			}
		})

		t.Run("a step decided on a stale version conflicts and changes nothing", func(t *testing.T) {
			stale := state.Step{Event: state.EventRef{AccountID: "acct-1", EventID: "evt-2"}, ExpectedVersion: "", Account: accountWithCash("acct-1", "77")}
			outcomes, err := s.Commit(ctx, []state.Step{stale})
			if err != nil || outcomes[0].Outcome != state.Conflict {
				t.Fatalf("outcome %v, err %v", outcomes, err)
			}
			_, seen, _ := s.Load(ctx, nil, []state.EventRef{stale.Event})
			if seen[stale.Event] != "" {
				t.Fatal("a conflicting step remembered its event, so its retry would be lost")
			}
		})

		t.Run("steps of one account in one pipeline chain their versions", func(t *testing.T) {
			a := state.Step{Event: state.EventRef{AccountID: "acct-2", EventID: "e-a"}, Account: accountWithCash("acct-2", "1")}
			b := state.Step{Event: state.EventRef{AccountID: "acct-2", EventID: "e-b"}, ExpectedVersion: a.NextVersion()}
			c := state.Step{Event: state.EventRef{AccountID: "acct-2", EventID: "e-c"}, ExpectedVersion: b.NextVersion(), Account: accountWithCash("acct-2", "3")}
			outcomes, err := s.Commit(ctx, []state.Step{a, b, c})
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range outcomes {
				if o.Outcome != state.Applied {
					t.Fatalf("step %d: %s %s", i, o.Outcome, o.Reason)
				}
			}
			got, _, _ := s.Account(ctx, "acct-2")
			if !got.Consumed.Equal(decimal.NewFromInt(3)) {
				t.Fatalf("consumed %s, want the last step's 3", got.Consumed)
			}
		})

		t.Run("after a conflict, the batch's later steps for that account conflict too", func(t *testing.T) {
			// Another instance saves a top-up on acct-4 first; this instance's batch was
			// decided on the version before it: [step x, step y chained on x].
			base := state.Step{Event: state.EventRef{AccountID: "acct-4", EventID: "e-base"}, Account: accountWithCash("acct-4", "0")}
			other := state.Step{Event: state.EventRef{AccountID: "acct-4", EventID: "e-other"}, ExpectedVersion: base.NextVersion(), Account: accountWithCash("acct-4", "500")}
			if out, err := s.Commit(ctx, []state.Step{base, other}); err != nil || out[1].Outcome != state.Applied {
				t.Fatalf("setup: %v %v", out, err)
			}
			x := state.Step{Event: state.EventRef{AccountID: "acct-4", EventID: "e-x"}, ExpectedVersion: base.NextVersion(), Account: accountWithCash("acct-4", "100")}
			y := state.Step{Event: state.EventRef{AccountID: "acct-4", EventID: "e-y"}, ExpectedVersion: x.NextVersion(), Account: accountWithCash("acct-4", "130")}
			outcomes, err := s.Commit(ctx, []state.Step{x, y})
			if err != nil || outcomes[0].Outcome != state.Conflict || outcomes[1].Outcome != state.Conflict {
				t.Fatalf("outcomes %v, err %v: want both to conflict", outcomes, err)
			}
			got, _, _ := s.Account(ctx, "acct-4")
			if !got.Consumed.Equal(decimal.NewFromInt(500)) {
				t.Fatalf("the other instance's change was overwritten: consumed %s, want 500", got.Consumed)
			}
		})

		t.Run("the relay reads, acknowledges and reclaims outbox entries", func(t *testing.T) {
			entries, err := s.ReadOutbox(ctx, "relay-a", 100)
			if err != nil || len(entries) != 1 || entries[0].ID != "rf-1" || entries[0].Subject != "refunds.account.balance_changed.acct-1" || string(entries[0].Body) != string(wantBody) {
				t.Fatalf("read %+v, err %v", entries, err)
			}
			if again, _ := s.ReadOutbox(ctx, "relay-b", 100); len(again) != 0 {
				t.Fatalf("a second relay read the same entry: %+v", again)
			}
			claimed, err := s.ClaimStaleOutbox(ctx, "relay-b", 0, 100)
			if err != nil || len(claimed) != 1 {
				t.Fatalf("claimed %+v, err %v", claimed, err)
			}
			if err := s.AckOutbox(ctx, claimed); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.OutboxLength(ctx); n != 0 {
				t.Fatalf("outbox holds %d after ack", n)
			}
		})

		t.Run("a flushed script cache is reloaded", func(t *testing.T) {
			if err := s.FlushScriptsForTest(ctx); err != nil {
				t.Fatal(err)
			}
			outcomes, err := s.Commit(ctx, []state.Step{{Event: state.EventRef{AccountID: "acct-3", EventID: "e-x"}, Account: accountWithCash("acct-3", "1")}})
			if err != nil || outcomes[0].Outcome != state.Applied {
				t.Fatalf("outcome %v, err %v", outcomes, err)
			}
		})
	})
}

func TestAnEventIDReusedWithOtherContentIsAConflictNotADuplicate(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		ref := state.EventRef{AccountID: "acct-id", EventID: "evt-reused"}
		first := state.Step{Event: ref, Account: accountWithCash("acct-id", "5"), Digest: digestOf("digest-a")}
		if res, err := s.Commit(ctx, []state.Step{first}); err != nil || res[0].Outcome != state.Applied {
			t.Fatalf("first: %v %v", res, err)
		}
		_, seen, err := s.Load(ctx, nil, []state.EventRef{ref})
		if err != nil || seen[ref] != keptDigest("digest-a") {
			t.Fatalf("seen %q, err %v: want the first content's digest", seen[ref], err)
		}
		again := state.Step{Event: ref, ExpectedVersion: first.NextVersion(), Account: accountWithCash("acct-id", "9"), Digest: digestOf("digest-a")}
		other := again
		other.Digest = digestOf("digest-b")
		res, err := s.Commit(ctx, []state.Step{again, other})
		if err != nil || res[0].Outcome != state.Duplicate || res[1].Outcome != state.IDConflict {
			t.Fatalf("outcomes %v, err %v: want the same content a duplicate, other content a conflict", res, err)
		}
	})
}

func TestACachedAccountChangedByAnotherInstanceIsReadWholeAgain(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		other := redisstore.New(s.ClientForTest())
		first := state.Step{Event: state.EventRef{AccountID: "acct-shared", EventID: "e1"}, Account: accountWithCash("acct-shared", "5")}
		if res, err := s.Commit(ctx, []state.Step{first}); err != nil || res[0].Outcome != state.Applied {
			t.Fatalf("%v %v", res, err)
		}
		theirs := state.Step{Event: state.EventRef{AccountID: "acct-shared", EventID: "e2"}, ExpectedVersion: first.NextVersion(), Account: accountWithCash("acct-shared", "77")}
		if res, err := other.Commit(ctx, []state.Step{theirs}); err != nil || res[0].Outcome != state.Applied {
			t.Fatalf("%v %v", res, err)
		}
		accts, _, err := s.Load(ctx, []string{"acct-shared"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := accts["acct-shared"]; got.Version != theirs.NextVersion() || !got.Account.Consumed.Equal(decimal.NewFromInt(77)) {
			t.Fatalf("loaded version %s consumed %s, want the other instance's write", got.Version, got.Account.Consumed)
		}
	})
}

// An account written whole by an earlier version reads the same; its next step
// replaces the hash with one field per fact, and a later step writes only the fields
// that changed: a field the step does not touch keeps whatever Redis holds there.
func TestAnOldDocumentIsRewrittenFieldByFieldAndThenOnlyChangesAreWritten(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		golden, err := os.ReadFile("testdata/account-written-by-v1.json")
		if err != nil {
			t.Fatal(err)
		}
		// An account saved whole by the first version: its top-ups are inside "s".
		id := "acct-golden"
		if err := s.ClientForTest().HSet(ctx, redisstore.AccountKeyForTest(id), "v", "v1", "s", strings.TrimSpace(string(golden))).Err(); err != nil {
			t.Fatal(err)
		}
		accts, _, err := s.Load(ctx, []string{id}, nil)
		if err != nil || len(accts[id].Account.TopUps) != 3 {
			t.Fatalf("old document: %d top-ups, err %v", len(accts[id].Account.TopUps), err)
		}
		consumed := accts[id].Account
		consumed.Consumed = consumed.Consumed.Add(decimal.NewFromInt(1))
		first := state.Step{Event: state.EventRef{AccountID: id, EventID: "e1"}, ExpectedVersion: "v1", Account: &consumed}
		if res, err := s.Commit(ctx, []state.Step{first}); err != nil || res[0].Outcome != state.Applied {
			t.Fatalf("%v %v", res, err)
		}
		fields, err := s.StoredFieldsForTest(ctx, id)
		if _, old := fields["s"]; err != nil || old || fields["tu:t3"] == "" || fields["c"] == "" {
			t.Fatalf("after the first step of an old document the hash is %v (err %v); want one field per fact", fields, err)
		}
		// A step that does not change a top-up leaves its field alone: write a marker
		// there and see that it survives.
		marked := strings.Replace(fields["tu:t3"], `"ch":"`, `"ch":"marked-`, 1)
		if err := s.ClientForTest().HSet(ctx, redisstore.AccountKeyForTest(id), "tu:t3", marked).Err(); err != nil {
			t.Fatal(err)
		}
		again := consumed
		again.Consumed = again.Consumed.Add(decimal.NewFromInt(1))
		second := state.Step{Event: state.EventRef{AccountID: id, EventID: "e2"}, ExpectedVersion: first.NextVersion(), Account: &again}
		if res, err := s.Commit(ctx, []state.Step{second}); err != nil || res[0].Outcome != state.Applied {
			t.Fatalf("%v %v", res, err)
		}
		if after, _ := s.StoredFieldsForTest(ctx, id); after["tu:t3"] != marked || after["c"] == fields["c"] {
			t.Fatalf("a consumption rewrote a top-up (%q) or not the account's own field", after["tu:t3"])
		}
		// A step that adds a top-up writes it.
		more := again
		more.TopUps = append(slices.Clone(again.TopUps), state.TopUp{ID: "t4", Amount: decimal.NewFromInt(4), Channel: "card", ReceivedAt: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)})
		third := state.Step{Event: state.EventRef{AccountID: id, EventID: "e3"}, ExpectedVersion: second.NextVersion(), Account: &more}
		if res, err := s.Commit(ctx, []state.Step{third}); err != nil || res[0].Outcome != state.Applied {
			t.Fatalf("%v %v", res, err)
		}
		fresh := redisstore.New(s.ClientForTest()) // no cache: read from Redis
		got, ok, err := fresh.Account(ctx, id)
		if err != nil || !ok || len(got.TopUps) != 4 || !got.Consumed.Equal(consumed.Consumed.Add(decimal.NewFromInt(1))) {
			t.Fatalf("read back %d top-ups, consumed %s (err %v)", len(got.TopUps), got.Consumed, err)
		}
	})
}

// The steps of one partition are saved in one call; each still stands alone: one that
// Redis refuses fails by itself, and the steps after it in the call are saved.
func TestAStepRedisRefusesFailsAloneAmongTheStepsOfItsPartition(t *testing.T) {
	forEachRedisClient(t, func(t *testing.T, s *redisstore.Store, rdb *redis.Client) {
		ctx := context.Background()
		broken := "acct-broken"
		var others []string
		for i := 0; len(others) < 2; i++ {
			if id := fmt.Sprintf("acct-%d", i); redisstore.Partition(id) == redisstore.Partition(broken) {
				others = append(others, id)
			}
		}
		// Not a hash: every command of a step on this account fails.
		key := fmt.Sprintf("rf:{p%02d}:acct:%s", redisstore.Partition(broken), broken)
		if err := rdb.Set(ctx, key, "not a hash", 0).Err(); err != nil {
			t.Fatal(err)
		}
		var steps []state.Step
		for _, id := range []string{others[0], broken, others[1]} {
			steps = append(steps, state.Step{
				Event: state.EventRef{AccountID: id, EventID: "e-" + id}, Account: accountWithCash(id, "1.00"), Digest: digestOf("d"),
			})
		}
		results, err := s.Commit(ctx, steps)
		if err != nil {
			t.Fatal(err)
		}
		want := []state.Outcome{state.Applied, state.Failed, state.Applied}
		for i, r := range results {
			if r.Outcome != want[i] {
				t.Errorf("step %d (%s): %v %q, want %v", i, steps[i].Event.AccountID, r.Outcome, r.Reason, want[i])
			}
		}
		if !strings.Contains(results[1].Reason, "WRONGTYPE") {
			t.Errorf("the failed step's reason %q does not say what Redis refused", results[1].Reason)
		}
	})
}

// The holder index is written beside the steps; within one batch its writes keep the
// order of the account's steps that made them.
func TestTheHolderIndexFollowsTheStepsOfABatchInOrder(t *testing.T) {
	forEachRedisClient(t, func(t *testing.T, s *redisstore.Store, _ *redis.Client) {
		ctx := context.Background()
		for _, c := range []struct {
			name          string
			first, second bool // overdue after each step
		}{
			{"paid, then overdue again: the account stays in the index", false, true},
			{"overdue, then paid: the account leaves the index", true, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				account := "acct-h-" + strconv.FormatBool(c.second)
				first := holderStep(account, "e1", "", "Li Wei "+account, c.first)
				second := holderStep(account, "e2", first.NextVersion(), "Li Wei "+account, c.second)
				results, err := s.Commit(ctx, []state.Step{first, second})
				if err != nil || results[0].Outcome != state.Applied || results[1].Outcome != state.Applied {
					t.Fatalf("commit: %v %v", results, err)
				}
				index, err := s.SameHolderOverdue(ctx, []string{"Li Wei " + account})
				if err != nil {
					t.Fatal(err)
				}
				if got := index["Li Wei "+account]; (len(got) == 1 && got[0] == account) != c.second {
					t.Fatalf("holder index %v; the last step says overdue %v", got, c.second)
				}
			})
		}
	})
}

// A payment followed in the same batch by another event of the account (a
// consumption, which leaves the holder index alone) still takes the account out of the
// index: the removal checks the account is where the batch's last step left it.
func TestAPaymentFollowedByAnotherEventOfTheAccountStillLeavesTheIndex(t *testing.T) {
	forEachRedisClient(t, func(t *testing.T, s *redisstore.Store, _ *redis.Client) {
		ctx := context.Background()
		const account, holder = "acct-h-then", "Li Wei (then)"
		overdue := holderStep(account, "e-bill", "", holder, true)
		paid := holderStep(account, "e-paid", overdue.NextVersion(), holder, false)
		spent := state.Step{
			Event: state.EventRef{AccountID: account, EventID: "e-spend"}, ExpectedVersion: paid.NextVersion(),
			Account: accountWithCash(account, "2.00"), Digest: digestOf("e-spend"),
		}
		for _, batch := range [][]state.Step{{overdue}, {paid, spent}} {
			results, err := s.Commit(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if r.Outcome != state.Applied {
					t.Fatalf("commit: %v", results)
				}
			}
		}
		index, err := s.SameHolderOverdue(ctx, []string{holder})
		if err != nil {
			t.Fatal(err)
		}
		if got := index[holder]; len(got) != 0 {
			t.Fatalf("holder index %v after the payment; want none", got)
		}
	})
}

// A payment decided on a version another instance has moved past conflicts and pays
// nothing, so its account stays in the holder index: the same-holder risk rule still
// sees the overdue amount until the payment is decided again and saved.
func TestAPaymentThatConflictsLeavesItsAccountFlagged(t *testing.T) {
	forEachRedisClient(t, func(t *testing.T, s *redisstore.Store, _ *redis.Client) {
		ctx := context.Background()
		const account, holder = "acct-h-conflict", "Li Wei (conflict)"
		overdue := holderStep(account, "e-bill", "", holder, true)
		paidOnAStaleVersion := holderStep(account, "e-paid", "v-moved-past", holder, false)
		for _, step := range []struct {
			step state.Step
			want state.Outcome
		}{{overdue, state.Applied}, {paidOnAStaleVersion, state.Conflict}} {
			results, err := s.Commit(ctx, []state.Step{step.step})
			if err != nil || results[0].Outcome != step.want {
				t.Fatalf("%s: %v %v, want %v", step.step.Event.EventID, results, err, step.want)
			}
		}
		index, err := s.SameHolderOverdue(ctx, []string{holder})
		if err != nil {
			t.Fatal(err)
		}
		if got := index[holder]; len(got) != 1 || got[0] != account {
			t.Fatalf("holder index %v after a payment that conflicted; want %s still flagged", got, account)
		}
	})
}

// A holder's removal that Redis refuses leaves the account flagged while paid (one
// more review for a withdrawal of the same holder): the payment it follows stands,
// the batch is not failed for it, and the store says so in its log, without the
// holder's name.
func TestARemovalFromTheHolderIndexThatFailsIsLoggedAndThePaymentStands(t *testing.T) {
	forEachRedisClient(t, func(t *testing.T, s *redisstore.Store, rdb *redis.Client) {
		ctx := context.Background()
		const account, holder = "acct-h-refused", "Li Wei (refused)"
		logged := refuseWritesTo(t, s, rdb, redisstore.HolderOverdueKeyForTest(holder))
		results, err := s.Commit(ctx, []state.Step{holderStep(account, "e-paid", "", holder, false)})
		if err != nil || results[0].Outcome != state.Applied {
			t.Fatalf("commit: %v %v, want the payment applied", results, err)
		}
		if !strings.Contains(logged.String(), `"level":"warn"`) || !strings.Contains(logged.String(), "paid account not removed") {
			t.Fatalf("log %q: want a warning that the removal failed", logged.String())
		}
		if !strings.Contains(logged.String(), account) {
			t.Fatalf("log %q: want the account named", logged.String())
		}
		if strings.Contains(logged.String(), "Li Wei") {
			t.Fatalf("log %q names the holder", logged.String())
		}
	})
}

// An index entry Redis refuses (its key holds another type, put there by hand) does
// not fail the batch, which would fail again with every batch its event joined: the
// step is saved, and the store logs the account whose entry is missing.
func TestAnIndexEntryRedisRefusesIsLoggedAndTheStepIsSaved(t *testing.T) {
	forEachRedisClient(t, func(t *testing.T, s *redisstore.Store, rdb *redis.Client) {
		refuseCaseIndexEntry(t, s, rdb)
	})
}

// refuseWritesTo makes Redis refuse every set or hash command on key (it holds a
// string), and returns where s now logs.
func refuseWritesTo(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient, key string) *bytes.Buffer {
	t.Helper()
	var logged bytes.Buffer
	s.SetLogger(zerolog.New(&logged))
	if err := rdb.Set(context.Background(), key, "a string, not a set or a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	return &logged
}

// refuseCaseIndexEntry commits a step that opens a case whose index key holds a
// string, and checks the step is saved and the refusal logged with its account.
func refuseCaseIndexEntry(t *testing.T, s *redisstore.Store, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	const account, caseID = "acct-index-refused", "w-index-refused"
	logged := refuseWritesTo(t, s, rdb, redisstore.CaseIndexKeyForTest(caseID))
	a := accountWithCash(account, "0")
	a.Cases = map[string]state.Case{caseID: {ID: caseID, Kind: events.CaseWithdrawal, Status: events.StatusInReview, Amount: decimal.NewFromInt(10), OpenedAt: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)}}
	step := state.Step{Event: state.EventRef{AccountID: account, EventID: "e-open"}, Account: a, OpenedCases: []string{caseID}, Digest: digestOf("e-open")}
	results, err := s.Commit(ctx, []state.Step{step})
	if err != nil || results[0].Outcome != state.Applied {
		t.Fatalf("commit: %v %v, want the step applied", results, err)
	}
	if !strings.Contains(logged.String(), `"level":"error"`) || !strings.Contains(logged.String(), account) || !strings.Contains(logged.String(), "index entry refused") {
		t.Fatalf("log %q: want an error naming %s", logged.String(), account)
	}
}

// An account with more fields than one Redis call takes from a script at once (its
// fields are set in slices) is saved and read back whole.
func TestAnAccountWithAThousandTopUpsIsSavedWhole(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		a := accountWithCash("acct-big", "0")
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 1000 {
			a.TopUps = append(a.TopUps, state.TopUp{ID: fmt.Sprintf("t-%04d", i), Amount: decimal.NewFromInt(int64(i + 1)), Channel: "alipay", ReceivedAt: at.Add(time.Duration(i) * time.Minute)})
		}
		step := state.Step{Event: state.EventRef{AccountID: a.ID, EventID: "e-big"}, Account: a, Digest: digestOf("d")}
		if res, err := s.Commit(ctx, []state.Step{step}); err != nil || res[0].Outcome != state.Applied {
			t.Fatalf("%v %v", res, err)
		}
		got, ok, err := redisstore.New(s.ClientForTest()).Account(ctx, a.ID)
		if err != nil || !ok || len(got.TopUps) != 1000 || got.TopUps[999].ID != "t-0999" || !got.Ledger(state.DefaultRules()).Cash.Equal(decimal.NewFromInt(500500)) {
			t.Fatalf("read back %d top-ups (err %v)", len(got.TopUps), err)
		}
	})
}

// digestOf stands for the digest of an event or a fact named s: 24 hex digits, as
// events.Event.Digests gives.
func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// keptDigest is what Load finds for an event applied with digestOf(s), once records
// are short: the digest's first 16 hex digits.
func keptDigest(s string) string { return digestOf(s)[:16] }

func TestACaseIsFoundByItsIDWhetherThisVersionOrTheOneBeforeIndexedIt(t *testing.T) {
	forEachRedis(t, func(t *testing.T, s *redisstore.Store) {
		ctx := context.Background()
		rdb := s.ClientForTest()
		at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
		withCase := func(account, caseID string) state.Step {
			a := accountWithCash(account, "1")
			a.Cases = map[string]state.Case{caseID: {ID: caseID, Kind: events.CaseWithdrawal, Status: events.StatusInReview,
				Amount: decimal.NewFromInt(10), OpenedAt: at}}
			return state.Step{Event: state.EventRef{AccountID: account, EventID: "open-" + caseID}, Account: a,
				OpenedCases: []string{caseID}, Digest: digestOf("open-" + caseID)}
		}
		// The version before indexed w-before under a key of its own.
		if got := commitOne(t, s, withCase("acct-before", "w-before")); got != state.Applied {
			t.Fatalf("opening w-before: %s", got)
		}
		if err := rdb.HDel(ctx, redisstore.CaseIndexKeyForTest("w-before"), "w-before").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, redisstore.OlderCaseIndexKeyForTest("w-before"), "acct-before", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got := commitOne(t, s, withCase("acct-now", "w-now")); got != state.Applied {
			t.Fatalf("opening w-now: %s", got)
		}
		if n := rdb.Exists(ctx, redisstore.OlderCaseIndexKeyForTest("w-now")).Val(); n != 0 {
			t.Fatal("a case opened now was indexed under a key of its own")
		}
		for id, account := range map[string]string{"w-before": "acct-before", "w-now": "acct-now"} {
			c, acct, ok, err := s.Case(ctx, id)
			if err != nil || !ok || acct != account || c.Status != events.StatusInReview {
				t.Fatalf("case %s: %+v in %q, found %t (%v): want it in %s", id, c, acct, ok, err, account)
			}
		}
		// The first account to use a case id keeps it, whichever index holds it.
		for _, id := range []string{"w-before", "w-now"} {
			if got := commitOne(t, s, withCase("acct-later-"+id, id)); got != state.Applied {
				t.Fatalf("a second account opening %s: %s", id, got)
			}
			first := map[string]string{"w-before": "acct-before", "w-now": "acct-now"}[id]
			if _, acct, ok, err := s.Case(ctx, id); err != nil || !ok || acct != first {
				t.Fatalf("case %s after a second account used its id: in %q, found %t (%v); want it still in %s", id, acct, ok, err, first)
			}
		}
		if _, _, ok, err := s.Case(ctx, "w-nowhere"); ok || err != nil {
			t.Fatalf("a case no account opened: found %t (%v)", ok, err)
		}
	})
}
