package consumers

import (
	"fmt"
	"testing"
	"time"
)

// shareOf is a share of n messages named <name>-0, <name>-1...
func shareOf(name string, n int) *Batch {
	b := &Batch{}
	for i := range n {
		b.Msgs = append(b.Msgs, &simMsg{subject: fmt.Sprintf("%s-%d", name, i)})
		b.decoded = append(b.decoded, decodedMsg{})
	}
	return b
}

func subjectsOf(b *Batch) []string {
	var out []string
	for _, m := range b.Msgs {
		out = append(out, m.Subject())
	}
	return out
}

func TestABusyWorkerTakesTheSharesQueuedMeanwhileAsOneBatchInOrder(t *testing.T) {
	q := newWorkQueue(500)
	q.put(shareOf("a", 2))
	q.put(shareOf("b", 1))
	q.put(shareOf("c", 2))
	b, ok := q.take(500)
	if !ok {
		t.Fatal("nothing taken from a queue holding three shares")
	}
	if got, want := fmt.Sprint(subjectsOf(b)), "[a-0 a-1 b-0 c-0 c-1]"; got != want {
		t.Fatalf("took %s, want %s", got, want)
	}
	if len(b.decoded) != len(b.Msgs) {
		t.Fatalf("%d messages but %d decoded", len(b.Msgs), len(b.decoded))
	}
}

func TestAWorkerTakesNoMoreThanABatchSizeOfMessages(t *testing.T) {
	q := newWorkQueue(1000)
	q.put(shareOf("a", 300))
	q.put(shareOf("b", 150))
	q.put(shareOf("c", 100))
	first, _ := q.take(500)
	second, _ := q.take(500)
	if len(first.Msgs) != 450 || len(second.Msgs) != 100 {
		t.Fatalf("took %d then %d messages, want 450 then 100", len(first.Msgs), len(second.Msgs))
	}
	if second.Msgs[0].Subject() != "c-0" {
		t.Fatalf("the second batch starts with %s, want c-0", second.Msgs[0].Subject())
	}
	// A share larger than the batch size still goes, alone.
	q.put(shareOf("d", 700))
	q.put(shareOf("e", 1))
	if big, _ := q.take(500); len(big.Msgs) != 700 {
		t.Fatalf("took %d messages, want the 700-message share alone", len(big.Msgs))
	}
}

func TestAFullQueueHoldsTheFetcherUntilItsWorkerTakes(t *testing.T) {
	q := newWorkQueue(4)
	q.put(shareOf("a", 4))
	put := make(chan struct{})
	go func() {
		q.put(shareOf("b", 1))
		close(put)
	}()
	select {
	case <-put:
		t.Fatal("a share was queued on a full queue")
	case <-time.After(50 * time.Millisecond):
	}
	if b, _ := q.take(500); len(b.Msgs) != 4 {
		t.Fatalf("took %d messages, want 4", len(b.Msgs))
	}
	select {
	case <-put:
	case <-time.After(5 * time.Second):
		t.Fatal("the fetcher is still held after its worker took the full queue")
	}
}

func TestAClosedQueueHandsOverWhatItHoldsThenEnds(t *testing.T) {
	q := newWorkQueue(500)
	q.put(shareOf("a", 3))
	q.close()
	if b, ok := q.take(500); !ok || len(b.Msgs) != 3 {
		t.Fatal("the shares queued before the close were not handed over")
	}
	done := make(chan bool)
	go func() {
		_, ok := q.take(500)
		done <- ok
	}()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("an empty closed queue handed over a batch")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("take waits on an empty closed queue")
	}
}
