// Package rawloop is the transport floor the engine's throughput is measured against:
// the least a JetStream-to-Redis loop can do per event. It decodes nothing, checks no
// version and writes a tiny record per event. BenchmarkRawLoopThroughput (consumers)
// and the end-to-end bench (internal/e2ebench) both run it, so "the raw loop" is one
// definition.
package rawloop

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/state/redisstore"
)

const (
	// BatchSize is the loop's batch, the intake's default.
	BatchSize = 500
	// BatchLinger is how long it waits for one more event of a batch (the intake's
	// batches stopped waiting in 873aa5a). The benches time a backlog, whose batches
	// fill from what was fetched without waiting, so it does not count there.
	BatchLinger = 2 * time.Millisecond
)

// stepScript is the per-event write. KEYS[1] idempotency record, KEYS[2] account
// hash, KEYS[3] outbox stream; ARGV[1] retention in seconds, ARGV[2] event id,
// ARGV[3] event body.
var stepScript = redis.NewScript(`
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('HSET', KEYS[2], 'last', ARGV[2])
redis.call('XADD', KEYS[3], '*', 'id', ARGV[2], 'body', ARGV[3])
return 1
`)

// Run consumes cons until ctx is cancelled, then finishes the batch it holds: batches
// of up to BatchSize from one pull iterator, one pipeline per batch with one EVALSHA
// per event of a trivial script (under the account partition's hash tag, as the
// engine's keys), then a plain Ack per message. delivered (may be nil) counts the
// events fetched, processed those saved and acknowledged.
func Run(ctx context.Context, cons jetstream.Consumer, rdb redis.UniversalClient, processed, delivered *atomic.Int64) error {
	if err := stepScript.Load(ctx, rdb).Err(); err != nil {
		return fmt.Errorf("load the raw loop's script: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * BatchSize))
	if err != nil {
		return fmt.Errorf("start consuming: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()

	retention := strconv.FormatInt(int64(redisstore.DefaultIdempotencyRetention/time.Second), 10)
	save := context.WithoutCancel(ctx)
	batch := make([]jetstream.Msg, 0, BatchSize)
	for {
		first, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		batch = append(batch[:0], first)
		for len(batch) < BatchSize {
			msg, err := it.Next(jetstream.NextMaxWait(BatchLinger))
			if err != nil {
				break
			}
			batch = append(batch, msg)
		}
		if delivered != nil {
			delivered.Add(int64(len(batch)))
		}
		pipe := rdb.Pipeline()
		for _, msg := range batch {
			subject := msg.Subject()
			account := subject[strings.LastIndexByte(subject, '.')+1:]
			id := msg.Headers().Get(nats.MsgIdHdr)
			tag := "raw:{p" + strconv.Itoa(redisstore.Partition(account)) + "}:"
			keys := []string{tag + "seen:" + id, tag + "acct:" + account, tag + "outbox"}
			stepScript.EvalSha(save, pipe, keys, retention, id, msg.Data())
		}
		if _, err := pipe.Exec(save); err != nil {
			return fmt.Errorf("save batch of %d: %w", len(batch), err)
		}
		for _, msg := range batch {
			if err := msg.Ack(); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
		}
		processed.Add(int64(len(batch)))
	}
}
