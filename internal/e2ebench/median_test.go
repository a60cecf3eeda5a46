package e2ebench

import (
	"slices"
	"testing"
	"time"
)

// The latency phase reports, per mode, the run with the median p99 (its windows and
// counts), the median p50 and max of all runs, and every run's p99 in the order run.
func TestLatencyRunsCombineIntoTheirMedians(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	runs := []latencyResult{
		{p50: ms(9), p99: ms(140), max: ms(300), matched: 1, p99ByWindow: []time.Duration{ms(1)}},
		{p50: ms(12), p99: ms(60), max: ms(90), matched: 2, p99ByWindow: []time.Duration{ms(2)}},
		{p50: ms(10), p99: ms(80), max: ms(200), matched: 3, p99ByWindow: []time.Duration{ms(3)}},
	}
	got := medianLatency(runs)
	if got.p99 != ms(80) || got.matched != 3 || !slices.Equal(got.p99ByWindow, []time.Duration{ms(3)}) {
		t.Errorf("kept the run with p99 %v (matched %d, windows %v), want the median run's 80ms (3, [3ms])", got.p99, got.matched, got.p99ByWindow)
	}
	if got.p50 != ms(10) || got.max != ms(200) {
		t.Errorf("p50 %v, max %v; want the medians 10ms and 200ms", got.p50, got.max)
	}
	if want := []time.Duration{ms(140), ms(60), ms(80)}; !slices.Equal(got.p99OfRuns, want) {
		t.Errorf("p99 of each run %v, want %v in the order run", got.p99OfRuns, want)
	}
	if runs[0].p99 != ms(140) {
		t.Error("combining reordered the runs it was given")
	}
	if one := medianLatency(runs[:1]); one.p99 != ms(140) || one.p50 != ms(9) || one.max != ms(300) {
		t.Errorf("one run combined into %+v, want it unchanged", one)
	}
}
