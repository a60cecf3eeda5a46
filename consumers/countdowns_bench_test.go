package consumers_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// releaseTimes records when each account's reserve release was saved.
type releaseTimes struct {
	consumers.CountdownStore
	mu    sync.Mutex
	saved map[string]time.Time
}

func (r *releaseTimes) Commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error) {
	out, err := r.CountdownStore.Commit(ctx, steps)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, o := range out {
		if o.Outcome == state.Applied && steps[i].Account != nil {
			r.saved[steps[i].Event.AccountID] = now
		}
	}
	return out, err
}

// BenchmarkReserveFireDelay measures how long after its deadline a reserve is released
// (saved with its refunds.reserve.unfrozen), with the default 100ms poll, against
// redis-server: 1,000 countdowns with deadlines spread over one second, so they fall at
// every point of the poll's cycle. Reports p50, p99 and max in milliseconds.
// Run: go test -run '^$' -bench ReserveFireDelay -benchtime 3x ./consumers/
func BenchmarkReserveFireDelay(b *testing.B) {
	store := testenv.PreparedStore(b, testenv.StartRedis(b).Client(b))
	ctx := context.Background()
	rules := state.DefaultRules()
	rules.ReserveHold = time.Second
	const accounts = 1000
	var delays []time.Duration
	round := 0
	for b.Loop() {
		round++
		b.StopTimer()
		deadlines := scheduleReleases(b, store, rules, round, accounts)
		timed := &releaseTimes{CountdownStore: store, saved: map[string]time.Time{}}
		runner := consumers.NewCountdowns(timed, zerolog.Nop(), consumers.CountdownConfig{Rules: &rules})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = runner.Run(runCtx); close(done) }()
		b.StartTimer()
		for {
			timed.mu.Lock()
			n := len(timed.saved)
			timed.mu.Unlock()
			if n == accounts {
				break
			}
			if time.Since(deadlines[len(deadlines)-1]) > 30*time.Second {
				b.Fatalf("only %d of %d reserves released 30s after the deadline", n, accounts)
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		<-done
		for i, at := range deadlines {
			delays = append(delays, timed.saved[fmt.Sprintf("acct-r%d-%04d", round, i)].Sub(at))
		}
	}
	slices.Sort(delays)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(delays[len(delays)/2]), "p50-ms")
	b.ReportMetric(ms(delays[len(delays)*99/100]), "p99-ms")
	b.ReportMetric(ms(delays[len(delays)-1]), "max-ms")
}

// scheduleReleases saves n accounts whose only pay-as-you-go resource was released in
// the last second, one millisecond apart, and returns their deadlines.
func scheduleReleases(b *testing.B, store *redisstore.Store, rules state.Rules, round, n int) []time.Time {
	b.Helper()
	start := time.Now().UTC()
	steps := make([]state.Step, 0, n)
	deadlines := make([]time.Time, 0, n)
	for i := range n {
		a := state.NewAccount(fmt.Sprintf("acct-r%d-%04d", round, i))
		a.Opened, a.Currency = true, "CNY"
		released := start.Add(-time.Duration(i) * time.Millisecond)
		a.LastReleaseAt = &released
		deadlines = append(deadlines, *a.ReserveDeadline(rules))
		steps = append(steps, state.Step{
			Event:   state.EventRef{AccountID: a.ID, EventID: a.ID + "-release"},
			Account: &a, SetNextDeadline: true, NextDeadline: a.NextDeadline(rules),
		})
	}
	if _, err := store.Commit(context.Background(), steps); err != nil {
		b.Fatal(err)
	}
	return deadlines
}
