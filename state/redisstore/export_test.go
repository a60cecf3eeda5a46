package redisstore

import "context"

// FlushScriptsForTest empties Redis's script cache, as a Redis restart does.
func (s *Store) FlushScriptsForTest(ctx context.Context) error {
	return s.rdb.ScriptFlush(ctx).Err()
}

// AccountKeyForTest is the Redis key an account is stored under.
func AccountKeyForTest(id string) string { return accountKey(id) }
