package consumers

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fakeArrivals delivers a message every gap on a fake clock, or reports a timeout when
// the next would come later than the caller waits.
type fakeArrivals struct {
	at  time.Time
	gap time.Duration
}

func (f *fakeArrivals) now() time.Time { return f.at }

func (f *fakeArrivals) next(wait time.Duration) (jetstream.Msg, error) {
	if f.gap > wait {
		f.at = f.at.Add(wait)
		return nil, errors.New("timeout")
	}
	f.at = f.at.Add(f.gap)
	return nil, nil
}

func TestABatchClosesAtItsMaximumWaitWhileEventsTrickleIn(t *testing.T) {
	// An event every millisecond, inside the 2 ms linger: only the 5 ms cap ends the batch.
	f := &fakeArrivals{at: time.Unix(0, 0), gap: time.Millisecond}
	start := f.now()
	msgs := collectBatch(nil, f.next, 500, 2*time.Millisecond, 5*time.Millisecond, f.now)
	if len(msgs) != 6 || f.now().Sub(start) != 5*time.Millisecond {
		t.Fatalf("batch of %d closed after %v, want 6 events (the first and five more) after 5ms", len(msgs), f.now().Sub(start))
	}
}

func TestABatchClosesWhenNoEventComesWithinTheLinger(t *testing.T) {
	f := &fakeArrivals{at: time.Unix(0, 0), gap: 3 * time.Millisecond}
	if msgs := collectBatch(nil, f.next, 500, 2*time.Millisecond, 5*time.Millisecond, f.now); len(msgs) != 1 {
		t.Fatalf("batch of %d, want the first event alone: the next came after the linger", len(msgs))
	}
}

func TestABacklogFillsABatchAtOnce(t *testing.T) {
	// Events already fetched come without waiting: the batch fills to its size.
	f := &fakeArrivals{at: time.Unix(0, 0), gap: 0}
	if msgs := collectBatch(nil, f.next, 500, 2*time.Millisecond, 5*time.Millisecond, f.now); len(msgs) != 500 {
		t.Fatalf("batch of %d, want 500", len(msgs))
	}
}
