package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestACPUProfileIsWrittenWhenRefunddStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refundd.pprof")
	stop, err := startCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A profile is gzipped protobuf.
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		t.Fatalf("the profile is not gzipped protobuf: % x", data[:min(len(data), 8)])
	}
}

func TestACPUProfileThatCannotBeWrittenStopsTheStart(t *testing.T) {
	if _, err := startCPUProfile(filepath.Join(t.TempDir(), "missing", "refundd.pprof")); err == nil {
		t.Fatal("started with a profile in a folder that does not exist")
	}
}
