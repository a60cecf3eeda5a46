package state_test

import (
	"testing"
	"time"

	"github.com/payinfra/refunds/internal/workload"
	"github.com/payinfra/refunds/state"
)

// BenchmarkDecideWorkload decides the end-to-end bench's workload (every account's
// history, cases included) in memory, through state.Rebuild, which applies each event
// with state.Apply as the intake does: the decision's share of the intake's CPU and
// garbage, without NATS or Redis. Run:
// go test -run '^$' -bench DecideWorkload -benchmem -count 6 ./state/
func BenchmarkDecideWorkload(b *testing.B) {
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	w := workload.Generate(workload.Options{Accounts: 300, Seed: 7, Start: start})
	rules := state.DefaultRules()
	now := start.Add(time.Hour)
	applied := 0
	b.ReportAllocs()
	for b.Loop() {
		applied = 0
		for _, id := range w.Accounts {
			applied += state.Rebuild(id, w.History[id], rules, now).Applied
		}
	}
	if applied == 0 {
		b.Fatal("no event was applied")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*applied), "ns/event")
	b.ReportMetric(float64(applied), "events/op")
}
