package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClaimDueTimers claims, for this caller, the accounts whose next deadline (of any
// timer kind) is at or before now, and those whose earlier claim's lease ran out: at most limit per
// partition. The claim lasts lease; the step that fires a deadline (Step.Fired)
// releases it. One pipelined script call per partition, so it works on Redis Cluster.
func (s *Store) ClaimDueTimers(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]string, error) {
	afterNowMs := strconv.FormatInt(now.UnixMilli()+1, 10)
	leaseMs := strconv.FormatInt(now.Add(lease).UnixMilli(), 10)
	claimed, err := s.claim(ctx, afterNowMs, leaseMs, limit)
	if err != nil && isNoScript(err) {
		if err := loadScripts(ctx, s.rdb); err != nil {
			return nil, err
		}
		claimed, err = s.claim(ctx, afterNowMs, leaseMs, limit)
	}
	return claimed, err
}

func (s *Store) claim(ctx context.Context, afterNowMs, leaseMs string, limit int) ([]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, Partitions)
	for p := 0; p < Partitions; p++ {
		cmds[p] = claimScript.EvalSha(ctx, pipe, []string{timersDueKey(p), timersClaimedKey(p)}, afterNowMs, leaseMs, limit)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim due deadlines: %w", err)
	}
	var accounts []string
	for _, cmd := range cmds {
		ids, err := cmd.StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("claim due deadlines: %w", err)
		}
		accounts = append(accounts, ids...)
	}
	return accounts, nil
}

// PendingTimersByKind is how many accounts have a pending deadline of each kind, as
// the steps that set them counted (a deadline set by a version before the counts
// were kept is not in them until it changes).
func (s *Store) PendingTimersByKind(ctx context.Context) (map[string]int64, error) {
	counts, err := s.sumCounts(ctx, timerCountsKey)
	if err != nil {
		return nil, fmt.Errorf("count pending deadlines by kind: %w", err)
	}
	return counts, nil
}

// CasesByStatus is how many cases of each kind are in each status, ended ones in the
// status they ended in, keyed "kind/status", as the steps that moved them counted
// (cases moved last by a version before the counts were kept are not in them).
func (s *Store) CasesByStatus(ctx context.Context) (map[string]int64, error) {
	counts, err := s.sumCounts(ctx, caseCountsKey)
	if err != nil {
		return nil, fmt.Errorf("count cases by status: %w", err)
	}
	return counts, nil
}

// sumCounts adds up the count hashes (field -> count) of every partition.
func (s *Store) sumCounts(ctx context.Context, key func(partition int) string) (map[string]int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, Partitions)
	for p := 0; p < Partitions; p++ {
		cmds[p] = pipe.HGetAll(ctx, key(p))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, c := range cmds {
		for field, n := range c.Val() {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("count of %s %q: %w", field, n, err)
			}
			counts[field] += v
		}
	}
	return counts, nil
}

// PendingTimers is how many accounts' deadlines wait, claimed or not: a gauge for
// operators and a check for tests.
func (s *Store) PendingTimers(ctx context.Context) (int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, 0, 2*Partitions)
	for p := 0; p < Partitions; p++ {
		cmds = append(cmds, pipe.ZCard(ctx, timersDueKey(p)), pipe.ZCard(ctx, timersClaimedKey(p)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count pending deadlines: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
