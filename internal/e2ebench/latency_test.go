package e2ebench

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/state"
)

// latencyResult is publish → first outbound event caused by that inbound event.
type latencyResult struct {
	aof           aofMode
	rate          float64 // events published per second, paced
	published     int     // distinct inbound events published
	matched       int     // of which an outbound event was seen
	p50, p99, max time.Duration
	ready         time.Duration // refundd's start until /readyz answered 200
	// p99ByWindow is the p99 of the events first published in each latencyWindow of
	// the run, in order, so a stall shows where it happened; -1 for a window that
	// had none.
	p99ByWindow []time.Duration
	// rewrites are the spans, from the start of publishing, in which Redis was
	// rewriting its append-only file: with fsync always, its fsyncs then queue behind
	// the rewrite's writes.
	rewrites []span
	// rewritesDone is how many rewrites Redis finished in the run (INFO persistence
	// aof_rewrites, on a fresh server): a short one can fall between two polls of
	// rewrites. latestFork is how long the last rewrite's fork held Redis's main thread.
	rewritesDone int
	latestFork   time.Duration
	// slowestFsyncByWindow is, for each window of p99ByWindow, the slowest fsync Redis
	// made of its append-only file (LATENCY HISTORY aof-fsync-always): with fsync
	// always, Redis answers no write before its fsync returns. 0 where none took
	// fsyncLatencyThreshold or more; nil with the file off.
	slowestFsyncByWindow []time.Duration
	// p99OfRuns is, for a result combined by medianLatency, the p99 of each run in the
	// order they ran.
	p99OfRuns []time.Duration
	// untilTaken and afterTaken split each latency at the time the earliest outbound
	// event carries: the clock refundd's intake read when a worker took up the batch
	// holding the inbound event (before loading its accounts). untilTaken is publish →
	// taken up: JetStream's delivery, collecting and decoding the batch, and waiting
	// for a worker. afterTaken is taken up → received: load, decide, commit (and its
	// fsync), acknowledge, the outbox relay, and NATS's delivery of the outbound event.
	untilTaken, afterTaken stages
	// cpu is where the machine's CPU went per publication, from the first publish until
	// everything was settled; bench is this process's part of cpu.rest: its publisher,
	// its subscriber and its polls, which a paced run adds to what the peak's runs do.
	cpu   cpuPerEvent
	bench time.Duration
	// busyByWindow is how busy the machine was in each latencyWindow from the first
	// publish (1: every core all the time), as p99ByWindow's windows: whether a window's
	// p99 rose with the work it held.
	busyByWindow []float64
}

// stages are the p50 and p99 of one part of the latency.
type stages struct{ p50, p99 time.Duration }

// medianLatency combines runs of one mode: the run with the median p99 (the lower
// middle of an even count), whose windows and counts it keeps, with the median p50
// and max of all the runs, and every run's p99.
func medianLatency(runs []latencyResult) latencyResult {
	byP99 := slices.Clone(runs)
	slices.SortFunc(byP99, func(a, b latencyResult) int { return cmp.Compare(a.p99, b.p99) })
	res := byP99[(len(byP99)-1)/2]
	var p50s, maxes []time.Duration
	res.p99OfRuns = nil
	for _, r := range runs {
		p50s, maxes = append(p50s, r.p50), append(maxes, r.max)
		res.p99OfRuns = append(res.p99OfRuns, r.p99)
	}
	res.p50 = medianDuration(p50s)
	res.max = medianDuration(maxes)
	return res
}

// medianDuration is the middle of l (the lower middle of an even count).
func medianDuration(l []time.Duration) time.Duration {
	l = slices.Clone(l)
	slices.Sort(l)
	return l[(len(l)-1)/2]
}

// latencyScenario is the scenario key of the latency phase in each mode.
var latencyScenario = map[aofMode]string{aofAlways: "latency", aofOff: "latency-aof-off"}

// fsyncLatencyThreshold is Redis's latency-monitor-threshold in the latency phase: the
// shortest fsync it records.
const fsyncLatencyThreshold = time.Millisecond

// span is a stretch of a run, from its start.
type span struct{ from, to time.Duration }

// latencyWindow is the stretch of publishing each p99ByWindow entry covers.
const latencyWindow = 2 * time.Second

// watchRewrites polls Redis every 50 ms until stop is closed and returns the spans in
// which an append-only file rewrite was in progress, from begin.
func watchRewrites(e *env, begin time.Time, stop <-chan struct{}) <-chan []span {
	out := make(chan []span, 1)
	go func() {
		var spans []span
		rewriting := false
		for {
			select {
			case <-stop:
				if rewriting {
					spans[len(spans)-1].to = time.Since(begin)
				}
				out <- spans
				return
			case <-time.After(50 * time.Millisecond):
			}
			info, err := e.rdb.InfoMap(context.Background(), "persistence").Result()
			if err != nil {
				continue
			}
			now := info["Persistence"]["aof_rewrite_in_progress"] == "1"
			switch {
			case now && !rewriting:
				spans = append(spans, span{from: time.Since(begin)})
			case !now && rewriting:
				spans[len(spans)-1].to = time.Since(begin)
			}
			rewriting = now
		}
	}()
	return out
}

// watchBusy reads how busy the machine was in each latencyWindow from begin until
// stop is closed, and returns the share of each window (1: every core all the time),
// the last one over the part of it before stop; what it read so far, should
// /proc/stat become unreadable.
func watchBusy(begin time.Time, stop <-chan struct{}) <-chan []float64 {
	out := make(chan []float64, 1)
	go func() {
		var shares []float64
		defer func() { out <- shares }()
		last, cores, err := readMachineBusy()
		if err != nil {
			return
		}
		from := begin
		for k := 1; ; k++ {
			to := begin.Add(time.Duration(k) * latencyWindow)
			stopped := false
			select {
			case <-stop:
				stopped, to = true, time.Now()
			case <-time.After(time.Until(to)):
			}
			busy, _, err := readMachineBusy()
			if err != nil {
				return
			}
			if span := to.Sub(from); span > 0 {
				shares = append(shares, (busy-last).Seconds()/(span.Seconds()*float64(max(1, cores))))
			}
			if stopped {
				return
			}
			last, from = busy, to
		}
	}()
	return out
}

// outboundPerCause is how many of a cause's outbound events (OutboundID's n) are
// looked for; the earliest to arrive counts.
const outboundPerCause = 4

// measureLatency starts fresh servers (Redis with appendfsync always) and one refundd,
// subscribes to refunds.>, and publishes w's messages paced at rate per second. An
// outbound event's id is state.OutboundID(account, cause id, n), so each maps back to
// the inbound event that caused it; the latency of an inbound event is from just
// before its first publication to the arrival of the earliest of its outbound events.
// Events that cause none (an account opened, a duplicate) are not counted.
func measureLatency(s *scope, bin string, p prepared, rate float64, aof aofMode) latencyResult {
	s.Helper()
	e := newEnv(s, aof)
	var extra []string
	if aof == aofOff {
		extra = append(extra, "REFUNDS_ALLOW_VOLATILE_REDIS=true")
	}
	if aof == aofAlways {
		watchFsyncs(s, e)
	}
	started := time.Now()
	ds := startDaemons(s, bin, e, profileRun(latencyScenario[aof]), 1, extra...)
	ds[0].waitReady(s, time.Minute)
	res := latencyResult{aof: aof, rate: rate, ready: time.Since(started)}

	var mu sync.Mutex
	arrived := map[string]time.Time{}
	bodies := map[string][]byte{} // of each outbound id's first arrival, read after the run
	sub, err := e.nc.Subscribe("refunds.>", func(m *nats.Msg) {
		at := time.Now()
		id := m.Header.Get(nats.MsgIdHdr)
		if id == "" {
			var env struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(m.Data, &env)
			id = env.ID
		}
		mu.Lock()
		if _, ok := arrived[id]; !ok {
			arrived[id], bodies[id] = at, m.Data
		}
		mu.Unlock()
	})
	if err != nil {
		s.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	s.Cleanup(func() { _ = sub.Unsubscribe() })

	sent := map[string]time.Time{} // inbound event id → first publish
	cause := map[string]string{}   // outbound id → inbound event id
	for i := range p.msgs {
		id, acct := p.ids[i], p.accounts[i]
		if _, ok := sent[id]; ok {
			continue
		}
		sent[id] = time.Time{}
		for n := range outboundPerCause {
			cause[state.OutboundID(acct, id, n)] = id
		}
	}
	interval := time.Duration(float64(time.Second) / rate)
	fromCPU, fromBench := e.sampleCPU(s, daemonsCPU(s, ds)), selfCPU(s)
	begin := time.Now()
	stopWatching := make(chan struct{})
	rewrites := watchRewrites(e, begin, stopWatching)
	busy := watchBusy(begin, stopWatching)
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopWatching) }) }
	defer stop() // when the run fails before it settles
	for i, m := range p.msgs {
		if d := time.Until(begin.Add(time.Duration(i) * interval)); d > time.Millisecond {
			time.Sleep(d)
		}
		id := p.ids[i]
		if sent[id].IsZero() {
			sent[id] = time.Now()
		}
		if _, err := e.js.PublishMsgAsync(copyMsg(m), jetstream.WithStallWait(time.Minute)); err != nil {
			s.Fatalf("publish: %v", err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		s.Fatal("paced publishes not acknowledged within a minute")
	}
	e.waitSettled(s, true, 5*time.Minute, func() string { return "latency phase" })
	toCPU, toBench := e.sampleCPU(s, daemonsCPU(s, ds)), selfCPU(s)
	stop()
	res.rewrites, res.busyByWindow = <-rewrites, <-busy
	res.cpu = perEvent(fromCPU, toCPU, len(p.msgs))
	res.bench = (toBench.cpu - fromBench.cpu) / time.Duration(max(1, len(p.msgs)))
	if info, err := e.rdb.InfoMap(context.Background(), "persistence", "stats").Result(); err == nil {
		res.rewritesDone, _ = strconv.Atoi(info["Persistence"]["aof_rewrites"])
		fork, _ := strconv.Atoi(info["Stats"]["latest_fork_usec"])
		res.latestFork = time.Duration(fork) * time.Microsecond
	}
	if aof == aofAlways {
		res.slowestFsyncByWindow = slowestFsyncs(s, e, begin)
	}
	// The relay has published everything; let the subscription drain.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.nc.FlushWithContext(ctx)
	time.Sleep(500 * time.Millisecond)

	first := map[string]time.Time{}
	firstOut := map[string]string{} // inbound event id → its earliest outbound event's id
	mu.Lock()
	for out, at := range arrived {
		id, ok := cause[out]
		if !ok {
			continue
		}
		if t, seen := first[id]; !seen || at.Before(t) {
			first[id], firstOut[id] = at, out
		}
	}
	var untilTaken, afterTaken []time.Duration
	for id, out := range firstOut {
		var env struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(bodies[out], &env); err != nil || env.Time.IsZero() {
			s.Fatalf("outbound event %s has no time: %v", out, err)
		}
		untilTaken = append(untilTaken, env.Time.Sub(sent[id]))
		afterTaken = append(afterTaken, first[id].Sub(env.Time))
	}
	mu.Unlock()
	res.untilTaken = stages{p50: percentile(untilTaken, 50), p99: percentile(untilTaken, 99)}
	res.afterTaken = stages{p50: percentile(afterTaken, 50), p99: percentile(afterTaken, 99)}
	var lat []time.Duration
	byType := map[string][]time.Duration{}
	var byWindow [][]time.Duration
	for id, at := range first {
		lat = append(lat, at.Sub(sent[id]))
		byType[p.types[id]] = append(byType[p.types[id]], at.Sub(sent[id]))
		w := int(sent[id].Sub(begin) / latencyWindow)
		for len(byWindow) <= w {
			byWindow = append(byWindow, nil)
		}
		byWindow[w] = append(byWindow[w], at.Sub(sent[id]))
	}
	for _, l := range byWindow {
		p99 := time.Duration(-1)
		if len(l) > 0 {
			p99 = percentile(l, 99)
		}
		res.p99ByWindow = append(res.p99ByWindow, p99)
	}
	for t, l := range byType {
		slices.Sort(l)
		log.Debug().Str("type", t).Int("n", len(l)).Dur("p50", l[len(l)/2]).Dur("max", l[len(l)-1]).Msg("latency by type")
	}
	res.published, res.matched = len(sent), len(lat)
	res.p50, res.p99, res.max = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	return res
}

// watchFsyncs has Redis record every fsync of its append-only file that takes
// fsyncLatencyThreshold or more, from now on.
func watchFsyncs(s *scope, e *env) {
	s.Helper()
	ctx := context.Background()
	if err := e.rdb.ConfigSet(ctx, "latency-monitor-threshold", strconv.FormatInt(fsyncLatencyThreshold.Milliseconds(), 10)).Err(); err != nil {
		s.Fatalf("redis CONFIG SET latency-monitor-threshold: %v", err)
	}
	if err := e.rdb.Do(ctx, "LATENCY", "RESET").Err(); err != nil {
		s.Fatalf("redis LATENCY RESET: %v", err)
	}
}

// slowestFsyncs reads what watchFsyncs had Redis record: per second, the slowest
// fsync (Redis keeps the last 160 seconds), and returns the slowest of each
// latencyWindow from begin.
func slowestFsyncs(s *scope, e *env, begin time.Time) []time.Duration {
	s.Helper()
	samples, err := e.rdb.Do(context.Background(), "LATENCY", "HISTORY", "aof-fsync-always").Slice()
	if err != nil {
		s.Fatalf("redis LATENCY HISTORY: %v", err)
	}
	var byWindow []time.Duration
	for _, sample := range samples {
		pair, ok := sample.([]any)
		if !ok || len(pair) != 2 {
			s.Fatalf("redis LATENCY HISTORY: a sample %v is not [time, ms]", sample)
		}
		at, okAt := pair[0].(int64)
		took, okTook := pair[1].(int64)
		if !okAt || !okTook {
			s.Fatalf("redis LATENCY HISTORY: a sample %v is not [time, ms]", sample)
		}
		from := time.Unix(at, 0).Sub(begin.Truncate(time.Second))
		if from < 0 {
			continue
		}
		w := int(from / latencyWindow)
		for len(byWindow) <= w {
			byWindow = append(byWindow, 0)
		}
		byWindow[w] = max(byWindow[w], time.Duration(took)*time.Millisecond)
	}
	return byWindow
}

// percentile sorts l and returns its p-th percentile (p 100: the largest); 0 for none.
func percentile(l []time.Duration, p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(len(l)-1, len(l)*p/100)]
}
