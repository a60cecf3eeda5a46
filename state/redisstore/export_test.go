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

// EncodeAccountForTest is the account's stored form.
func EncodeAccountForTest(a state.Account) ([]byte, error) { return encodeAccount(&a) }

// DecodeAccountForTest reads an account's stored form.
func DecodeAccountForTest(b []byte) (state.Account, error) { return decodeAccountJSON(b) }

// ClosedCasesKeyForTest is the Redis key of an account's ended cases.
func ClosedCasesKeyForTest(id string) string { return closedCasesKey(id) }
