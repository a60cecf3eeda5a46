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
