package e2ebench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// naiveWaitLimit is how many times the naive loop lets an event wait (for its account
// to be opened, for the case it answers) before it gives up on it. The loop keeps no
// ended cases, so an event naming one would otherwise wait for ever.
const naiveWaitLimit = 10

// naiveCounts are what the naive loop did with the events.
type naiveCounts struct {
	settled, applied, duplicates, refused, waits, gaveUp atomic.Int64
}

// naiveLoop is a straightforward engine without batching: one event at a time, fetch
// 1, decode, one round trip reading the event's idempotency record and the account's
// JSON (encoding/json of state.Account), state.Apply, one MULTI/EXEC writing the
// account back with the idempotency record, then a synchronous DoubleAck. Outbound
// events are decided but not saved or published, and ended cases are not kept: it does
// less than refundd does, so refundd/naive is if anything understated.
func naiveLoop(ctx context.Context, cons jetstream.Consumer, rdb *redis.Client, n *naiveCounts) error {
	rules := state.DefaultRules()
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch: %w", err)
		}
		if err := naiveStep(ctx, rdb, rules, msg, n); err != nil {
			return err
		}
	}
	return nil
}

func naiveStep(ctx context.Context, rdb *redis.Client, rules state.Rules, msg jetstream.Msg, n *naiveCounts) error {
	ctx = context.WithoutCancel(ctx)
	ev, err := events.Decode(msg.Data())
	if err != nil {
		n.refused.Add(1)
		n.settled.Add(1)
		return msg.Term()
	}
	tag := "naive:{p" + strconv.Itoa(redisstore.Partition(ev.Subject)) + "}:"
	seenKey, acctKey := tag+"seen:"+ev.Subject+":"+ev.ID, tag+"acct:"+ev.Subject
	pipe := rdb.Pipeline()
	seen := pipe.Exists(ctx, seenKey)
	doc := pipe.Get(ctx, acctKey)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("load %s: %w", ev.Subject, err)
	}
	if seen.Val() == 1 {
		n.duplicates.Add(1)
		n.settled.Add(1)
		return msg.DoubleAck(ctx)
	}
	acct := state.NewAccount(ev.Subject)
	if raw, err := doc.Bytes(); err == nil {
		if err := json.Unmarshal(raw, &acct); err != nil {
			return fmt.Errorf("decode %s: %w", ev.Subject, err)
		}
	}
	d, err := state.Apply(acct, ev, rules, time.Now())
	var waiting *state.Waiting
	switch {
	case errors.As(err, &waiting):
		n.waits.Add(1)
		if meta, merr := msg.Metadata(); merr == nil && meta.NumDelivered >= naiveWaitLimit {
			n.gaveUp.Add(1)
			n.settled.Add(1)
			return msg.Term()
		}
		return msg.NakWithDelay(200 * time.Millisecond)
	case err != nil:
		n.refused.Add(1)
		n.settled.Add(1)
		return msg.Term()
	}
	body, err := json.Marshal(d.Account)
	if err != nil {
		return fmt.Errorf("encode %s: %w", ev.Subject, err)
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, acctKey, body, 0)
		p.Set(ctx, seenKey, "1", redisstore.DefaultIdempotencyRetention)
		return nil
	}); err != nil {
		return fmt.Errorf("save %s: %w", ev.Subject, err)
	}
	n.applied.Add(1)
	n.settled.Add(1)
	return msg.DoubleAck(ctx)
}
