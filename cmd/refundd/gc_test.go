package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/rs/zerolog"
)

func TestRefunddCollectsGarbageLessOftenOnlyUnderAMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	cases := []struct {
		name        string
		gogcSet     bool
		current     int
		memoryLimit int64
		want        int
	}{
		{"under a memory limit, four times less often", false, 100, gib, gcPercentUnderMemoryLimit},
		{"without a limit, as Go does by default", false, 100, math.MaxInt64, 100},
		{"GOGC set, under a limit: the operator's", true, 150, gib, 150},
		{"GOGC=100 set, under a limit: the operator's, though it is Go's default", true, 100, gib, 100},
		{"GOGC=off, under a limit: the operator's", true, -1, gib, -1},
		{"GOGC=off, without a limit: the operator's", true, -1, math.MaxInt64, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := gcPercentFor(c.gogcSet, c.current, c.memoryLimit); got != c.want {
				t.Errorf("gcPercentFor(%v, %d, %d) = %d, want %d", c.gogcSet, c.current, c.memoryLimit, got, c.want)
			}
		})
	}
}

// restoreGC puts the test process's collector back as it was.
func restoreGC(t *testing.T) {
	t.Helper()
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(percent)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func TestAGOMEMLIMITMakesRefunddCollectLessOften(t *testing.T) {
	restoreGC(t)
	// What the runtime does at start with GOMEMLIMIT=512MiB in the environment.
	debug.SetMemoryLimit(512 << 20)
	env := map[string]string{"GOMEMLIMIT": "512MiB"}
	s := tuneGC(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, zerolog.Nop())
	if s.gcPercent != gcPercentUnderMemoryLimit || debug.SetGCPercent(100) != gcPercentUnderMemoryLimit {
		t.Errorf("GOGC %d, want %d under GOMEMLIMIT", s.gcPercent, gcPercentUnderMemoryLimit)
	}
	if s.memoryLimit != 512<<20 || s.limitFrom != "GOMEMLIMIT" {
		t.Errorf("memory limit %d from %q, want 512 MiB from GOMEMLIMIT: the operator's is kept", s.memoryLimit, s.limitFrom)
	}
}

func TestWithoutAMemoryLimitRefunddCollectsAsGoDoes(t *testing.T) {
	if limit, err := memlimit.FromCgroup(); err == nil {
		t.Skipf("this test runs in a container with a memory limit (%d bytes)", limit)
	}
	restoreGC(t)
	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(100)
	s := tuneGC(func(string) (string, bool) { return "", false }, zerolog.Nop())
	if s.gcPercent != 100 || s.limitFrom != "" || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("GOGC %d, memory limit %d from %q; want 100 and none: without a limit the heap would grow unbounded",
			s.gcPercent, s.memoryLimit, s.limitFrom)
	}
}
