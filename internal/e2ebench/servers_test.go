package e2ebench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/producers"
	"github.com/payinfra/refunds/state/redisstore"
)

// aofMode is how Redis persists what it acknowledges.
type aofMode string

const (
	aofAlways aofMode = "always" // appendonly yes, appendfsync always: refundd's production setting
	aofOff    aofMode = "off"    // appendonly no: refundd needs REFUNDS_ALLOW_VOLATILE_REDIS=true
)

// env is one scenario's servers, empty, with the intake's streams and durable consumer
// created as refundd creates them (consumers.EnsureStreams, default settings).
type env struct {
	natsURL, redisURL string
	// natsPID is the NATS server's process on this host, 0 when not known (servers
	// given by address): its CPU time is then counted in the rest of the machine.
	natsPID int
	// redisPID is the Redis server's, 0 when not known.
	redisPID int
	// natsProfileURL serves the NATS server's pprof, "" when not known.
	natsProfileURL string
	nc             *nats.Conn
	js             jetstream.JetStream
	cons           jetstream.Consumer
	rdb            *redis.Client
	store          *redisstore.Store
}

// newEnv starts fresh NATS and Redis containers, or, when BENCH_NATS_URL and
// BENCH_REDIS_URL are set, empties those servers (deletes the engine's streams,
// FLUSHALL) and sets Redis's persistence to aof with CONFIG SET.
func newEnv(s *scope, aof aofMode) *env {
	s.Helper()
	e := &env{natsURL: os.Getenv("BENCH_NATS_URL"), redisURL: os.Getenv("BENCH_REDIS_URL")}
	given := e.natsURL != "" || e.redisURL != ""
	if given && (e.natsURL == "" || e.redisURL == "") {
		s.Fatal("set both BENCH_NATS_URL and BENCH_REDIS_URL, or neither")
	}
	if !given {
		// NATS with the image's defaults (JetStream syncs to disk every 2 minutes, not
		// per message) in every scenario, so only Redis's setting differs (set below).
		// Both on the host's network with their data in a host directory, as in
		// production: no Docker port proxy or overlay filesystem in the figures.
		n := testenv.StartNATSForBench(s)
		e.natsURL, e.natsPID, e.natsProfileURL = n.URL, n.HostPID, n.ProfileURL
		r := testenv.StartRedisForBench(s)
		e.redisURL, e.redisPID = r.URL, r.HostPID
	}
	// The minute starts once the servers run: on a new machine the first start builds
	// the test images, which takes about as long.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if e.nc, err = nats.Connect(e.natsURL); err != nil {
		s.Fatalf("connect to %s: %v", e.natsURL, err)
	}
	s.Cleanup(e.nc.Close)
	if e.js, err = jetstream.New(e.nc); err != nil {
		s.Fatal(err)
	}
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		s.Fatal(err)
	}
	// The loops speak to Redis as refundd does, so the protocol is no part of the
	// difference between them.
	opts.Protocol = connect.DefaultRedisProtocol
	e.rdb = redis.NewClient(opts)
	s.Cleanup(func() { _ = e.rdb.Close() })
	if given {
		for _, name := range []string{consumers.InboundStream, consumers.DeadLetterStream, producers.OutboundStream} {
			if err := e.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				s.Fatalf("delete stream %s: %v", name, err)
			}
		}
		if err := e.rdb.FlushAll(ctx).Err(); err != nil {
			s.Fatal(err)
		}
	}
	config := map[aofMode][]string{
		aofAlways: {"appendonly", "yes", "appendfsync", "always", "auto-aof-rewrite-percentage", strconv.Itoa(*benchAOFRewritePercentage)},
		aofOff:    {"appendonly", "no"},
	}[aof]
	for i := 0; i < len(config); i += 2 {
		if err := e.rdb.ConfigSet(ctx, config[i], config[i+1]).Err(); err != nil {
			s.Fatalf("redis CONFIG SET %s %s: %v", config[i], config[i+1], err)
		}
	}
	if e.cons, err = consumers.EnsureStreams(ctx, e.js, consumers.StreamSettings{}); err != nil {
		s.Fatal(err)
	}
	e.store = redisstore.New(e.rdb)
	return e
}

// publish stores every message in the inbound stream with asynchronous publishes (at
// most 4,000 outstanding) and returns how many the stream kept: same-id duplicates
// inside the duplicate window are dropped by JetStream, as in production.
func (e *env) publish(s *scope, msgs []*nats.Msg) int {
	s.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := e.js.PublishMsgAsync(copyMsg(m), jetstream.WithStallWait(time.Minute))
		if err != nil {
			s.Fatalf("publish %s: %v", m.Subject, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-ctx.Done():
		s.Fatalf("%d publishes still unacknowledged", e.js.PublishAsyncPending())
	}
	stored := 0
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if !ack.Duplicate {
				stored++
			}
		case err := <-f.Err():
			s.Fatalf("publish %s: %v", f.Msg().Subject, err)
		}
	}
	info, err := e.cons.Info(ctx)
	if err != nil {
		s.Fatal(err)
	}
	if info.NumPending != uint64(stored) {
		s.Fatalf("the consumer has %d events pending after %d were stored", info.NumPending, stored)
	}
	return stored
}

// copyMsg is a fresh message for each publish: the client sets fields on the one it
// is given, and every scenario publishes the same workload.
func copyMsg(m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(m.Subject)
	c.Data = m.Data
	c.Header.Set(nats.MsgIdHdr, m.Header.Get(nats.MsgIdHdr))
	return c
}

// settled says the durable consumer has nothing left to deliver or waiting for its
// ack (an event nak'd with a delay still counts as waiting), and, with the outbox
// checked, nothing waits in refundd's outbox either.
func (e *env) settled(ctx context.Context, outbox bool) (bool, error) {
	info, err := e.cons.Info(ctx)
	if err != nil {
		return false, err
	}
	if info.NumPending != 0 || info.NumAckPending != 0 {
		return false, nil
	}
	if !outbox {
		return true, nil
	}
	n, err := e.store.OutboxLength(ctx)
	return err == nil && n == 0, err
}

// waitSettled polls settled every 10ms and returns when it first holds, failing after
// timeout. The returned time is when it was seen: at most one poll late.
func (e *env) waitSettled(s *scope, outbox bool, timeout time.Duration, progress func() string) time.Time {
	s.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ok, err := e.settled(ctx, outbox)
		if ok {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			s.Fatalf("not settled after %s (%v; last error %v)", timeout, progress(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// usedMemory is Redis's INFO memory used_memory, in bytes.
func (e *env) usedMemory(s *scope) int64 {
	s.Helper()
	info, err := e.rdb.InfoMap(context.Background(), "memory").Result()
	if err != nil {
		s.Fatal(err)
	}
	n, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		s.Fatalf("used_memory: %v", err)
	}
	return n
}

// memoryParts is where Redis's memory goes, in bytes, by MEMORY STATS.
type memoryParts struct {
	total    int64 // total.allocated: used_memory
	dataset  int64 // dataset.bytes: the keys and values, Redis's own overhead taken out
	keyspace int64 // the main and expires hash tables of db 0
	clients  int64 // clients.normal: connection buffers
}

func (m memoryParts) minus(o memoryParts) memoryParts {
	return memoryParts{m.total - o.total, m.dataset - o.dataset, m.keyspace - o.keyspace, m.clients - o.clients}
}

// memoryParts reads MEMORY STATS, in either protocol's shape (a map in RESP3, a flat
// list of names and values in RESP2).
func (e *env) memoryParts(s *scope) memoryParts {
	s.Helper()
	reply, err := e.rdb.Do(context.Background(), "MEMORY", "STATS").Result()
	if err != nil {
		s.Fatalf("memory stats: %v", err)
	}
	stats := asMap(reply)
	n := func(m map[string]any, name string) int64 {
		v, _ := m[name].(int64)
		return v
	}
	db := asMap(stats["db.0"])
	return memoryParts{
		total:    n(stats, "total.allocated"),
		dataset:  n(stats, "dataset.bytes"),
		keyspace: n(db, "overhead.hashtable.main") + n(db, "overhead.hashtable.expires"),
		clients:  n(stats, "clients.normal"),
	}
}

func asMap(reply any) map[string]any {
	out := map[string]any{}
	switch r := reply.(type) {
	case map[any]any:
		for k, v := range r {
			out[fmt.Sprint(k)] = v
		}
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			out[fmt.Sprint(r[i])] = r[i+1]
		}
	}
	return out
}

// memoryByKind sums MEMORY USAGE over every key, grouped by the kind of record its name
// says (rf:{pNN}:<kind>:...; see state/redisstore/keys.go), and counts the keys.
func (e *env) memoryByKind(s *scope) map[string][2]int64 {
	s.Helper()
	ctx := context.Background()
	kinds := map[string][2]int64{}
	iter := e.rdb.Scan(ctx, 0, "*", 1000).Iterator()
	var keys []string
	flush := func() {
		pipe := e.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			s.Fatalf("memory usage: %v", err)
		}
		for i, k := range keys {
			kind := "other"
			if parts := strings.SplitN(k, ":", 4); len(parts) >= 3 && parts[0] == "rf" {
				kind = parts[2]
			}
			v := kinds[kind]
			v[0] += cmds[i].Val()
			v[1]++
			kinds[kind] = v
		}
		keys = keys[:0]
	}
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			flush()
		}
	}
	if err := iter.Err(); err != nil {
		s.Fatal(err)
	}
	flush()
	return kinds
}
