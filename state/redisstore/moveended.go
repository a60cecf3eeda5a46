package redisstore

import (
	"context"
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

// EndedCasesMoved is the progress of MoveEndedCasesApart.
type EndedCasesMoved struct {
	Accounts int // accounts looked at
	Cases    int // ended cases moved
}

// MoveEndedCasesApart moves every ended case kept in its account's hash to the
// account's hash of ended cases (closedCasesKey), where versions before this layout
// keep and read them all: what to run before rolling back to such a version, which
// cannot read an account holding one. Set endedCasesInAccountsSinceKey to the current
// time and restart this version's instances first, so they keep new cases apart too.
//
// It scans the keyspace (each master of a cluster) for accounts, moves each account's
// cases in one atomic step, and calls progress after each page of the scan. It is
// safe beside running instances, which never write "ce:" fields while they keep cases
// apart, and safe to run again.
func (s *Store) MoveEndedCasesApart(ctx context.Context, progress func(EndedCasesMoved)) (EndedCasesMoved, error) {
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
			for _, key := range keys {
				_, accountID, ok := strings.Cut(key, ":acct:")
				if !ok || accountKey(accountID) != key {
					continue // not an account's hash of this store
				}
				n, err := moveEndedApart.Run(ctx, c, []string{key, closedCasesKey(accountID)}).Int()
				if err != nil {
					return fmt.Errorf("move the ended cases of %s: %w", accountID, err)
				}
				page.Accounts++
				page.Cases += n
			}
			mu.Lock()
			done.Accounts += page.Accounts
			done.Cases += page.Cases
			if progress != nil {
				progress(done)
			}
			mu.Unlock()
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		return done, fmt.Errorf("move ended cases apart: a %T cannot be scanned", s.rdb)
	}
	return done, err
}
