package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/state"
)

// relayGroup is the consumer group relays share, so several instances split the outbox
// and an entry a crashed relay held is claimed by another.
const relayGroup = "relay"

// ReadOutbox takes up to count new entries per partition for relay consumer, in one
// pipeline (one command per partition, so it works on Redis Cluster too). It does not
// block. Entries come in outbox order within a partition.
func (s *Store) ReadOutbox(ctx context.Context, consumer string, count int) ([]state.OutboxEntry, error) {
	return s.readOutbox(ctx, consumer, count, ">")
}

// ReadOwnPendingOutbox gives back up to count entries per partition that consumer took
// and has not acknowledged (its publish failed), in outbox order, so it can publish
// them again before anything newer.
func (s *Store) ReadOwnPendingOutbox(ctx context.Context, consumer string, count int) ([]state.OutboxEntry, error) {
	return s.readOutbox(ctx, consumer, count, "0")
}

func (s *Store) readOutbox(ctx context.Context, consumer string, count int, from string) ([]state.OutboxEntry, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XStreamSliceCmd, Partitions)
	for p := 0; p < Partitions; p++ {
		cmds[p] = pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    relayGroup,
			Consumer: consumer,
			Streams:  []string{outboxKey(p), from},
			Count:    int64(count),
			Block:    -1, // no BLOCK argument: return at once
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	var entries []state.OutboxEntry
	for p, cmd := range cmds {
		for _, stream := range cmd.Val() {
			entries = appendEntries(entries, p, stream.Messages)
		}
	}
	return entries, nil
}

// ClaimStaleOutbox takes over entries another relay (or this one) read but did not
// acknowledge within minIdle: the relay crashed or its publish failed.
func (s *Store) ClaimStaleOutbox(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]state.OutboxEntry, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XAutoClaimCmd, Partitions)
	for p := 0; p < Partitions; p++ {
		cmds[p] = pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: outboxKey(p), Group: relayGroup, Consumer: consumer,
			MinIdle: minIdle, Start: "0-0", Count: int64(count),
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim stale outbox entries: %w", err)
	}
	var entries []state.OutboxEntry
	for p, cmd := range cmds {
		msgs, _ := cmd.Val()
		entries = appendEntries(entries, p, msgs)
	}
	return entries, nil
}

func appendEntries(entries []state.OutboxEntry, partition int, msgs []redis.XMessage) []state.OutboxEntry {
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		subject, _ := m.Values["subject"].(string)
		body, _ := m.Values["body"].(string)
		// Absent from entries without a trace context, and from every entry written
		// before trace contexts were kept: those are published without one.
		traceParent, _ := m.Values["traceparent"].(string)
		traceState, _ := m.Values["tracestate"].(string)
		entries = append(entries, state.OutboxEntry{
			ID: id, Subject: subject, Body: []byte(body),
			TraceParent: traceParent, TraceState: traceState,
			Partition: partition, Position: m.ID,
		})
	}
	return entries
}

// AckOutbox removes published entries from the outbox.
func (s *Store) AckOutbox(ctx context.Context, entries []state.OutboxEntry) error {
	return s.removeFromOutbox(ctx, entries, true)
}

// DeleteOutbox removes published entries that no relay read from the outbox (handed
// to the relay by the process that saved them): they are in no consumer's pending
// list, so there is nothing to acknowledge.
func (s *Store) DeleteOutbox(ctx context.Context, entries []state.OutboxEntry) error {
	return s.removeFromOutbox(ctx, entries, false)
}

func (s *Store) removeFromOutbox(ctx context.Context, entries []state.OutboxEntry, acknowledge bool) error {
	if len(entries) == 0 {
		return nil
	}
	byPartition := make(map[int][]string)
	for _, e := range entries {
		byPartition[e.Partition] = append(byPartition[e.Partition], e.Position)
	}
	pipe := s.rdb.Pipeline()
	for p, ids := range byPartition {
		if acknowledge {
			pipe.XAck(ctx, outboxKey(p), relayGroup, ids...)
		}
		pipe.XDel(ctx, outboxKey(p), ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("remove %d outbox entries: %w", len(entries), err)
	}
	return nil
}

// ParkOutbox moves entries JetStream keeps refusing out of the outbox into the
// partition's parked stream (rf:{pNN}:outbox:parked, same fields), where an operator
// can see and replay them, so they stop holding up their partition.
func (s *Store) ParkOutbox(ctx context.Context, entries []state.OutboxEntry) error {
	if len(entries) == 0 {
		return nil
	}
	// Not a transaction: the entries may be in several partitions (cluster slots). The
	// copy is written before the entry is removed, so a failure in between parks it
	// twice at worst, never loses it.
	pipe := s.rdb.Pipeline()
	for _, e := range entries {
		values := []any{"id", e.ID, "subject", e.Subject, "body", e.Body}
		if e.TraceParent != "" {
			values = append(values, "traceparent", e.TraceParent)
		}
		if e.TraceState != "" {
			values = append(values, "tracestate", e.TraceState)
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: parkedKey(e.Partition), Values: values})
		pipe.XAck(ctx, outboxKey(e.Partition), relayGroup, e.Position)
		pipe.XDel(ctx, outboxKey(e.Partition), e.Position)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("park %d outbox entries: %w", len(entries), err)
	}
	return nil
}

// OutboxLength is how many entries wait in the outbox, published or not yet
// acknowledged. It is a gauge for operators and a check for tests.
func (s *Store) OutboxLength(ctx context.Context) (int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, Partitions)
	for p := 0; p < Partitions; p++ {
		cmds[p] = pipe.XLen(ctx, outboxKey(p))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("outbox length: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// OutboxOldest is when the oldest entry still in the outbox was queued, from its
// stream id; ok is false when the outbox is empty.
func (s *Store) OutboxOldest(ctx context.Context) (at time.Time, ok bool, err error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, Partitions)
	for p := 0; p < Partitions; p++ {
		cmds[p] = pipe.XRangeN(ctx, outboxKey(p), "-", "+", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return time.Time{}, false, fmt.Errorf("oldest outbox entry: %w", err)
	}
	for _, cmd := range cmds {
		for _, m := range cmd.Val() {
			ms, _, _ := strings.Cut(m.ID, "-")
			n, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				continue
			}
			if t := time.UnixMilli(n); !ok || t.Before(at) {
				at, ok = t, true
			}
		}
	}
	return at, ok, nil
}
