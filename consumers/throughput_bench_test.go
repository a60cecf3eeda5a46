package consumers_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/rawloop"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
)

// The throughput benchmarks consume the same workload: throughputEventCount inbound
// events over throughputAccounts accounts. Each account is first opened
// (billing.account.opened), then receives top-ups (one event in three) and
// consumptions (two in three), all valid and with unique ids, interleaved across
// accounts in a fixed pseudo-random order.
//
// Every account.opened is published before any other event, so the intake (which
// consumes in stream order, one batch after another) has applied an account's opening
// before it decides any other event of that account: nothing waits (a waiting event
// is retried 200ms later, which would dominate the figure). The benchmarks check this
// by counting deliveries.
const (
	throughputEventCount = 100_000
	throughputAccounts   = 1_000
	// throughputTimeout bounds the consumption of one round; the benchmark fails if
	// not every event was processed and acknowledged by then.
	throughputTimeout = 60 * time.Second
)

// BenchmarkIntakeThroughput measures how many events per second the intake (NewIntake
// with the default Config) decides, saves and acknowledges, against NATS and Redis
// containers. The events are published before the clock starts; the clock stops when
// every event was applied and the consumer has nothing pending or awaiting its ack.
// Compare with BenchmarkRawLoopThroughput, which runs the same workload.
//
// Run: go test -run '^$' -bench IntakeThroughput -benchtime 1x ./consumers/
func BenchmarkIntakeThroughput(b *testing.B) {
	env := startThroughputEnv(b)
	store := testenv.PreparedStore(b, env.rdb)
	var run throughputRun
	round := 0
	for b.Loop() {
		round++
		b.StopTimer()
		msgs := throughputMessages(b, round)
		env.publish(b, msgs)
		counting := &countingStore{Store: store}
		in := consumers.NewIntake(env.js, env.cons, counting, zerolog.Nop(), consumers.Config{})
		redisBefore := env.startRedisUsage(b)
		b.StartTimer()
		elapsed := env.consume(b, len(msgs), counting.applied.Load, func(ctx context.Context) error {
			return in.Run(ctx)
		})
		b.StopTimer()
		env.logRedisUsage(b, round, len(msgs), redisBefore)
		b.StartTimer()
		if got := counting.applied.Load(); got != int64(len(msgs)) {
			b.Fatalf("round %d: %d events applied, want %d", round, got, len(msgs))
		}
		run.add(len(msgs), int(counting.delivered.Load())-len(msgs), elapsed)
		batches := time.Duration(counting.batches.Load())
		b.Logf("round %d: %v for %d events in %d batches; per batch: load %v, commit %v (the rest: fetch wait, decisions, acks)",
			round, elapsed.Round(time.Millisecond), len(msgs), batches, (time.Duration(counting.loading.Load()) / batches).Round(time.Microsecond),
			(time.Duration(counting.committing.Load()) / batches).Round(time.Microsecond))
	}
	run.report(b)
}

// BenchmarkRawLoopThroughput is the baseline for BenchmarkIntakeThroughput: the same
// workload on the same kind of stream and consumer (consumers.EnsureStreams), consumed
// by the least a loop can do: batches of up to 500 taken from the same pull iterator
// (Messages, Next, a 2ms linger), one pipeline per batch with one EVALSHA per event of
// a trivial script (SET the idempotency key with EX, HSET a small value on the account,
// XADD the event to an outbox stream; all three keys share the hash tag of the
// account's partition), then a plain Ack per message. It decodes nothing: the account
// is the subject's last token and the id is the Nats-Msg-Id header.
//
// Run: go test -run '^$' -bench RawLoopThroughput -benchtime 1x ./consumers/
func BenchmarkRawLoopThroughput(b *testing.B) {
	env := startThroughputEnv(b)
	var run throughputRun
	round := 0
	for b.Loop() {
		round++
		b.StopTimer()
		msgs := throughputMessages(b, round)
		env.publish(b, msgs)
		var processed, delivered atomic.Int64
		redisBefore := env.startRedisUsage(b)
		b.StartTimer()
		elapsed := env.consume(b, len(msgs), processed.Load, func(ctx context.Context) error {
			return rawloop.Run(ctx, env.cons, env.rdb, &processed, &delivered)
		})
		b.StopTimer()
		env.logRedisUsage(b, round, len(msgs), redisBefore)
		b.StartTimer()
		if got := processed.Load(); got != int64(len(msgs)) {
			b.Fatalf("round %d: %d events processed, want %d", round, got, len(msgs))
		}
		run.add(len(msgs), int(delivered.Load())-len(msgs), elapsed)
	}
	run.report(b)
}

// countingStore counts what the intake loads and saves.
type countingStore struct {
	consumers.Store
	delivered atomic.Int64 // events loaded, i.e. delivered and decoded
	applied   atomic.Int64 // steps saved with outcome Applied
	// batches, loading and committing say where a batch's time goes (summed over the
	// workers, so they can add up to more than the elapsed time).
	batches, loading, committing atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, accountIDs []string, refs []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error) {
	c.delivered.Add(int64(len(refs)))
	c.batches.Add(1)
	defer func(start time.Time) { c.loading.Add(int64(time.Since(start))) }(time.Now())
	return c.Store.Load(ctx, accountIDs, refs)
}

func (c *countingStore) Commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error) {
	defer func(start time.Time) { c.committing.Add(int64(time.Since(start))) }(time.Now())
	outcomes, err := c.Store.Commit(ctx, steps)
	n := int64(0)
	for _, o := range outcomes {
		if o.Outcome == state.Applied {
			n++
		}
	}
	c.applied.Add(n)
	return outcomes, err
}

// throughputRun sums the rounds of one benchmark.
type throughputRun struct {
	events, redelivered int
	elapsed             time.Duration
}

func (r *throughputRun) add(events, redelivered int, elapsed time.Duration) {
	r.events += events
	r.redelivered += redelivered
	r.elapsed += elapsed
}

func (r *throughputRun) report(b *testing.B) {
	b.Helper()
	if r.redelivered != 0 {
		// Waits or naks: the figure includes their retry delays.
		b.Logf("%d deliveries beyond the %d events", r.redelivered, r.events)
	}
	b.ReportMetric(float64(r.events)/r.elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(r.redelivered), "redelivered")
}

// throughputEnv is fresh NATS and Redis containers with the intake's streams and
// durable consumer (default settings), for one benchmark. The servers run on the
// host's network with their data on the host (testenv.StartNATSForBench), so neither
// Docker's port proxy nor the container's overlay filesystem is part of the figure.
type throughputEnv struct {
	js   jetstream.JetStream
	cons jetstream.Consumer
	rdb  *redis.Client
}

func startThroughputEnv(b *testing.B) *throughputEnv {
	b.Helper()
	js, rdb := testenv.StartNATSForBench(b).JetStream(b), testenv.StartRedisForBench(b).Client(b)
	cons, err := consumers.EnsureStreams(context.Background(), js, consumers.StreamSettings{})
	if err != nil {
		b.Fatal(err)
	}
	return &throughputEnv{js: js, cons: cons, rdb: rdb}
}

// throughputMsg is one encoded inbound event.
type throughputMsg struct {
	subject, id string
	body        []byte
}

// throughputMessages builds round's workload: every account's opening first, then
// the other events shuffled (each account's own events keep no particular order;
// top-ups and consumptions are valid in any order once the account is open).
func throughputMessages(b *testing.B, round int) []throughputMsg {
	b.Helper()
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	build := func(typ events.Type, account, id string, p events.Payload) throughputMsg {
		ev, err := events.New(typ, account, "/billing", id, at, p)
		if err != nil {
			b.Fatal(err)
		}
		body, err := ev.Encode()
		if err != nil {
			b.Fatal(err)
		}
		return throughputMsg{subject: ev.NATSSubject(), id: ev.ID, body: body}
	}
	accounts := make([]string, throughputAccounts)
	msgs := make([]throughputMsg, 0, throughputEventCount)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("acct-r%d-%04d", round, i)
		msgs = append(msgs, build(events.AccountOpened, accounts[i], accounts[i]+"-opened",
			&events.AccountOpenedData{HolderType: "individual", HolderName: "Zhang San", Verified: true}))
	}
	for k := 0; len(msgs) < throughputEventCount; k++ {
		account := accounts[k%throughputAccounts]
		if k%3 == 0 {
			id := fmt.Sprintf("%s-t%d", account, k)
			msgs = append(msgs, build(events.TopupReceived, account, id, &events.TopupReceivedData{
				TopupID: id, Amount: events.MustAmount("100.00"), Currency: "CNY",
				Channel: events.ChannelAlipay, PayerType: "individual", PayerName: "Zhang San",
			}))
		} else {
			id := fmt.Sprintf("%s-c%d", account, k)
			msgs = append(msgs, build(events.ConsumptionRecorded, account, id, &events.ConsumptionRecordedData{
				ConsumptionID: id, Amount: events.MustAmount("12.34"),
			}))
		}
	}
	rest := msgs[throughputAccounts:]
	rng := rand.New(rand.NewPCG(uint64(round), 42))
	rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	return msgs
}

// publish stores msgs in the inbound stream, in order, with asynchronous publishes,
// and checks that each was stored once and that the consumer now has exactly them
// pending.
func (env *throughputEnv) publish(b *testing.B, msgs []throughputMsg) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), throughputTimeout)
	defer cancel()
	before, err := env.cons.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		msg := nats.NewMsg(m.subject)
		msg.Data = m.body
		msg.Header.Set(nats.MsgIdHdr, m.id)
		// At most 4,000 publishes are outstanding (the default); wait as long as
		// the server needs to store them rather than fail after the default 200ms.
		f, err := env.js.PublishMsgAsync(msg, jetstream.WithStallWait(throughputTimeout))
		if err != nil {
			b.Fatalf("publish %s: %v", m.id, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-env.js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatalf("%d publishes still unacknowledged after %s", env.js.PublishAsyncPending(), throughputTimeout)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				b.Fatalf("event %s was stored before: ids must be unique", msgs[i].id)
			}
		case err := <-f.Err():
			b.Fatalf("publish %s: %v", msgs[i].id, err)
		}
	}
	after, err := env.cons.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if got := after.NumPending - before.NumPending; got != uint64(len(msgs)) {
		b.Fatalf("consumer has %d more events pending after publishing %d", got, len(msgs))
	}
}

// consume runs run (an intake or the raw loop) until count reports want events done
// and the consumer has nothing pending or awaiting its ack, then stops it, and returns
// the time from its start until then. It fails the benchmark after throughputTimeout.
// The consumer runs under the pprof label phase=consume, so that a CPU profile can be
// narrowed to it with -tagfocus phase=consume.
func (env *throughputEnv) consume(b *testing.B, want int, count func() int64, run func(context.Context) error) time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	result := make(chan error, 1)
	start, cpuAtStart := time.Now(), readCPU(b)
	go pprof.Do(ctx, pprof.Labels("phase", "consume"), func(ctx context.Context) {
		result <- run(ctx)
	})
	deadline := time.NewTimer(throughputTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case err := <-result:
			b.Fatalf("consumer stopped early after %d of %d events: %v", count(), want, err)
		case <-deadline.C:
			b.Fatalf("only %d of %d events processed after %s", count(), want, throughputTimeout)
		case <-tick.C:
			n := count()
			if n > int64(want) {
				b.Fatalf("%d events processed, more than the %d published", n, want)
			}
			if n < int64(want) {
				continue
			}
			info, err := env.cons.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			done = info.NumPending == 0 && info.NumAckPending == 0
		}
	}
	elapsed, cpu := time.Since(start), readCPU(b)
	perEvent := func(d time.Duration) time.Duration { return (d / time.Duration(want)).Round(100 * time.Nanosecond) }
	b.Logf("this process used %v of CPU per event while it consumed (%.0f%% of a core), %v of it collecting garbage",
		perEvent(cpu.process-cpuAtStart.process), 100*(cpu.process-cpuAtStart.process).Seconds()/elapsed.Seconds(), perEvent(cpu.gc-cpuAtStart.gc))
	cancel()
	select {
	case err := <-result:
		if err != nil {
			b.Fatalf("consumer stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		b.Fatal("consumer did not stop within 10s of cancel")
	}
	return elapsed
}

// cpuUse is the CPU time this process has used so far: in all, user and system (the
// consumer's share of the machine, which on this bench's busy machine moves less from
// run to run than events per second do), and the Go runtime's estimate of its garbage
// collector's part.
type cpuUse struct{ process, gc time.Duration }

func readCPU(b *testing.B) cpuUse {
	b.Helper()
	process, err := testenv.SelfCPU()
	if err != nil {
		b.Fatal(err)
	}
	gc := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(gc)
	return cpuUse{process: process, gc: time.Duration(gc[0].Value.Float64() * float64(time.Second))}
}

// startRedisUsage is redisUsage before a round, which also resets Redis's command
// statistics, so that logRedisUsage reads the round's own.
func (env *throughputEnv) startRedisUsage(b *testing.B) redisUsage {
	b.Helper()
	if err := env.rdb.ConfigResetStat(context.Background()).Err(); err != nil {
		b.Fatalf("CONFIG RESETSTAT: %v", err)
	}
	return env.redisUsage(b)
}

// redisUsage is what Redis has spent so far: CPU on its main thread and in its
// children (the forks that rewrite the append-only file), the rewrites, and the bytes
// written to the append-only file since its last rewrite.
type redisUsage struct {
	mainThread, children time.Duration
	rewrites, aofBytes   int64
}

func (env *throughputEnv) redisUsage(b *testing.B) redisUsage {
	b.Helper()
	ctx := context.Background()
	cpu, err := testenv.ReadRedisCPU(ctx, env.rdb)
	if err != nil {
		b.Fatal(err)
	}
	u := redisUsage{mainThread: cpu.MainThread, children: cpu.Forks}
	persistence, err := env.rdb.InfoMap(ctx, "persistence").Result()
	if err != nil {
		b.Fatalf("INFO persistence: %v", err)
	}
	u.rewrites, _ = strconv.ParseInt(persistence["Persistence"]["aof_rewrites"], 10, 64)
	u.aofBytes, _ = strconv.ParseInt(persistence["Persistence"]["aof_current_size"], 10, 64)
	return u
}

// logRedisUsage logs what Redis spent on a round of events since before.
func (env *throughputEnv) logRedisUsage(b *testing.B, round, events int, before redisUsage) {
	b.Helper()
	after := env.redisUsage(b)
	perEvent := func(d time.Duration) time.Duration { return (d / time.Duration(events)).Round(100 * time.Nanosecond) }
	aof := "append-only file rewritten since"
	if after.rewrites == before.rewrites {
		aof = fmt.Sprintf("%d B of append-only file per event", (after.aofBytes-before.aofBytes)/int64(events))
	}
	b.Logf("round %d: Redis used %v of main-thread CPU and %v in rewrite forks per event (%d rewrites); %s",
		round, perEvent(after.mainThread-before.mainThread), perEvent(after.children-before.children), after.rewrites-before.rewrites, aof)
	b.Logf("round %d: Redis's time in commands per event: %s", round, env.commandTimes(b, events))
}

// commandTimes is the time Redis spent in each command since startRedisUsage reset its
// statistics, per event, most first, leaving out those under 0.1µs (see
// testenv.CommandTime for what a script's time holds).
func (env *throughputEnv) commandTimes(b *testing.B, events int) string {
	b.Helper()
	all, err := testenv.CommandTimes(context.Background(), env.rdb)
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, c := range all {
		perEvent := float64(c.Usec) / float64(events)
		if perEvent < 0.1 {
			break
		}
		out = append(out, fmt.Sprintf("%s %.1fµs (%.2f calls)", c.Command, perEvent, float64(c.Calls)/float64(events)))
	}
	return strings.Join(out, ", ")
}
