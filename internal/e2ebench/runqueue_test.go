package e2ebench

import (
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestRunQueueWaitGrowsWhenThreadsOutnumberTheCores(t *testing.T) {
	before := runQueueWait(os.Getpid())
	if before < 0 {
		t.Skip("this kernel keeps no schedstats: the bench prints no waits")
	}
	// Four busy threads per core: each is ready to run about three quarters of the
	// time it is not running.
	threads := 4 * runtime.NumCPU()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
	const busyFor = 300 * time.Millisecond
	var wg sync.WaitGroup
	for range threads {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for start := time.Now(); time.Since(start) < busyFor; {
			}
		})
	}
	wg.Wait()
	waited := runQueueWait(os.Getpid()) - before
	// Of threads × 300 ms of wall time, the cores could run at most cores × 300 ms.
	if want := busyFor; waited < want {
		t.Errorf("%d busy threads on %d cores waited %s for a core in all, want at least %s", threads, runtime.NumCPU(), waited, want)
	}
}

func TestRunQueueWaitOfAProcessThatIsGoneIsUnknown(t *testing.T) {
	if got := runQueueWait(1 << 30); got != -1 {
		t.Errorf("runQueueWait of no process = %s, want -1", got)
	}
}
