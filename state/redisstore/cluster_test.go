package redisstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// On a three-master Redis Cluster, every key of one atomic step shares its account's
// slot (the hash tags), and what lives in other slots (the case index, the holder
// index, the outbox and timer partitions) is written beside the step: every operation
// of the store works, across all masters.
func TestTheStoreWorksOnARedisClusterOfThreeMasters(t *testing.T) {
	rdb := testenv.StartRedisCluster(t, 3)
	ctx := context.Background()
	store := redisstore.New(rdb)
	if err := store.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	release := at.Add(-23 * time.Hour)
	var steps []state.Step
	for i := range 30 { // enough accounts to land on every master
		a := state.NewAccount(fmt.Sprintf("acct-cluster-%02d", i))
		a.Opened, a.Currency, a.HolderName = true, "CNY", "Li Wei"
		a.TopUps = []state.TopUp{{ID: "t1", Amount: decimal.NewFromInt(500), Channel: "alipay", ReceivedAt: at}}
		a.LastReleaseAt = &release
		a.Bills = map[string]state.Bill{"b1": {Amount: decimal.NewFromInt(5)}}
		open := state.Case{ID: fmt.Sprintf("w-open-%02d", i), Kind: events.CaseWithdrawal, Status: events.StatusInReview, Amount: decimal.NewFromInt(10), TopupID: "t1", OpenedAt: at}
		ended := state.Case{ID: fmt.Sprintf("w-done-%02d", i), Kind: events.CaseWithdrawal, Status: events.StatusRejected, Amount: decimal.NewFromInt(1), OpenedAt: at}
		a.Cases = map[string]state.Case{open.ID: open}
		out, err := events.New(events.ReserveFrozen, a.ID, state.Source, fmt.Sprintf("rf-c-%02d", i), at, &events.ReserveFrozenData{Amount: events.MustAmount("100.00")})
		if err != nil {
			t.Fatal(err)
		}
		deadline := at.Add(-time.Hour)
		steps = append(steps, state.Step{
			Event: state.EventRef{AccountID: a.ID, EventID: "e1"}, Account: &a, Outbound: []events.Event{out},
			SetNextDeadline: true, NextDeadline: &deadline, OpenedCases: []string{open.ID, ended.ID}, ClosedCases: []state.Case{ended},
			HolderOverdue: &state.HolderOverdue{Name: "Li Wei", Overdue: true}, Fact: "billing.bill.issued:b1", FactDigest: digestOf("d"), Digest: digestOf("x"),
		})
	}
	results, err := store.Commit(ctx, steps)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Outcome != state.Applied {
			t.Fatalf("step %d: %v %s", i, r.Outcome, r.Reason)
		}
	}
	for i := range 30 {
		id := fmt.Sprintf("acct-cluster-%02d", i)
		if c, acct, ok, err := store.Case(ctx, fmt.Sprintf("w-open-%02d", i)); err != nil || !ok || acct != id || c.Status != events.StatusInReview {
			t.Fatalf("open case of %s: %+v %s %t %v", id, c, acct, ok, err)
		}
		if c, _, ok, err := store.Case(ctx, fmt.Sprintf("w-done-%02d", i)); err != nil || !ok || c.Status != events.StatusRejected {
			t.Fatalf("ended case of %s: %+v %t %v", id, c, ok, err)
		}
	}
	overdue, err := store.SameHolderOverdue(ctx, []string{"Li Wei"})
	if err != nil || len(overdue["Li Wei"]) != 30 {
		t.Fatalf("holder index: %d accounts, err %v", len(overdue["Li Wei"]), err)
	}
	claimed, err := store.ClaimDueTimers(ctx, at, 10*time.Second, 100)
	if err != nil || len(claimed) != 30 {
		t.Fatalf("claimed %d due deadlines, err %v", len(claimed), err)
	}
	entries, err := store.ReadOutbox(ctx, "relay-cluster", 100)
	if err != nil || len(entries) != 30 {
		t.Fatalf("outbox: %d entries, err %v", len(entries), err)
	}
	if err := store.AckOutbox(ctx, entries); err != nil {
		t.Fatal(err)
	}
	if n, err := store.OutboxLength(ctx); err != nil || n != 0 {
		t.Fatalf("outbox after the acks: %d, err %v", n, err)
	}
	// The accounts really are spread over the masters.
	var mu sync.Mutex
	var sizes []int64
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		n, err := node.DBSize(ctx).Result()
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 {
		t.Fatalf("%d masters, want 3", len(sizes))
	}
	for _, n := range sizes {
		if n == 0 {
			t.Fatalf("keys per master %v: one master holds none", sizes)
		}
	}
	t.Logf("keys per master: %v", sizes)
	loaded, seen, err := store.Load(ctx, []string{"acct-cluster-00"}, []state.EventRef{{AccountID: "acct-cluster-00", EventID: "e1", CaseID: "w-done-00"}})
	if err != nil || seen[state.EventRef{AccountID: "acct-cluster-00", EventID: "e1", CaseID: "w-done-00"}] != keptDigest("x") || len(loaded["acct-cluster-00"].Account.TopUps) != 1 {
		t.Fatalf("load: %+v seen %v err %v", loaded["acct-cluster-00"], seen, err)
	}
	// Before a rollback, the ended cases kept in the accounts move apart on every master.
	moved, err := store.MoveEndedCasesApart(ctx, nil)
	if err != nil || moved != (redisstore.EndedCasesMoved{Accounts: 30, Cases: 30}) {
		t.Fatalf("moved %+v (%v), want the 30 ended cases of 30 accounts", moved, err)
	}
	if c, _, ok, err := store.Case(ctx, "w-done-07"); err != nil || !ok || c.Status != events.StatusRejected {
		t.Fatalf("an ended case after the move: %+v %t %v", c, ok, err)
	}
}

// On a cluster the index writes of a batch and its steps may live on different masters,
// and go-redis sends each master its share of a pipeline at the same time. The rules
// "the case index before its step" and "the holder's removal after its step" still
// hold: a master that stalls (its writes paused until the commit gives up) holds back
// what must follow it.
func TestOnAClusterIndexWritesKeepTheirOrderAcrossMasters(t *testing.T) {
	started := testenv.StartRedisCluster(t, 3)
	// A client that gives up at its context's deadline (go-redis waits its 3 s read
	// timeout unless told), as a process that stops waiting on a stalled master does.
	opts := *started.Options()
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClusterClient(&opts)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	store := redisstore.New(rdb)
	if err := store.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)

	t.Run("a case is not saved while its index entry cannot be written", func(t *testing.T) {
		account := "acct-order-case"
		caseID := idOnAnotherMaster(t, rdb, account, "w-order-", redisstore.CaseIndexKeyForTest)
		a := accountWithCash(account, "0")
		a.Cases = map[string]state.Case{caseID: {ID: caseID, Kind: events.CaseWithdrawal, Status: events.StatusInReview, Amount: decimal.NewFromInt(10), OpenedAt: at}}
		step := state.Step{Event: state.EventRef{AccountID: account, EventID: "e-open"}, Account: a, OpenedCases: []string{caseID}, Digest: digestOf("e-open")}

		pauseWritesWhileCommitting(t, rdb, redisstore.CaseIndexKeyForTest(caseID), store, step)
		if _, saved, err := store.Account(ctx, account); err != nil || saved {
			t.Fatalf("the account was saved (%t, %v) before its case's index entry", saved, err)
		}
		// Once the index's master answers again, the retried step saves both.
		if results, err := store.Commit(ctx, []state.Step{step}); err != nil || results[0].Outcome != state.Applied {
			t.Fatalf("retry: %v %v", results, err)
		}
		if c, owner, ok, err := store.Case(ctx, caseID); err != nil || !ok || owner != account || c.Status != events.StatusInReview {
			t.Fatalf("case after the retry: %+v %s %t %v", c, owner, ok, err)
		}
	})

	t.Run("an index entry Redis refuses is logged and the step is saved", func(t *testing.T) {
		refuseCaseIndexEntry(t, store, rdb)
	})

	t.Run("an account stays flagged while the step that paid it cannot be saved", func(t *testing.T) {
		account := "acct-order-paid"
		holder := idOnAnotherMaster(t, rdb, account, "Li Wei ", redisstore.HolderOverdueKeyForTest)
		overdue := holderStep(account, "e-bill", "", holder, true)
		if results, err := store.Commit(ctx, []state.Step{overdue}); err != nil || results[0].Outcome != state.Applied {
			t.Fatalf("overdue: %v %v", results, err)
		}
		paid := holderStep(account, "e-paid", overdue.NextVersion(), holder, false)
		pauseWritesWhileCommitting(t, rdb, redisstore.AccountKeyForTest(account), store, paid)
		if got := holderIndex(t, store, holder); len(got) != 1 || got[0] != account {
			t.Fatalf("holder index %v while the payment is unsaved; want %s still flagged", got, account)
		}
		// Redis may still have run the paused call once its master went on (the
		// connection closed at the deadline is not always noticed first): the retry
		// then finds the payment saved, and the entry stays, flagged while paid, which
		// only sends a withdrawal of the same holder to review.
		results, err := store.Commit(ctx, []state.Step{paid})
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		switch got := holderIndex(t, store, holder); results[0].Outcome {
		case state.Applied:
			if len(got) != 0 {
				t.Fatalf("holder index %v once paid; want none", got)
			}
		case state.Duplicate:
			if len(got) != 1 {
				t.Fatalf("holder index %v; want the account still flagged", got)
			}
		default:
			t.Fatalf("retry: %v", results)
		}
	})

	t.Run("an overdue account is not saved while its holder's entry cannot be written", func(t *testing.T) {
		account := "acct-order-overdue"
		holder := idOnAnotherMaster(t, rdb, account, "Wang Fang ", redisstore.HolderOverdueKeyForTest)
		pauseWritesWhileCommitting(t, rdb, redisstore.HolderOverdueKeyForTest(holder), store, holderStep(account, "e-bill", "", holder, true))
		if _, saved, err := store.Account(ctx, account); err != nil || saved {
			t.Fatalf("the account was saved (%t, %v) before its holder's entry", saved, err)
		}
	})
}

// idOnAnotherMaster is the first of prefix+"1", prefix+"2", … whose key (by keyOf)
// lives on another master than the account's.
func idOnAnotherMaster(t *testing.T, rdb *redis.ClusterClient, account, prefix string, keyOf func(string) string) string {
	t.Helper()
	ctx := context.Background()
	accountMaster, err := rdb.MasterForKey(ctx, redisstore.AccountKeyForTest(account))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 100; i++ {
		id := fmt.Sprintf("%s%d", prefix, i)
		m, err := rdb.MasterForKey(ctx, keyOf(id))
		if err != nil {
			t.Fatal(err)
		}
		if m.Options().Addr != accountMaster.Options().Addr {
			return id
		}
	}
	t.Fatalf("no id %s… on another master than %s", prefix, account)
	return ""
}

// pauseWritesWhileCommitting pauses the writes of the master holding key, commits the
// step with a deadline shorter than the pause, wants the commit to fail, and lets the
// master go on.
func pauseWritesWhileCommitting(t *testing.T, rdb *redis.ClusterClient, key string, store *redisstore.Store, step state.Step) {
	t.Helper()
	ctx := context.Background()
	master, err := rdb.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Do(ctx, "CLIENT", "PAUSE", 3000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = master.Do(ctx, "CLIENT", "UNPAUSE").Err() })
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if results, err := store.Commit(short, []state.Step{step}); err == nil {
		t.Fatalf("commit with %s's master paused: %v, want an error", key, results)
	}
	if err := master.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
}

func holderIndex(t *testing.T, store *redisstore.Store, name string) []string {
	t.Helper()
	index, err := store.SameHolderOverdue(context.Background(), []string{name})
	if err != nil {
		t.Fatal(err)
	}
	return index[name]
}
