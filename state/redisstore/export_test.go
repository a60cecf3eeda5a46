package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/state"
)

// FlushScriptsForTest empties Redis's script cache, as a Redis restart does.
func (s *Store) FlushScriptsForTest(ctx context.Context) error {
	return s.rdb.ScriptFlush(ctx).Err()
}

// AccountKeyForTest is the Redis key an account is stored under.
func AccountKeyForTest(id string) string { return accountKey(id) }

// ClientForTest is the store's Redis client.
func (s *Store) ClientForTest() redis.UniversalClient { return s.rdb }

// EncodeAccountForTest is the account's stored form as one document: its two hash
// fields merged, which is exactly the single document the first version wrote (top-ups
// and payers last).
func EncodeAccountForTest(a state.Account) ([]byte, error) {
	core, topUps, err := encodeAccount(&a, true)
	if err != nil || string(topUps) == "{}" {
		return core, err
	}
	return append(append(core[:len(core)-1:len(core)-1], ','), topUps[1:]...), nil
}

// DecodeAccountForTest reads one document (the first version's form, with its top-ups
// inside).
func DecodeAccountForTest(b []byte) (state.Account, error) { return decodeAccountJSON(b, nil) }

// StoredFieldsForTest are the account's hash fields s and t as Redis holds them.
func (s *Store) StoredFieldsForTest(ctx context.Context, id string) (core, topUps string, err error) {
	vals, err := s.rdb.HMGet(ctx, accountKey(id), "s", "t").Result()
	if err != nil {
		return "", "", err
	}
	core, _ = vals[0].(string)
	topUps, _ = vals[1].(string)
	return core, topUps, nil
}

// ClosedCasesKeyForTest is the Redis key of an account's ended cases.
func ClosedCasesKeyForTest(id string) string { return closedCasesKey(id) }
