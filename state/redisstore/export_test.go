package redisstore

import "context"

// FlushScriptsForTest empties Redis's script cache, as a Redis restart does.
func (s *Store) FlushScriptsForTest(ctx context.Context) error {
	return s.rdb.ScriptFlush(ctx).Err()
}
