package main

import (
	"errors"
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/rs/zerolog"
)

// gcPercentUnderMemoryLimit is refundd's GOGC when a memory limit bounds its heap and
// GOGC is not set. A third of refundd's CPU goes to allocating and collecting garbage,
// and the collector marks the live heap (mostly the account cache) once per GOGC% of
// it allocated: in task bench, 15 collections instead of 71, and refundd's CPU per
// event 12% lower with the append-only file off and 5% with fsync always (medians of
// 3 alternated runs). Without a limit it would let the heap grow to 5 times what is
// live, so it applies only under one, where the collector works harder as the heap
// nears the limit instead.
const gcPercentUnderMemoryLimit = 400

// memoryLimitRatio is the share of the container's memory limit (cgroup) refundd sets
// as its own when GOMEMLIMIT is not set: the rest is for what the Go runtime does not
// count (the binary, the kernel's buffers for its connections).
const memoryLimitRatio = 0.9

// gcSettings is how refundd's garbage collector was set at start, for its log.
type gcSettings struct {
	gcPercent   int
	memoryLimit int64 // bytes; math.MaxInt64 for none
	// limitFrom says where the limit came from: "GOMEMLIMIT", "cgroup" or "".
	limitFrom string
}

// tuneGC sets the memory limit from the container's (memlimit: cgroup v1 or v2) unless
// GOMEMLIMIT is set, then GOGC as gcPercentFor says. lookupEnv is os.LookupEnv but in
// tests; memlimit itself reads the process's environment (GOMEMLIMIT, and AUTOMEMLIMIT:
// a ratio, or "off"), and skips when GOMEMLIMIT is set even empty, as here.
func tuneGC(lookupEnv func(string) (string, bool), log zerolog.Logger) gcSettings {
	s := gcSettings{limitFrom: "GOMEMLIMIT"}
	if _, set := lookupEnv("GOMEMLIMIT"); !set {
		s.limitFrom = "cgroup"
		_, err := memlimit.Set(memlimit.WithProvider(memlimit.FromCgroup), memlimit.WithRatio(memoryLimitRatio))
		switch {
		case errors.Is(err, memlimit.ErrNoCgroup), errors.Is(err, memlimit.ErrCgroupsNotSupported):
			// Not in a cgroup with a memory controller (a laptop, some CI): no limit,
			// as before.
			log.Debug().Err(err).Msg("no container memory limit found")
		case err != nil:
			// A limit may exist that refundd could not read, or AUTOMEMLIMIT is not a
			// ratio: the operator should know it runs without one.
			log.Warn().Err(err).Msg("container memory limit not applied; set GOMEMLIMIT")
		}
	}
	s.memoryLimit = debug.SetMemoryLimit(-1) // -1 reads it
	if s.memoryLimit == math.MaxInt64 {
		s.limitFrom = ""
	}
	// SetGCPercent only reads by setting: what the runtime took from GOGC, or 100.
	current := debug.SetGCPercent(100)
	_, gogcSet := lookupEnv("GOGC")
	s.gcPercent = gcPercentFor(gogcSet, current, s.memoryLimit)
	debug.SetGCPercent(s.gcPercent)
	return s
}

// gcPercentFor is refundd's GOGC: the one set (GOGC, which the runtime applied at
// start as current; "off" is -1), else gcPercentUnderMemoryLimit under a memory limit,
// else current, Go's default of 100.
func gcPercentFor(gogcSet bool, current int, memoryLimit int64) int {
	if !gogcSet && memoryLimit != math.MaxInt64 {
		return gcPercentUnderMemoryLimit
	}
	return current
}

// logGC says how the garbage collector runs, once at start.
func logGC(log zerolog.Logger, s gcSettings) {
	e := log.Info().Int("gogc", s.gcPercent)
	if s.limitFrom != "" {
		e = e.Int64("memory_limit_mib", s.memoryLimit>>20).Str("memory_limit_from", s.limitFrom)
	}
	e.Msg("garbage collector")
}
