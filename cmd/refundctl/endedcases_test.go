package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

func TestEndedCasesApartMovesEveryEndedCaseOutOfItsAccountAndSaysHowMany(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), Protocol: connect.DefaultRedisProtocol})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	store := redisstore.New(rdb)
	if err := store.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	a := state.NewAccount("acct-42")
	a.Opened, a.Currency = true, "CNY"
	ended := state.Case{ID: "w1", Kind: events.CaseWithdrawal, Status: events.StatusSucceeded, Amount: decimal.RequireFromString("50.00"),
		OpenedAt: at, History: []state.CaseEntry{{Status: events.StatusSucceeded, At: at, By: state.ByPayout, Reason: "payout succeeded"}}}
	st := state.Step{Event: state.EventRef{AccountID: a.ID, EventID: "evt-1"}, Account: &a, ClosedCases: []state.Case{ended}}
	if res, err := store.Commit(ctx, []state.Step{st}); err != nil || res[0].Outcome != state.Applied {
		t.Fatalf("commit: %v %v", res, err)
	}

	var out bytes.Buffer
	if err := run([]string{"ended-cases-apart", "-redis-url", "redis://" + mr.Addr() + "/0"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "looked at 1 accounts, moved 1 ended cases") || !strings.Contains(out.String(), "done: 1 ended cases moved, 1 accounts hold none") {
		t.Fatalf("it printed:\n%s", out.String())
	}
	for pattern, want := range map[string]string{"rf:*:acct:acct-42": "ce:w1", "rf:*:cases:acct-42": "w1"} {
		keys := rdb.Keys(ctx, pattern).Val()
		if len(keys) != 1 {
			t.Fatalf("keys %s: %v", pattern, keys)
		}
		held := rdb.HExists(ctx, keys[0], want).Val()
		if apart := strings.Contains(pattern, ":cases:"); held != apart {
			t.Fatalf("%s holds %s: %v", keys[0], want, held)
		}
	}
	if err := run([]string{"ended-cases-apart", "extra"}, &out); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Fatalf("an argument it does not take: %v", err)
	}
}
