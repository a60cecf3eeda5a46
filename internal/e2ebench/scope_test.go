package e2ebench

import (
	"slices"
	"sync"
	"testing"
)

// scope is a testing.TB whose Cleanup functions run when the scope is closed, not when
// the benchmark ends: each scenario's containers and processes go away before the next
// scenario starts, so they do not share the two cores with it. Anything else (Fatal,
// Log, TempDir) is the benchmark's own.
type scope struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	once     sync.Once
}

func newScope(tb testing.TB) *scope {
	s := &scope{TB: tb}
	tb.Cleanup(s.close) // a Fatal in the middle still cleans up
	return s
}

func (s *scope) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *scope) close() {
	s.once.Do(func() {
		s.mu.Lock()
		fs := slices.Clone(s.cleanups)
		s.mu.Unlock()
		for i := len(fs) - 1; i >= 0; i-- {
			fs[i]()
		}
	})
}
