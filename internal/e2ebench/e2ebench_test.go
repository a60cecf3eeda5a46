package e2ebench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/internal/rawloop"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/internal/workload"
)

// The default size keeps `task bench` (every scenario, the latency phase, container
// starts) within about 15 minutes on the 2-core test machine. The figure is
// 100,000 accounts: -e2e.accounts 100000 (about 2.5 million events per scenario).
var (
	benchAccounts   = flag.Int("e2e.accounts", 3000, "accounts in the end-to-end workload (the issue's 100k: -e2e.accounts 100000)")
	benchSeed       = flag.Uint64("e2e.seed", 1, "the workload's seed")
	benchRounds     = flag.Int("e2e.rounds", 3, "rounds of the throughput scenarios and of the latency phase, alternated; the table shows medians")
	benchLatencyFor = flag.Duration("e2e.latency", 20*time.Second, "how long the paced publishing of the latency phase lasts")
	benchOutOfOrder = flag.Float64("e2e.outoforder", 0, "share of dependent events published before their parent (the chaos test's 0.2); "+
		"0: none, since such an event waits and is retried 200ms later by design, which would be counted as latency")
	benchSpread = flag.Float64("e2e.spread", 0, "the share of the stream each account's events are published over, from a random start (workload.Options.Spread), in (0, 1): "+
		"the stream is then a steady mix of accounts at every stage; 0: every account at the same stage at once, so the stream's last third is withdrawals, reviews and payouts")
	benchLatencyRate = flag.Float64("e2e.latency-rate", 0, "events/s of the latency phase; default half of refundd ×1's measured peak")
	benchNaiveEvents = flag.Int("e2e.naive-events", 5000, "the naive loop is timed over the stream's first this many events (it takes one at a time, "+
		"about 5 ms each with fsync always: the whole default workload would take six minutes per round)")
	benchAOFRewritePercentage = flag.Int("e2e.aof-rewrite-percentage", 100, "Redis's auto-aof-rewrite-percentage with fsync always: "+
		"the append-only file is rewritten when it grows by this percentage of its size after the last rewrite; 0 never rewrites it. Default Redis's 100")
	benchCPUProfiles = flag.String("e2e.cpuprofile", "", "a folder each refundd process writes a CPU profile of its run to (REFUNDS_CPU_PROFILE), "+
		"named <scenario>-<run>-refundd-<instance>.pprof; a relative path is from internal/e2ebench, where go test runs; none unless given")
	benchMemoryLimit = flag.String("e2e.gomemlimit", "921MiB", "GOMEMLIMIT of the refundd processes, unless the environment sets one: by default what "+
		"refundd sets itself in deploy/k8s's 1 GiB container (90%), which also makes it collect garbage less often (see cmd/refundd/gc.go); empty: none, as on a machine without a limit")
	benchScenarios = flag.String("e2e.scenarios", "", "comma-separated scenario keys to run (raw,naive,refundd1,refundd2,refundd1-aof-off,latency,latency-aof-off); default all")
)

// validMemoryLimit is what the Go runtime takes as GOMEMLIMIT (runtime/debug's
// SetMemoryLimit: bytes, with an optional IEC unit, or off).
var validMemoryLimit = regexp.MustCompile(`^([0-9]+(B|KiB|MiB|GiB|TiB)?|off)$`)

// lateDuplicateShare is the workload's default share of events published again under
// another Nats-Msg-Id. The bench adds them itself (see prepare).
const lateDuplicateShare = 0.03

// scenarioTimeout bounds one scenario's consumption: only a guard against a hang (at
// 100,000 accounts one refundd run takes about 20 minutes here).
const scenarioTimeout = 3 * time.Hour

var log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"}).With().Timestamp().Logger()

// prepared is the workload encoded once, published identically to every scenario.
type prepared struct {
	w              workload.Workload
	msgs           []*nats.Msg
	ids, accounts  []string // per message: the event id and its account
	types          map[string]string
	lateDuplicates int
}

// prepare generates the workload. workload.Generate inserts its late duplicates one
// slice insertion at a time, which is quadratic (about a minute for 5,000 accounts,
// hours for 100,000), so the bench asks it for none and adds them here in one pass:
// each publication is, with the same 3% chance, published again under another
// Nats-Msg-Id at a random later position.
func prepare(tb testing.TB, accounts int, seed uint64, outOfOrder float64) prepared {
	tb.Helper()
	if outOfOrder <= 0 {
		outOfOrder = 1e-12 // Options treats 0 as "the default 0.2"
	}
	w := workload.Generate(workload.Options{Accounts: accounts, Seed: seed, OutOfOrder: outOfOrder, LateDuplicates: 1e-12, Spread: *benchSpread})
	r := rand.New(rand.NewPCG(seed, 0x1a7e))
	n := len(w.Publications)
	before := make([][]workload.Publication, n+1)
	late := 0
	for i, pub := range w.Publications {
		if r.Float64() < lateDuplicateShare {
			at := i + 1 + r.IntN(n-i)
			before[at] = append(before[at], workload.Publication{Event: pub.Event, MsgID: pub.Event.ID + "#past-duplicate-window"})
			late++
		}
	}
	p := prepared{w: w, lateDuplicates: late, types: map[string]string{}}
	add := func(pub workload.Publication) {
		body, err := pub.Event.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		m := nats.NewMsg(pub.Event.NATSSubject())
		m.Data = body
		m.Header.Set(nats.MsgIdHdr, pub.MsgID)
		p.msgs = append(p.msgs, m)
		p.ids = append(p.ids, pub.Event.ID)
		p.accounts = append(p.accounts, pub.Event.Subject)
		p.types[pub.Event.ID] = string(pub.Event.Type)
	}
	for k := 0; k <= n; k++ {
		for _, pub := range before[k] {
			add(pub)
		}
		if k < n {
			add(w.Publications[k])
		}
	}
	return p
}

// scenario is one way of consuming the workload.
type scenario struct {
	key, name string
	instances int // refundd processes; 0 for an in-process loop
	loop      string
	aof       aofMode
}

var scenarios = []scenario{
	{key: "raw", name: "raw loop", loop: "raw", aof: aofAlways},
	{key: "naive", name: "naive loop", loop: "naive", aof: aofAlways},
	{key: "refundd1", name: "refundd ×1", instances: 1, aof: aofAlways},
	{key: "refundd2", name: "refundd ×2", instances: 2, aof: aofAlways},
	{key: "refundd1-aof-off", name: "refundd ×1", instances: 1, aof: aofOff},
}

// result is one round of one scenario.
type result struct {
	stored       int // events in the stream
	timed        int // events consumed within elapsed: all of them, but for the naive loop
	elapsed      time.Duration
	redisPerAcct float64 // bytes; refundd only
	peakRSS      int64   // bytes, the largest of the instances; refundd only
	deadLetters  uint64
	note         string
	cpu          cpuPerEvent
	intake       intakeTime // refundd only
}

// intakeTime is where refundd's intake workers spent a run, from their metrics.
type intakeTime struct {
	seconds   map[string]float64 // by phase, every instance's workers together
	workers   float64            // every instance's
	instances int
}

// phasesInOrder are the phases of refunds_intake_phase_seconds_total, as a batch goes.
var phasesInOrder = []string{"decode", "load", "decide", "save", "settle"}

// share is each phase's time over the workers' time in the run: how busy they were,
// and with what. Phases refundd reports that are not in phasesInOrder follow, so none
// is left out of the total.
func (t intakeTime) share(elapsed time.Duration) string {
	if t.workers == 0 {
		return ""
	}
	available := t.workers * elapsed.Seconds()
	var busy float64
	phases := slices.Clone(phasesInOrder)
	for _, p := range slices.Sorted(maps.Keys(t.seconds)) {
		if !slices.Contains(phasesInOrder, p) {
			phases = append(phases, p)
		}
	}
	parts := make([]string, 0, len(phases))
	for _, p := range phases {
		busy += t.seconds[p]
		parts = append(parts, fmt.Sprintf("%s %.0f%%", p, 100*t.seconds[p]/available))
	}
	return fmt.Sprintf("intake workers (%.0f per instance) busy %.0f%% of the run: %s (refunds_intake_phase_seconds_total over workers × elapsed)",
		t.workers/float64(t.instances), 100*busy/available, strings.Join(parts, ", "))
}

func (r result) rate() float64 { return float64(r.timed) / r.elapsed.Seconds() }

// BenchmarkEndToEnd runs every scenario once per round on fresh servers with the same
// pre-published workload, then the latency phase, and prints one table. It runs once
// whatever b.N is (each scenario takes seconds to minutes); use -benchtime 1x.
//
// Run: go test -run '^$' -bench EndToEnd -benchtime 1x -timeout 60m ./internal/e2ebench/
func BenchmarkEndToEnd(b *testing.B) {
	if limit := daemonMemoryLimit(); limit != "" && !validMemoryLimit.MatchString(limit) {
		b.Fatalf("GOMEMLIMIT %q (-e2e.gomemlimit or the environment): refundd would not start; want a number of bytes, "+
			"with an optional unit B, KiB, MiB, GiB or TiB, or off", limit)
	}
	if *benchCPUProfiles != "" {
		if err := os.MkdirAll(*benchCPUProfiles, 0o755); err != nil {
			b.Fatalf("-e2e.cpuprofile: %v", err)
		}
	}
	wanted := map[string]bool{}
	for _, k := range strings.Split(*benchScenarios, ",") {
		if k = strings.TrimSpace(k); k != "" {
			wanted[k] = true
		}
	}
	run := func(key string) bool { return len(wanted) == 0 || wanted[key] }

	began := time.Now()
	log.Info().Int("accounts", *benchAccounts).Msg("generating the workload")
	p := prepare(b, *benchAccounts, *benchSeed, *benchOutOfOrder)
	log.Info().Int("publications", len(p.msgs)).Int("events", p.w.Events).Dur("took", time.Since(began)).Msg("workload ready")
	bin := testenv.BuildCommand(b, "refundd")

	results := map[string][]result{}
	for round := 1; round <= *benchRounds; round++ {
		order := slices.Clone(scenarios)
		if round%2 == 0 {
			slices.Reverse(order) // alternate, so drift on a shared machine hits both ends
		}
		for _, sc := range order {
			if !run(sc.key) {
				continue
			}
			log.Info().Int("round", round).Str("scenario", sc.key).Msg("start")
			res := runScenario(b, bin, p, sc)
			log.Info().Int("round", round).Str("scenario", sc.key).Float64("events/s", math.Round(res.rate())).
				Dur("elapsed", res.elapsed.Round(time.Millisecond)).Msg("done")
			results[sc.key] = append(results[sc.key], res)
		}
	}

	lats := runLatencyPhase(b, bin, p, results, run)

	report(b, os.Stdout, p, results, lats, time.Since(began))
}

// runLatencyPhase measures latency at half of refundd ×1's median peak (or
// -e2e.latency-rate), with fsync always and with the file off, once per round,
// alternating which goes first, and gives each mode's runs combined by medianLatency.
// Each round publishes the same paced workload to fresh servers.
func runLatencyPhase(b *testing.B, bin string, p prepared, results map[string][]result, run func(string) bool) []latencyResult {
	peak, hasPeak := median(results["refundd1"])
	rate := *benchLatencyRate
	if rate <= 0 {
		if !hasPeak {
			return nil
		}
		rate = peak.rate() / 2
	}
	var modes []aofMode
	for _, aof := range []aofMode{aofAlways, aofOff} {
		if run(latencyScenario[aof]) {
			modes = append(modes, aof)
		}
	}
	if len(modes) == 0 {
		return nil
	}
	accounts := max(1, int(math.Ceil(rate*benchLatencyFor.Seconds()*float64(*benchAccounts)/float64(len(p.msgs)))))
	lp := prepare(b, accounts, *benchSeed+1000, *benchOutOfOrder)
	runs := map[aofMode][]latencyResult{}
	for round := 1; round <= max(1, *benchRounds); round++ {
		order := slices.Clone(modes)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, aof := range order {
			log.Info().Int("round", round).Str("scenario", latencyScenario[aof]).Float64("events/s", math.Round(rate)).Int("accounts", accounts).Msg("latency phase")
			s := newScope(b)
			res := measureLatency(s, bin, lp, rate, aof)
			s.close()
			log.Info().Int("round", round).Str("scenario", latencyScenario[aof]).Dur("p99", res.p99).Msg("done")
			runs[aof] = append(runs[aof], res)
		}
	}
	var lats []latencyResult
	for _, aof := range modes {
		lats = append(lats, medianLatency(runs[aof]))
	}
	return lats
}

// runScenario publishes the workload to fresh servers and consumes it as sc says,
// timing from the start of the consumer (the loop, or refundd's processes) until the
// durable consumer has nothing pending or unacknowledged and (refundd) the outbox is
// empty.
func runScenario(b *testing.B, bin string, p prepared, sc scenario) result {
	s := newScope(b)
	defer s.close()
	e := newEnv(s, sc.aof)
	res := result{stored: e.publish(s, p.msgs)}
	res.timed = res.stored
	memBefore := e.usedMemory(s)
	partsBefore := e.memoryParts(s)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatalf("redis CONFIG RESETSTAT: %v", err)
	}
	switch sc.loop {
	case "raw", "naive":
		var processed atomic.Int64
		var counts naiveCounts
		done := make(chan error, 1)
		cpuFrom := e.sampleCPU(s, selfCPU(s))
		start := time.Now()
		go func() {
			if sc.loop == "raw" {
				done <- rawloop.Run(ctx, e.cons, e.rdb, &processed, nil)
			} else {
				done <- naiveLoop(ctx, e.cons, e.rdb, &counts)
			}
		}()
		count := func() int64 { return processed.Load() + counts.settled.Load() }
		if sc.loop == "naive" {
			res.timed = min(res.stored, *benchNaiveEvents)
		}
		for count() < int64(res.timed) {
			select {
			case err := <-done:
				b.Fatalf("%s stopped early: %v", sc.name, err)
			case <-time.After(10 * time.Millisecond):
			}
			if time.Since(start) > scenarioTimeout {
				b.Fatalf("%s: %d of %d events after %s", sc.name, count(), res.stored, scenarioTimeout)
			}
		}
		res.elapsed = time.Since(start)
		if res.timed == res.stored {
			end := e.waitSettled(s, false, time.Minute, func() string { return sc.name })
			res.elapsed = end.Sub(start)
		}
		res.cpu = perEvent(cpuFrom, e.sampleCPU(s, selfCPU(s)), res.timed)
		cancel()
		if err := <-done; err != nil {
			b.Fatalf("%s: %v", sc.name, err)
		}
		if sc.loop == "naive" {
			res.note = fmt.Sprintf("timed over the first %d of %d events (-e2e.naive-events): %d applied, %d duplicates, %d refused, %d waits, %d given up",
				res.timed, res.stored,
				counts.applied.Load(), counts.duplicates.Load(), counts.refused.Load(), counts.waits.Load(), counts.gaveUp.Load())
		}
	default:
		var extra []string
		if sc.aof == aofOff {
			extra = append(extra, "REFUNDS_ALLOW_VOLATILE_REDIS=true")
		}
		cpuFrom := e.sampleCPU(s, processTime{}) // refundd has used nothing yet
		start := time.Now()
		run := profileRun(sc.key)
		stopNATSProfile, natsProfiled := make(chan struct{}), (<-chan struct{})(nil)
		if *benchCPUProfiles != "" {
			natsProfiled = e.profileNATS(*benchCPUProfiles, run, stopNATSProfile)
		}
		ds := startDaemons(s, bin, e, run, sc.instances, extra...)
		end := e.waitSettled(s, true, scenarioTimeout, func() string { return sc.name + "\n" + ds[0].logTail(10) })
		close(stopNATSProfile)
		if natsProfiled != nil {
			<-natsProfiled
		}
		res.elapsed = end.Sub(start)
		for _, d := range ds {
			if d.panicked() {
				b.Fatalf("%s logged a panic:\n%s", d.name, d.logTail(40))
			}
		}
		res.cpu = perEvent(cpuFrom, e.sampleCPU(s, daemonsCPU(s, ds)), res.timed)
		res.intake.instances = len(ds)
		for _, d := range ds {
			res.peakRSS = max(res.peakRSS, d.peakRSS(b))
			d.intakePhases(b, &res.intake)
		}
		res.redisPerAcct = float64(e.usedMemory(s)-memBefore) / float64(len(p.w.Accounts))
		if stream, err := e.js.Stream(ctx, consumers.DeadLetterStream); err == nil {
			res.deadLetters = stream.CachedInfo().State.Msgs
		}
		if sc.key == "refundd1" && len(memoryKinds) == 0 {
			memoryKinds = e.memoryByKind(s)
			memoryPartsGrown = e.memoryParts(s).minus(partsBefore)
		}
	}
	if (sc.key == "refundd1" || sc.key == "raw") && redisCommands[sc.key].commands == nil {
		commands, err := testenv.CommandTimes(context.Background(), e.rdb) // ctx is cancelled once a loop is timed
		if err != nil {
			b.Fatal(err)
		}
		redisCommands[sc.key] = scenarioCommands{fmt.Sprintf("%s (AOF %s)", sc.name, aofName(sc.aof)), commands, res.timed}
	}
	return res
}

// runsOf counts the runs of each scenario, to name their profiles.
var runsOf = map[string]int{}

// profileRun names the next run of a scenario: "<key>-<n>".
func profileRun(key string) string {
	runsOf[key]++
	return fmt.Sprintf("%s-%d", key, runsOf[key])
}

// memoryKinds is the first refundd ×1 (appendfsync always) run's Redis memory by kind
// of key: bytes, keys.
var memoryKinds map[string][2]int64

// memoryPartsGrown is how much each part of Redis's memory grew in that run.
var memoryPartsGrown memoryParts

// redisCommands are the Redis commands of the first run of the raw loop and of
// refundd ×1 (AOF fsync always), by scenario key.
var redisCommands = map[string]scenarioCommands{}

// scenarioCommands are a run's Redis commands, with the most time first, over the
// events it consumed.
type scenarioCommands struct {
	scenario string
	commands []testenv.CommandTime
	events   int
}

// median is the round with the median rate (the lower middle one for an even count).
func median(rs []result) (result, bool) {
	if len(rs) == 0 {
		return result{}, false
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b result) int { return int(math.Copysign(1, a.rate()-b.rate())) })
	return sorted[(len(sorted)-1)/2], true
}

// report prints the table and reports the main figures as benchmark metrics.
func report(b *testing.B, w io.Writer, p prepared, results map[string][]result, lats []latencyResult, took time.Duration) {
	stored := 0
	for _, rs := range results {
		stored = rs[0].stored
	}
	fmt.Fprintf(w, "\nEnd-to-end bench: %d accounts (-e2e.accounts; default 3000, the issue's 100k is -e2e.accounts 100000), seed %d, %d round(s), medians\n",
		len(p.w.Accounts), *benchSeed, *benchRounds)
	fmt.Fprintf(w, "workload: %d events, %d publications (%d same-id duplicates, %d past the duplicate window, %d out of order, %d to refuse); %d stored in the stream\n",
		p.w.Events, len(p.msgs), p.w.SameIDDuplicates, p.lateDuplicates, p.w.OutOfOrder, len(p.w.Refused), stored)
	if *benchSpread > 0 && *benchSpread < 1 {
		fmt.Fprintf(w, "each account's events spread over %.0f%% of the stream from a random start (-e2e.spread), not interleaved from the start\n", 100**benchSpread)
	}
	fmt.Fprintf(w, "every scenario on fresh NATS (JetStream, default sync) and Redis containers, the workload published before the clock starts;\n"+
		"refundd is timed from its processes' start until its consumer has nothing pending or unacknowledged and its outbox is empty,\n"+
		"the loops from their start until their consumer is empty; rounds alternate the order of the scenarios;\n")
	if *benchAOFRewritePercentage != 100 {
		fmt.Fprintf(w, "Redis with fsync always runs with auto-aof-rewrite-percentage %d (-e2e.aof-rewrite-percentage; Redis's default is 100, 0 never rewrites)\n",
			*benchAOFRewritePercentage)
	}
	if limit := daemonMemoryLimit(); limit != "" {
		fmt.Fprintf(w, "refundd runs with GOMEMLIMIT=%s (-e2e.gomemlimit), as in a container of deploy/k8s\n\n", limit)
	} else {
		fmt.Fprintf(w, "refundd runs without a memory limit (-e2e.gomemlimit)\n\n")
	}

	raw, hasRaw := median(results["raw"])
	naive, hasNaive := median(results["naive"])
	fmt.Fprintf(w, "%-30s %10s %9s %8s %9s %12s %9s\n", "scenario", "events/s", "elapsed", "/ raw", "/ naive", "Redis B/acct", "peak RSS")
	for _, sc := range scenarios {
		r, ok := median(results[sc.key])
		if !ok {
			continue
		}
		vsRaw, vsNaive, mem, rss := "", "", "", ""
		if sc.instances > 0 {
			if hasRaw {
				vsRaw = fmt.Sprintf("%.1f%%", 100*r.rate()/raw.rate())
			}
			if hasNaive {
				vsNaive = fmt.Sprintf("%.1f×", r.rate()/naive.rate())
			}
			mem = fmt.Sprintf("%.0f", r.redisPerAcct)
			rss = fmt.Sprintf("%.0f MiB", float64(r.peakRSS)/(1<<20))
		}
		name := fmt.Sprintf("%s (AOF %s)", sc.name, aofName(sc.aof))
		fmt.Fprintf(w, "%-30s %10.0f %9s %8s %9s %12s %9s\n", name, r.rate(), r.elapsed.Round(10*time.Millisecond), vsRaw, vsNaive, mem, rss)
		if r.note != "" {
			fmt.Fprintf(w, "%30s   %s\n", "", r.note)
		}
		fmt.Fprintf(w, "%30s   %s\n", "", r.cpu)
		if waited := r.cpu.waitedForACore("consumer"); waited != "" {
			fmt.Fprintf(w, "%30s   per event, %s\n", "", waited)
		}
		if line := r.intake.share(r.elapsed); line != "" {
			fmt.Fprintf(w, "%30s   %s\n", "", line)
		}
		if sc.instances > 0 && r.deadLetters > 0 {
			fmt.Fprintf(w, "%30s   %d dead letters (the events the workload makes to refuse, and their late duplicates)\n", "", r.deadLetters)
		}
		metric := strings.ReplaceAll(sc.key, "refundd", "refundd-x")
		b.ReportMetric(r.rate(), metric+"-events/s")
		if sc.instances > 0 && *benchRounds > 0 {
			b.ReportMetric(r.redisPerAcct, metric+"-redis-B/account")
			b.ReportMetric(float64(r.peakRSS)/(1<<20), metric+"-peak-RSS-MiB")
		}
	}
	if len(memoryKinds) > 0 {
		var kinds []string
		for k := range memoryKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "\nRedis B/acct is INFO used_memory after minus before, over the accounts: everything refundd keeps (account documents,\n"+
			"idempotency records of every event id and fact for 35 days, ended cases, case index, timers, outbox streams).\n"+
			"MEMORY USAGE by kind of key, refundd ×1 (AOF fsync always), per account:")
		for _, k := range kinds {
			v := memoryKinds[k]
			fmt.Fprintf(w, " %s %.0f B (%d keys);", k, float64(v[0])/float64(len(p.w.Accounts)), v[1])
		}
		perAccount := func(n int64) float64 { return float64(n) / float64(len(p.w.Accounts)) }
		g := memoryPartsGrown
		fmt.Fprintf(w, "\nMEMORY STATS, growth per account: dataset %.0f B, the keyspace's hash tables %.0f B, clients' buffers %.0f B "+
			"(these grow with the connections and the size of their commands, not with the accounts), other %.0f B\n",
			perAccount(g.dataset), perAccount(g.keyspace), perAccount(g.clients), perAccount(g.total-g.dataset-g.keyspace-g.clients))
	}
	for _, key := range []string{"raw", "refundd1"} {
		run, ok := redisCommands[key]
		if !ok {
			continue
		}
		events := float64(run.events)
		fmt.Fprintf(w, "\nRedis's main thread executing commands, %s, per event (INFO commandstats; a script's time includes the commands it calls, which are listed too):",
			run.scenario)
		for _, c := range run.commands {
			if float64(c.Usec)/events < 0.05 {
				break
			}
			fmt.Fprintf(w, " %s %.2f calls %.1f µs;", c.Command, float64(c.Calls)/events, float64(c.Usec)/events)
		}
		fmt.Fprintln(w)
	}
	for _, lat := range lats {
		fmt.Fprintf(w, "\nlatency, publish → first outbound event of that inbound event, refundd ×1 (AOF %s), paced at %.0f events/s for %s:\n"+
			"  p50 %s, p99 %s, max %s (%d of %d inbound events caused an outbound one; refundd ready %s after its start)\n",
			aofName(lat.aof), lat.rate, *benchLatencyFor, ms(lat.p50), ms(lat.p99), ms(lat.max), lat.matched, lat.published, lat.ready.Round(time.Millisecond))
		if len(lat.p99OfRuns) > 1 {
			fmt.Fprintf(w, "  medians of %d runs on fresh servers; p99 of each run:", len(lat.p99OfRuns))
			for _, p99 := range lat.p99OfRuns {
				fmt.Fprintf(w, " %.1f", float64(p99)/1e6)
			}
			fmt.Fprintf(w, " ms; the lines below are the run with the median p99\n")
		}
		fmt.Fprintf(w, "  split where a worker took up the event's batch (the clock it read, the outbound event's time): "+
			"publish → taken up p50 %s, p99 %s; taken up → received p50 %s, p99 %s\n",
			ms(lat.untilTaken.p50), ms(lat.untilTaken.p99), ms(lat.afterTaken.p50), ms(lat.afterTaken.p99))
		fmt.Fprintf(w, "  p99 of the events first published in each %s:", latencyWindow)
		for _, p99 := range lat.p99ByWindow {
			if p99 < 0 {
				fmt.Fprintf(w, " -")
				continue
			}
			fmt.Fprintf(w, " %.0f", float64(p99)/1e6)
		}
		fmt.Fprintf(w, " ms; append-only file rewrites:")
		for _, r := range lat.rewrites {
			fmt.Fprintf(w, " %.1f–%.1f s", r.from.Seconds(), r.to.Seconds())
		}
		if len(lat.rewrites) == 0 {
			fmt.Fprintf(w, " none seen")
		}
		if lat.rewritesDone > 0 {
			fmt.Fprintf(w, " (%d done, INFO aof_rewrites; the last one's fork held Redis %s)", lat.rewritesDone, ms(lat.latestFork))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  how busy the machine was in each %s (/proc/stat, every core):", latencyWindow)
		for i := range lat.p99ByWindow {
			if i >= len(lat.busyByWindow) {
				fmt.Fprintf(w, " -")
				continue
			}
			fmt.Fprintf(w, " %.0f", 100*lat.busyByWindow[i])
		}
		fmt.Fprintln(w, " %")
		rest := ""
		if lat.cpu.nats < 0 {
			rest = " (NATS with it: given by address)"
		}
		fmt.Fprintf(w, "  CPU per publication, from the first publish until all was settled: %s, this bench's publisher, subscriber and polls %s, the rest of the machine %s%s; the machine %.0f%% busy\n",
			lat.cpu.processes("refundd"), us(lat.bench), us(max(0, lat.cpu.rest-lat.bench)), rest, 100*lat.cpu.busy)
		if waited := lat.cpu.waitedForACore("refundd"); waited != "" {
			fmt.Fprintf(w, "  per publication, %s\n", waited)
		}
		if lat.aof == aofAlways {
			fmt.Fprintf(w, "  Redis's slowest fsync of the append-only file in each %s (LATENCY HISTORY aof-fsync-always; 0: none of %s or more):", latencyWindow, fsyncLatencyThreshold)
			for i := range lat.p99ByWindow {
				var slowest time.Duration
				if i < len(lat.slowestFsyncByWindow) {
					slowest = lat.slowestFsyncByWindow[i]
				}
				fmt.Fprintf(w, " %.0f", float64(slowest)/1e6)
			}
			fmt.Fprintln(w, " ms")
		}
		prefix := map[aofMode]string{aofAlways: "", aofOff: "aof-off-"}[lat.aof]
		b.ReportMetric(float64(lat.p50)/1e6, prefix+"p50-ms")
		b.ReportMetric(float64(lat.p99)/1e6, prefix+"p99-ms")
		b.ReportMetric(float64(lat.max)/1e6, prefix+"max-ms")
	}
	if *benchCPUProfiles != "" {
		fmt.Fprintf(w, "\nrefundd's CPU profiles are in %s, one per process and run (<scenario>-<run>-refundd-<instance>.pprof): go tool pprof -top %s\n",
			*benchCPUProfiles, filepath.Join(*benchCPUProfiles, "<file>"))
		fmt.Fprintf(w, "the NATS server's, while refundd ran, in slices of %s (<scenario>-<run>-nats-<k>.pprof), when the bench started it: go tool pprof -top %s\n",
			natsProfileSlice, filepath.Join(*benchCPUProfiles, "<scenario>-<run>-nats-*.pprof"))
	}
	fmt.Fprintf(w, "\ntargets (refundd ×1, AOF fsync always):\n")
	if r1, ok := median(results["refundd1"]); ok {
		if hasRaw {
			ratio := r1.rate() / raw.rate()
			fmt.Fprintf(w, "  refundd / raw   ≥ 60%%:  %.1f%%  %s\n", 100*ratio, verdict(ratio >= 0.6))
			b.ReportMetric(100*ratio, "refundd/raw-%")
		}
		if hasNaive {
			ratio := r1.rate() / naive.rate()
			fmt.Fprintf(w, "  refundd / naive ≥ 5×:   %.1f×  %s\n", ratio, verdict(ratio >= 5))
			b.ReportMetric(ratio, "refundd/naive-x")
		}
		// The issue sets the target at its size, 100,000 accounts. At fewer, Redis's
		// fixed costs (the clients' buffers, hash tables sized in powers of two, the
		// case index's 1,024 keys) are shared by fewer accounts: 2,305 B at 3,000
		// against 1,949 B at 100,000 (af6950a). So the line says at what size.
		size := ""
		if *benchAccounts != 100000 {
			size = fmt.Sprintf(" (at %d accounts; the issue's size is -e2e.accounts 100000)", *benchAccounts)
		}
		fmt.Fprintf(w, "  Redis per account ≤ 2 KiB: %.0f B  %s%s\n", r1.redisPerAcct, verdict(r1.redisPerAcct <= 2048), size)
	}
	for _, lat := range lats {
		if lat.aof == aofAlways {
			fmt.Fprintf(w, "  p99 at half load < 25 ms: %s  %s\n", ms(lat.p99), verdict(lat.p99 < 25*time.Millisecond))
		}
	}
	fmt.Fprintf(w, "\nthe whole bench took %s\n", took.Round(time.Second))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

func aofName(a aofMode) string {
	return map[aofMode]string{aofAlways: "fsync always", aofOff: "off"}[a]
}
