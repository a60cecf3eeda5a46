package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile profiles refundd's CPU into path until the returned stop is called
// (on a clean stop), for `go tool pprof`. The file is created at once, so a path that
// cannot be written stops the start rather than the profile being lost at the end.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
