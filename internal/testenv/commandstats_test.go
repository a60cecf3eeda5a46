package testenv_test

import (
	"context"
	"testing"

	"github.com/payinfra/refunds/internal/testenv"
)

func TestCommandTimesCountEachCommandSinceTheReset(t *testing.T) {
	t.Parallel()
	rdb := testenv.StartRedis(t).Client(t)
	ctx := context.Background()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Get(ctx, "k").Err(); err != nil {
		t.Fatal(err)
	}
	times, err := testenv.CommandTimes(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int64{}
	for i, c := range times {
		calls[c.Command] = c.Calls
		if i > 0 && c.Usec > times[i-1].Usec {
			t.Errorf("%s (%d µs) comes after %s (%d µs)", c.Command, c.Usec, times[i-1].Command, times[i-1].Usec)
		}
	}
	if calls["set"] != 3 || calls["get"] != 1 {
		t.Fatalf("calls %v, want set 3 and get 1", calls)
	}
}
