package consumers

import (
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// workQueue holds one worker's shares of the fetched batches until the worker is free.
// The worker then takes everything queued, up to a batch's size, as one batch: a worker
// that was busy decides what came meanwhile in one load and one commit, instead of
// working through the shares one by one while newer events wait behind them.
//
// Each worker has its own queue, so a worker held up by a slow save holds up only its
// own accounts: the fetcher goes on handing the other workers their shares until this
// queue is full.
type workQueue struct {
	mu   sync.Cond
	held []*Batch
	// messages is how many messages held holds; put waits while it is at least limit.
	messages, limit int
	closed          bool
}

func newWorkQueue(limit int) *workQueue {
	return &workQueue{mu: sync.Cond{L: new(sync.Mutex)}, limit: max(1, limit)}
}

// put queues a share, waiting while the queue already holds limit messages or more.
func (q *workQueue) put(share *Batch) {
	q.mu.L.Lock()
	defer q.mu.L.Unlock()
	for q.messages >= q.limit && !q.closed {
		q.mu.Wait()
	}
	q.held = append(q.held, share)
	q.messages += len(share.Msgs)
	q.mu.Broadcast()
}

// close ends the queue: take hands over what it still holds, then reports false.
func (q *workQueue) close() {
	q.mu.L.Lock()
	defer q.mu.L.Unlock()
	q.closed = true
	q.mu.Broadcast()
}

// take waits for a share and returns, as one batch in the order they were queued, the
// shares queued so far whose messages fit in size together; the first always comes,
// whatever its size. ok is false once the queue is closed and empty.
func (q *workQueue) take(size int) (b *Batch, ok bool) {
	q.mu.L.Lock()
	defer q.mu.L.Unlock()
	for len(q.held) == 0 {
		if q.closed {
			return nil, false
		}
		q.mu.Wait()
	}
	n, messages := 1, len(q.held[0].Msgs)
	for n < len(q.held) && messages+len(q.held[n].Msgs) <= size {
		messages += len(q.held[n].Msgs)
		n++
	}
	b = joinBatches(q.held[:n], messages)
	q.held = append(q.held[:0], q.held[n:]...)
	q.messages -= messages
	q.mu.Broadcast()
	return b, true
}

// joinBatches puts shares together in order into one batch of messages messages.
func joinBatches(shares []*Batch, messages int) *Batch {
	if len(shares) == 1 {
		return shares[0]
	}
	b := &Batch{Msgs: make([]jetstream.Msg, 0, messages), decoded: make([]decodedMsg, 0, messages)}
	for _, s := range shares {
		b.Msgs = append(b.Msgs, s.Msgs...)
		b.decoded = append(b.decoded, s.decoded...)
	}
	return b
}
