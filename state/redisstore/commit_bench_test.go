package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/internal/workload"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// commitBatchSize is how many steps one Commit saves: about what one of the intake's two
// workers takes from a batch of 500 under a backlog.
const commitBatchSize = 250

// BenchmarkCommitWorkload saves the end-to-end bench's workload (every account's
// history, cases included), decided beforehand in memory, through Store.Commit in
// batches of commitBatchSize steps interleaved across accounts, against a Redis
// container as the throughput benches run it. It prints Redis's main-thread time per
// step, and the step script's share of it with what the script's Redis calls took: the
// store's share of Redis's work without NATS, the decoding or the decisions around it.
// Run: go test -run '^$' -bench CommitWorkload -benchtime 3x ./state/redisstore/
//
// With BENCH_REDIS_URL it runs against that server instead, which it empties
// (FLUSHALL): for instance a redis-server under valgrind --tool=callgrind, whose count
// of instructions, unlike a time, does not move with the machine's other load. See
// deploy/images/callgrind-redis.sh.
func BenchmarkCommitWorkload(b *testing.B) {
	srv := &testenv.Redis{URL: os.Getenv("BENCH_REDIS_URL")}
	if srv.URL == "" {
		srv = testenv.StartRedisForBench(b)
	}
	rdb := srv.Client(b)
	ctx := context.Background()
	batches, steps := decidedWorkload(b, 1000)
	b.Logf("%d steps of %d accounts' histories, in %d batches", steps, 1000, len(batches))
	var mainThread, script, called time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		store := testenv.PreparedStore(b, rdb)
		if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		before, err := testenv.ReadRedisCPU(ctx, rdb)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, batch := range batches {
			results, err := store.Commit(ctx, batch)
			if err != nil {
				b.Fatal(err)
			}
			for i, r := range results {
				if r.Outcome != state.Applied {
					b.Fatalf("step %d of account %s: %s %s, want applied", i, batch[i].Event.AccountID, r.Outcome, r.Reason)
				}
			}
		}
		b.StopTimer()
		after, err := testenv.ReadRedisCPU(ctx, rdb)
		if err != nil {
			b.Fatal(err)
		}
		mainThread += after.MainThread - before.MainThread
		times, err := testenv.CommandTimes(ctx, rdb)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range times {
			switch {
			case c.Command == "evalsha":
				script += time.Duration(c.Usec) * time.Microsecond
			case !strings.HasPrefix(c.Command, "config") && !strings.HasPrefix(c.Command, "info"):
				called += time.Duration(c.Usec) * time.Microsecond
			}
		}
		b.StartTimer()
	}
	perStep := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*steps) }
	b.ReportMetric(float64(b.N*steps)/b.Elapsed().Seconds(), "steps/s")
	b.ReportMetric(perStep(mainThread), "redis-µs/step")
	b.ReportMetric(perStep(script), "script-µs/step")
	b.ReportMetric(perStep(called), "calls-µs/step")
}

// decidedWorkload decides the workload of n accounts, each account's events in order on
// the state its earlier ones left (as state.Rebuild does), and deals the steps into
// batches taking each account's steps in turn: an account's steps keep their order, in
// one batch or across batches.
func decidedWorkload(tb testing.TB, n int) (batches [][]state.Step, steps int) {
	tb.Helper()
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	w := workload.Generate(workload.Options{Accounts: n, Seed: 7, Start: start, OutOfOrder: -1})
	rules, now := state.DefaultRules(), start.Add(time.Hour)
	perAccount := make([][]state.Step, 0, len(w.Accounts))
	for _, id := range w.Accounts {
		account, version := state.NewAccount(id), ""
		ended := map[string]state.Case{}
		var mine []state.Step
		for _, ev := range w.History[id] {
			given := account
			if c, ok := ended[ev.CaseRef()]; ok {
				given = account.WithClosedCases(map[string]state.Case{c.ID: c})
			}
			d, err := state.Apply(given, ev, rules, now)
			var refusal *state.Refusal
			if errors.As(err, &refusal) {
				continue // dead-lettered by the intake: no step
			}
			if err != nil {
				tb.Fatalf("decide %s of %s: %v", ev.Type, id, err)
			}
			st := d.Step(state.EventRef{AccountID: id, EventID: ev.ID, CaseID: ev.CaseRef()}, version)
			st.Fact = ev.FactID()
			st.Digest, st.FactDigest = ev.Digests()
			if st.Fact == "" {
				st.FactDigest = ""
			}
			if d.Changed {
				account, version = d.Account, st.NextVersion()
			}
			for _, c := range d.ClosedCases {
				ended[c.ID] = c
			}
			mine = append(mine, st)
		}
		perAccount = append(perAccount, mine)
		steps += len(mine)
	}
	var batch []state.Step
	for dealt := 0; dealt < steps; {
		for i := range perAccount {
			if len(perAccount[i]) == 0 {
				continue
			}
			batch = append(batch, perAccount[i][0])
			perAccount[i] = perAccount[i][1:]
			dealt++
			if len(batch) == commitBatchSize {
				batches, batch = append(batches, batch), nil
			}
		}
	}
	if len(batch) > 0 {
		batches = append(batches, batch)
	}
	if steps == 0 {
		tb.Fatal(fmt.Errorf("the workload decided no step"))
	}
	return batches, steps
}

// BenchmarkStepWrites works out the hash writes of every step of the workload that
// BenchmarkCommitWorkload saves, each from the account as the step before it left it:
// the Go side of a commit, without Redis.
// Run: go test -run '^$' -bench StepWrites ./state/redisstore/
func BenchmarkStepWrites(b *testing.B) {
	batches, steps := decidedWorkload(b, 1000)
	bases := accountsBefore(batches)
	type change struct{ base, next *state.Account }
	var changes []change
	for i, batch := range batches {
		for j, st := range batch {
			if st.Account == nil {
				continue
			}
			base := bases[i][j]
			if base == nil {
				fresh := state.NewAccount(st.Event.AccountID)
				base = &fresh
			}
			changes = append(changes, change{base, st.Account})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range changes {
			if err := redisstore.StepWritesForTest(c.base, c.next); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(changes)), "ns/step")
	b.Logf("%d of %d steps change their account", len(changes), steps)
}

// BenchmarkStepArgs builds apply.lua's arguments for every step of the workload, as
// Commit does for each step of a batch: the account's writes, the digests, the ended
// cases and the outbound events encoded. It is the Go side of a commit without Redis,
// with its allocations.
// Run: go test -run '^$' -bench StepArgs -benchmem ./state/redisstore/
func BenchmarkStepArgs(b *testing.B) {
	batches, steps := decidedWorkload(b, 1000)
	bases := accountsBefore(batches)
	var args []any
	b.ReportAllocs()
	for b.Loop() {
		for i, batch := range batches {
			for j, st := range batch {
				var err error
				if args, err = redisstore.StepArgsForTest(args, st, bases[i][j]); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*steps), "ns/step")
}

// accountsBefore is, for each step of batches, the account as the steps before it left
// it (nil before the account's first change): what Redis holds when it is saved.
func accountsBefore(batches [][]state.Step) [][]*state.Account {
	bases := make([][]*state.Account, len(batches))
	latest := map[string]*state.Account{}
	for i, batch := range batches {
		bases[i] = make([]*state.Account, len(batch))
		for j, st := range batch {
			bases[i][j] = latest[st.Event.AccountID]
			if st.Account != nil {
				latest[st.Event.AccountID] = st.Account
			}
		}
	}
	return bases
}
