package consumers

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func numbered(n int) []jetstream.Msg {
	msgs := make([]jetstream.Msg, n)
	for i := range msgs {
		msgs[i] = &simMsg{subject: "billing.consumption.recorded.acct-1", seq: uint64(i + 1)}
	}
	return msgs
}

func seqs(msgs []jetstream.Msg) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.(*simMsg).seq
	}
	return out
}

func TestAnIdleWorkerTakesALoneEventAtOnce(t *testing.T) {
	box := newInbox(500)
	msgs := numbered(1)
	box.put(msgs[0])
	if got := box.take(); len(got) != 1 || got[0] != msgs[0] {
		t.Fatalf("took %v, want the lone event", seqs(got))
	}
}

func TestABatchIsWhatCameWhileTheWorkerWasBusy(t *testing.T) {
	box := newInbox(500)
	first := box.take // the worker is busy until it calls it
	for _, m := range numbered(3) {
		box.put(m)
	}
	if got := fmt.Sprint(seqs(first())); got != "[1 2 3]" {
		t.Fatalf("took %s, want the three events that came meanwhile, in order", got)
	}
}

func TestABacklogIsTakenABatchAtATimeInOrder(t *testing.T) {
	box := newInbox(500)
	msgs := numbered(1200)
	go func() {
		for _, m := range msgs {
			box.put(m)
		}
		box.close()
	}()
	var next uint64 = 1
	for {
		batch := box.take()
		if batch == nil {
			break
		}
		if len(batch) > 500 {
			t.Fatalf("a batch of %d, more than the batch size", len(batch))
		}
		for _, seq := range seqs(batch) {
			if seq != next {
				t.Fatalf("event %d taken where %d was next", seq, next)
			}
			next++
		}
	}
	if next != 1201 {
		t.Fatalf("took %d events, want 1200", next-1)
	}
}

func TestAFullInboxMakesTheFetcherWait(t *testing.T) {
	box := newInbox(2)
	msgs := numbered(3)
	box.put(msgs[0])
	box.put(msgs[1])
	put := make(chan struct{})
	go func() {
		box.put(msgs[2])
		close(put)
	}()
	// Give the third put every chance to get in: it must not while the inbox is full.
	for range 100 {
		runtime.Gosched()
	}
	time.Sleep(10 * time.Millisecond)
	box.mu.Lock()
	held := len(box.msgs)
	box.mu.Unlock()
	if held != 2 {
		t.Fatalf("the inbox holds %d events, more than its batch of 2", held)
	}
	if got := fmt.Sprint(seqs(box.take())); got != "[1 2]" {
		t.Fatalf("took %s, want [1 2]", got)
	}
	<-put
	if got := fmt.Sprint(seqs(box.take())); got != "[3]" {
		t.Fatalf("took %s, want [3] once there was room", got)
	}
}

func TestAClosedInboxGivesWhatItHoldsThenNothing(t *testing.T) {
	box := newInbox(500)
	for _, m := range numbered(2) {
		box.put(m)
	}
	box.close()
	if got := box.take(); len(got) != 2 {
		t.Fatalf("took %d events from a closed inbox, want the 2 it held", len(got))
	}
	if got := box.take(); got != nil {
		t.Fatalf("took %v after everything, want nil", seqs(got))
	}
}
