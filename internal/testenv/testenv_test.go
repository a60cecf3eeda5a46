package testenv_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/internal/testenv"
)

func TestNATSKeepsJetStreamDataAcrossRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartNATS(t)
	if !strings.HasPrefix(srv.URL, "nats://") {
		t.Fatalf("URL = %q, want nats://host:port", srv.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// This connection lives through the restart, as a service's would.
	reconnected := make(chan struct{}, 1)
	long := connectNATS(t, srv.URL,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }),
	)
	js, err := jetstream.New(long)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "TESTENV",
		Subjects: []string{"testenv.>"},
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, "testenv.before", []byte("stored before restart"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	assertStreamMsg(ctx, t, stream, ack.Sequence, "testenv.before", "stored before restart")

	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}

	// A fresh connection without retries proves Restart waited until the server
	// was ready again.
	fresh := connectNATS(t, srv.URL)
	freshJS, err := jetstream.New(fresh)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := freshJS.Stream(ctx, "TESTENV")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	assertStreamMsg(ctx, t, restored, ack.Sequence, "testenv.before", "stored before restart")

	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatal("the connection opened before the restart did not reconnect to the same URL")
	}
	ack2, err := js.Publish(ctx, "testenv.after", []byte("stored after restart"))
	if err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	if ack2.Sequence != ack.Sequence+1 {
		t.Errorf("sequence after restart = %d, want %d", ack2.Sequence, ack.Sequence+1)
	}
}

func connectNATS(t *testing.T, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func assertStreamMsg(ctx context.Context, t *testing.T, stream jetstream.Stream, seq uint64, subject, data string) {
	t.Helper()
	msg, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatalf("get message %d: %v", seq, err)
	}
	if msg.Subject != subject || string(msg.Data) != data {
		t.Fatalf("message %d = %s %q, want %s %q", seq, msg.Subject, msg.Data, subject, data)
	}
}

func TestRedisKeepsDataAcrossRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// This client lives through the restart, as a service's would.
	long := redisClient(t, srv.URL, 3)
	if err := long.Set(ctx, "testenv:key", "stored before restart", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	assertRedisString(ctx, t, long, "testenv:key", "stored before restart")

	incrBy := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)
	got, err := incrBy.Eval(ctx, long, []string{"testenv:counter"}, 5).Int64()
	if err != nil {
		t.Fatalf("EVAL: %v", err)
	}
	if got != 5 {
		t.Fatalf("EVAL INCRBY = %d, want 5", got)
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}

	// A fresh client without retries proves Restart waited until the server had
	// reloaded its AOF and was ready again.
	fresh := redisClient(t, srv.URL, -1)
	assertRedisString(ctx, t, fresh, "testenv:key", "stored before restart")
	assertRedisString(ctx, t, fresh, "testenv:counter", "5")

	got, err = incrBy.Eval(ctx, long, []string{"testenv:counter"}, 2).Int64()
	if err != nil {
		t.Fatalf("EVAL after restart on the client from before: %v", err)
	}
	if got != 7 {
		t.Fatalf("EVAL INCRBY after restart = %d, want 7", got)
	}
}

func redisClient(t *testing.T, url string, maxRetries int) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	opts.MaxRetries = maxRetries
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func assertRedisString(ctx context.Context, t *testing.T, rdb *redis.Client, key, want string) {
	t.Helper()
	got, err := rdb.Get(ctx, key).Result()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	if got != want {
		t.Fatalf("GET %s = %q, want %q", key, got, want)
	}
}

func TestADurableNATSKilledWithSIGKILLKeepsEveryMessageItAcknowledged(t *testing.T) {
	t.Parallel()
	srv := testenv.StartDurableNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(connectNATS(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KILLED", Subjects: []string{"killed.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	const acknowledged = 200
	for i := range acknowledged {
		if _, err := js.Publish(ctx, "killed.msg", []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := srv.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start after kill: %v", err)
	}
	fresh, err := jetstream.New(connectNATS(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := fresh.Stream(ctx, "KILLED")
	if err != nil {
		t.Fatalf("stream after kill: %v", err)
	}
	if got := stream.CachedInfo().State.Msgs; got != acknowledged {
		t.Fatalf("the stream holds %d messages after SIGKILL, want the %d acknowledged", got, acknowledged)
	}
}

func TestADurableRedisKilledWithSIGKILLKeepsEveryWriteItAnswered(t *testing.T) {
	t.Parallel()
	srv := testenv.StartDurableRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rdb := redisClient(t, srv.URL, -1)
	const answered = 200
	for range answered {
		if err := rdb.Incr(ctx, "testenv:killed").Err(); err != nil {
			t.Fatalf("INCR: %v", err)
		}
	}
	if err := srv.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("the killed server still answers")
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start after kill: %v", err)
	}
	assertRedisString(ctx, t, redisClient(t, srv.URL, -1), "testenv:killed", strconv.Itoa(answered))
}
