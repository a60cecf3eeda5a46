package testenv

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/internal/connect"
)

// Redis is a redis-server with append-only persistence (appendonly yes, the
// default fsync policy of once per second) storing to /data inside its container
// (the defaults of the refunds-test/redis image).
type Redis struct {
	// URL is redis://host:port/0, ready for redis.ParseURL. It stays valid across
	// Stop, Start and Restart: the host port is pinned, so clients reconnect.
	URL string
	// HostPID is the server's process id on the host, when known (StartRedisForBench).
	HostPID int

	server *server
}

// ListpackArgs are the Redis settings deploy/compose runs with: a hash whose values are
// at most 512 bytes (an account's fields, its top-ups and open cases) stays a compact
// listpack up to 512 fields (Redis's built-in hash-max-listpack-entries), instead of a
// hash table at Redis's default of 64 bytes.
var ListpackArgs = []string{"--hash-max-listpack-value", "512"}

// StartRedis starts a Redis server for this test and terminates it when the test
// ends. It skips the test when Docker is unreachable (fails under CI=true, see
// Docker) and builds the test images first if they are missing.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	s := startServer(tb, redisSpec())
	return &Redis{URL: s.url, server: s}
}

// redisSpec is the Redis server as the image runs it.
func redisSpec() serverSpec {
	return serverSpec{
		name:     "redis",
		image:    func(imgs images) string { return imgs.redis },
		port:     "6379/tcp",
		scheme:   "redis",
		urlPath:  "/0",
		readyLog: "Ready to accept connections",
		cmd: append([]string{"--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes"},
			ListpackArgs...),
	}
}

// StartDurableRedis is StartRedis with the append-only file fsynced before every write
// is answered (appendfsync always): a server killed with SIGKILL then keeps every
// write it acknowledged. refundd acknowledges an event once Redis answered its save.
func StartDurableRedis(tb testing.TB) *Redis {
	tb.Helper()
	spec := redisSpec()
	spec.name = "redis (appendfsync always)"
	spec.cmd = append([]string{"--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data",
		"--appendonly", "yes", "--appendfsync", "always"}, ListpackArgs...)
	s := startServer(tb, spec)
	return &Redis{URL: s.url, server: s}
}

// Kill ends the server with SIGKILL, as a crash would, and keeps its container, so
// what its append-only file holds survives until Start.
func (r *Redis) Kill(ctx context.Context) error { return r.server.kill(ctx) }

// Stop shuts the server down cleanly (Redis flushes its AOF on SIGTERM) and keeps
// its container, so the data survives until Start.
func (r *Redis) Stop(ctx context.Context) error { return r.server.stop(ctx) }

// Start starts a stopped server again on the same URL and returns once it has
// reloaded its AOF and accepts clients.
func (r *Redis) Start(ctx context.Context) error { return r.server.start(ctx) }

// Restart is Stop followed by Start.
func (r *Redis) Restart(ctx context.Context) error { return r.server.restart(ctx) }

// Client is a go-redis client for this server, closed when the test ends.
func (r *Redis) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		tb.Fatalf("testenv: redis url %s: %v", r.URL, err)
	}
	// As refundd's clients speak (connect.DefaultRedisProtocol).
	opts.Protocol = connect.DefaultRedisProtocol
	c := redis.NewClient(opts)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
