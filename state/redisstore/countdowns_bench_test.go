package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// BenchmarkMillionCountdowns measures, against redis-server, what a million pending
// reserve countdowns cost and whether they slow the event path:
//
//   - bytes/countdown: growth of Redis used_memory per pending deadline;
//   - claim-ms: one claim of the 1,000 due among the million (all 16 partitions);
//   - ns/op of the sub-benchmarks: saving one event step that moves an account's
//     deadline, with no countdowns pending and with a million pending.
//
// Run: go test -run '^$' -bench MillionCountdowns -benchtime 20000x ./state/redisstore/
func BenchmarkMillionCountdowns(b *testing.B) {
	rdb := testenv.StartRedis(b).Client(b)
	store := testenv.PreparedStore(b, rdb)
	ctx := context.Background()
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

	b.Run("step-with-deadline/pending=0", func(b *testing.B) { benchmarkDeadlineSteps(b, store, "empty", base) })

	const million = 1_000_000
	before := usedMemory(b, rdb)
	addPendingTimers(b, store, million, base)
	perCountdown := float64(usedMemory(b, rdb)-before) / million

	b.Run("step-with-deadline/pending=1M", func(b *testing.B) {
		benchmarkDeadlineSteps(b, store, "busy", base)
		b.ReportMetric(perCountdown, "bytes/countdown")
	})

	b.Run("claim-1000-due-of-1M", func(b *testing.B) {
		// The first 1,000 deadlines (base + i seconds) are due at base + 999s.
		due := base.Add(999 * time.Second)
		var total time.Duration
		claims := 0
		for b.Loop() {
			start := time.Now()
			got, err := store.ClaimDueTimers(ctx, due, time.Hour, 1000)
			total += time.Since(start)
			claims++
			if err != nil || len(got) != 1000 {
				b.Fatalf("claimed %d, err %v; want the 1000 due", len(got), err)
			}
			// Put them back as a firing that finds them not yet due would.
			restore := make([]state.Step, len(got))
			for i, id := range got {
				n, _ := strconv.Atoi(strings.TrimPrefix(id, "acct-"))
				at := base.Add(time.Duration(n) * time.Second)
				restore[i] = state.Step{Event: state.EventRef{AccountID: id}, SetNextDeadline: true, NextDeadline: &at, Fired: true}
			}
			if _, err := store.Commit(ctx, restore); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(claims), "claim-ms")
		b.ReportMetric(perCountdown, "bytes/countdown")
	})
}

// addPendingTimers gives n accounts a pending deadline, base + i seconds, through
// the store's own step (in pipelines of 1000), so the memory is what production uses.
func addPendingTimers(b *testing.B, store *redisstore.Store, n int, base time.Time) {
	b.Helper()
	ctx := context.Background()
	steps := make([]state.Step, 0, 1000)
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i) * time.Second)
		steps = append(steps, state.Step{
			Event:           state.EventRef{AccountID: fmt.Sprintf("acct-%07d", i)},
			SetNextDeadline: true, NextDeadline: &at,
		})
		if len(steps) == cap(steps) || i == n-1 {
			if _, err := store.Commit(ctx, steps); err != nil {
				b.Fatal(err)
			}
			steps = steps[:0]
		}
	}
}

// benchmarkDeadlineSteps saves one event step per op that saves an account and moves
// its reserve deadline, as a resource release does.
func benchmarkDeadlineSteps(b *testing.B, store *redisstore.Store, prefix string, base time.Time) {
	ctx := context.Background()
	a := state.NewAccount("x")
	versions := map[string]string{}
	i := 0
	for b.Loop() {
		id := prefix + "-" + strconv.Itoa(i%1000)
		a.ID = id
		// Far after the million's deadlines, so the claim benchmark does not see them.
		at := base.AddDate(1, 0, 0).Add(time.Duration(i) * time.Millisecond)
		step := state.Step{
			Event:           state.EventRef{AccountID: id, EventID: prefix + "-evt-" + strconv.Itoa(i)},
			ExpectedVersion: versions[id], Account: &a, SetNextDeadline: true, NextDeadline: &at,
		}
		out, err := store.Commit(ctx, []state.Step{step})
		if err != nil || out[0].Outcome != state.Applied {
			b.Fatalf("step: %v %v", out, err)
		}
		versions[id] = step.NextVersion()
		i++
	}
}

func usedMemory(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}
