package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// moveEndedApart moves one account's ended cases out of its hash (KEYS[1], the "ce:"
// fields) into its hash of ended cases (KEYS[2]), in one atomic step. The account's
// version is not touched: the cases were never part of its document.
var moveEndedApart = redis.NewScript(`
local moved = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 3) == 'ce:' then
    redis.call('HSET', KEYS[2], string.sub(field, 4), redis.call('HGET', KEYS[1], field))
    redis.call('HDEL', KEYS[1], field)
    moved = moved + 1
  end
end
return moved
`)

// EndedCasesApartUntilDeleted is what MoveEndedCasesApart sets
// rf:ended-cases-in-accounts-since to: a first start so far ahead (the year 2286) that
// every instance started after it keeps ended cases apart, until an operator deletes
// the key. Delete it before upgrading again: the next instance to start then marks
// its first start, and keeps them apart for the day of overlap.
const EndedCasesApartUntilDeleted = "9999999999"

// ErrEndedCasesStillInAccounts means that ended cases were kept in accounts' hashes
// while MoveEndedCasesApart ran: an instance started before it is still running.
var ErrEndedCasesStillInAccounts = errors.New("ended cases were kept in accounts' hashes while they were moved: an instance started before the move still does so; restart every instance and run it again")

// EndedCasesMoved is the progress of MoveEndedCasesApart.
type EndedCasesMoved struct {
	Accounts int // accounts looked at
	Cases    int // ended cases moved
}

// MoveEndedCasesApart prepares a rollback to a version before ended cases were kept
// in their account's hash, which cannot read an account holding one. It marks the
// store to keep them apart (EndedCasesApartUntilDeleted: instances read it when they
// start), moves every ended case kept in an account's hash to the account's hash of
// ended cases (closedCasesKey), each account in one atomic step, calling progress
// after each page of its scan (on each master of a cluster), and then looks again: an
// ended case found in an account then was kept there by an instance that has not
// restarted since the mark, and the move fails with ErrEndedCasesStillInAccounts
// (having moved it too). It is safe beside running instances and safe to run again.
func (s *Store) MoveEndedCasesApart(ctx context.Context, progress func(EndedCasesMoved)) (EndedCasesMoved, error) {
	if err := s.rdb.Set(ctx, endedCasesInAccountsSinceKey, EndedCasesApartUntilDeleted, 0).Err(); err != nil {
		return EndedCasesMoved{}, fmt.Errorf("mark the store to keep ended cases apart: %w", err)
	}
	moved, err := s.moveEndedCasesApart(ctx, progress)
	if err != nil {
		return moved, err
	}
	again, err := s.moveEndedCasesApart(ctx, nil)
	if err != nil {
		return moved, err
	}
	if again.Cases > 0 {
		moved.Cases += again.Cases
		return moved, fmt.Errorf("%w (%d cases)", ErrEndedCasesStillInAccounts, again.Cases)
	}
	return moved, nil
}

// moveEndedCasesApart is one pass of MoveEndedCasesApart over the keyspace.
func (s *Store) moveEndedCasesApart(ctx context.Context, progress func(EndedCasesMoved)) (EndedCasesMoved, error) {
	var (
		mu   sync.Mutex // a cluster's masters are scanned at once
		done EndedCasesMoved
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, keyPrefix+"{p*}:acct:*", 1000).Result()
			if err != nil {
				return err
			}
			var page EndedCasesMoved
			var failed error
			for _, key := range keys {
				_, accountID, ok := strings.Cut(key, ":acct:")
				if !ok || accountKey(accountID) != key {
					continue // not an account's hash of this store
				}
				n, err := moveEndedApart.Run(ctx, c, []string{key, closedCasesKey(accountID)}).Int()
				if err != nil {
					failed = fmt.Errorf("move the ended cases of %s: %w", accountID, err)
					break
				}
				page.Accounts++
				page.Cases += n
			}
			mu.Lock()
			done.Accounts += page.Accounts
			done.Cases += page.Cases
			if progress != nil && failed == nil {
				progress(done)
			}
			mu.Unlock()
			if failed != nil {
				return failed
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	ran, err := s.onEachMaster(ctx, scan)
	if !ran {
		return done, fmt.Errorf("move ended cases apart: a %T cannot be scanned", s.rdb)
	}
	return done, err
}
