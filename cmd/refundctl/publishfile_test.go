package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
)

func TestPublishingAFileChecksEveryLineThenPublishesThemAllOnce(t *testing.T) {
	js := natsWithStreams(t)
	ctx := context.Background()
	var lines []string
	for i := range 1500 {
		ev, err := events.New(events.ConsumptionRecorded, fmt.Sprintf("acct-file-%d", i%7), "/billing", fmt.Sprintf("file-%d", i),
			time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), &events.ConsumptionRecordedData{ConsumptionID: fmt.Sprintf("c%d", i), Amount: events.MustAmount("1.00")})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := ev.Encode()
		lines = append(lines, string(b))
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(good, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	broken := append(append([]string{}, lines[:3]...), strings.Replace(lines[3], `"1.00"`, `1.00`, 1))
	if err := os.WriteFile(bad, []byte(strings.Join(broken, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err := run([]string{"publish", "-file", bad}, &out)
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "nothing was published") {
		t.Fatalf("a bad line: err %v", err)
	}
	stream, err := js.Stream(ctx, consumers.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := stream.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("%d events stored from a file with a bad line, want none", info.State.Msgs)
	}

	out.Reset()
	if err := run([]string{"publish", "-file", good}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1500 new, 0 duplicates") {
		t.Fatalf("output %q", out.String())
	}
	out.Reset()
	if err := run([]string{"publish", "-file", good}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 new, 1500 duplicates") {
		t.Fatalf("publishing the file again: %q, want every event dropped as a duplicate", out.String())
	}
	if info, _ := stream.Info(ctx); info.State.Msgs != 1500 {
		t.Fatalf("%d events stored, want 1500", info.State.Msgs)
	}
}
