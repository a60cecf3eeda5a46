// Command refundd is the refund engine daemon: it consumes billing, console, review and
// payout events from NATS JetStream, keeps account state in Redis and publishes its
// decisions. This file only wires the parts together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/producers"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

func main() {
	cfg, err := loadConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	log := newLogger(cfg.LogLevel)
	if err != nil {
		log.Fatal().Err(err).Msg("configuration")
	}
	logGC(log, tuneGC(os.LookupEnv, log))
	if cfg.CPUProfile != "" {
		stopProfile, err := startCPUProfile(cfg.CPUProfile)
		if err != nil {
			log.Fatal().Err(err).Msg("configuration")
		}
		defer func() {
			if err := stopProfile(); err != nil {
				log.Error().Err(err).Msg("write the cpu profile")
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, log, nil); err != nil {
		log.Fatal().Err(err).Msg("refundd stopped")
	}
	log.Info().Msg("refundd stopped cleanly")
}

func newLogger(level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(os.Stdout).Level(lvl).With().Timestamp().Str("service", "refundd").Logger()
}

// hooks let tests reach into a running daemon; nil in production.
type hooks struct {
	// ready is closed once the daemon takes events, with the HTTP address it listens on.
	ready func(httpAddr string)
	// intakeConfig adjusts the intake before it starts.
	intakeConfig func(*consumers.Config)
	streams      consumers.StreamSettings
	// countdownConfig adjusts the reserve countdown runner before it starts.
	countdownConfig func(*consumers.CountdownConfig)
}

// run runs the daemon until ctx is cancelled, then stops cleanly: it stops fetching,
// saves and acknowledges what it holds, publishes what is in the outbox, and returns.
func run(ctx context.Context, cfg Config, log zerolog.Logger, h *hooks) error {
	if h == nil {
		h = &hooks{}
	}
	log = log.With().Str("instance", cfg.Instance).Logger()
	rules := state.DefaultRules()
	rules.ReserveHold = cfg.ReserveHold
	if cfg.Calendar.Name() != "" {
		rules.Calendar = cfg.Calendar // else the built-in one DefaultRules gave
	}
	if err := requireCalendarCovers(rules.Calendar, time.Now()); err != nil {
		return err
	}
	if until := rules.Calendar.Until(); time.Until(until) < 60*24*time.Hour {
		log.Warn().Str("calendar", rules.Calendar.Name()).Time("until", until).Msg("the business-day calendar ends within 60 days; refundd refuses to start after that")
	}
	if err := rules.Validate(); err != nil {
		return fmt.Errorf("rules: %w", err)
	}

	if cfg.Dev {
		dev, err := startDevServers(cfg)
		if err != nil {
			return err
		}
		defer dev.close()
		log.Info().Str("nats", redacted(cfg.NATSURL)).Str("redis", redacted(cfg.RedisURL)).Msg("dev mode: in-process NATS JetStream and Redis-compatible servers")
	}

	tracer, stopTracing, err := tracing.Start(ctx, tracing.ExporterConfig{
		Endpoint: cfg.OTLPEndpoint, FromEnv: cfg.OTLPFromEnv, ServiceInstance: cfg.Instance,
	})
	if err != nil {
		return err
	}
	defer func() {
		// Last out: the spans of the events the intake and the relay finished while
		// stopping are exported too.
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(flushCtx); err != nil {
			log.Warn().Err(err).Msg("export the last trace spans")
		}
	}()
	if tracer != nil {
		log.Info().Str("otlp_endpoint", redacted(cfg.OTLPEndpoint)).Bool("from_env", cfg.OTLPEndpoint == "").Msg("exporting trace spans over OTLP/HTTP")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ready atomic.Bool

	natsOpts, err := natsOptions(cfg, log)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, natsOpts...)
	if err != nil {
		return fmt.Errorf("connect to nats %s: %w", redacted(cfg.NATSURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	rdb, err := newRedisClient(cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := redisstore.New(rdb)
	store.SetCachedAccounts(cfg.CachedAccounts)
	store.SetLogger(log.With().Str("part", "store").Logger())

	api := &readAPI{accounts: store, rules: rules, ready: &ready, log: log}
	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	httpServer := &http.Server{Handler: api.routes(reg), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := httpServer.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("http server")
		}
	}()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpServer.Shutdown(shutdownCtx)
	}()
	log.Info().Str("addr", listener.Addr().String()).Msg("read API listening")

	streams := h.streams
	if streams.Replicas == 0 {
		streams.Replicas = cfg.StreamReplicas
	}
	if streams.AckWait == 0 {
		streams.AckWait = cfg.AckWait
	}
	cons, err := provision(ctx, log, js, store, streams)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it was ready: a clean stop all the same
		}
		return err
	}

	if err := requireDurableRedis(ctx, store, cfg, log); err != nil {
		return err
	}

	relay, err := producers.NewRelay(js, store, log.With().Str("part", "relay").Logger(), producers.RelayConfig{
		Consumer: cfg.Instance, Registerer: reg, Tracer: tracer,
	})
	if err != nil {
		return err
	}
	metrics := consumers.NewMetrics(reg)
	registerGauges(reg, store, cons, log)
	intakeCfg := consumers.Config{
		Rules:   &rules,
		Metrics: metrics,
		Relay:   relay,
		Tracer:  tracer,
	}
	if h.intakeConfig != nil {
		h.intakeConfig(&intakeCfg)
	}
	intake := consumers.NewIntake(js, cons, store, log.With().Str("part", "intake").Logger(), intakeCfg)
	countdownCfg := consumers.CountdownConfig{
		Rules:      &rules,
		Registerer: reg,
		Metrics:    metrics,
		Relay:      relay,
		Tracer:     tracer,
	}
	if h.countdownConfig != nil {
		h.countdownConfig(&countdownCfg)
	}
	countdowns := consumers.NewCountdowns(store, log.With().Str("part", "countdowns").Logger(), countdownCfg)

	intakeCtx, stopIntake := context.WithCancel(ctx)
	defer stopIntake()
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	var wg sync.WaitGroup
	var intakeErr error
	var producing sync.WaitGroup // the intake and the countdowns: what feeds the outbox
	producing.Add(2)
	wg.Add(3)
	go func() {
		defer wg.Done()
		defer producing.Done()
		intakeErr = intake.Run(intakeCtx)
		stopIntake()
	}()
	go func() {
		defer wg.Done()
		defer producing.Done()
		_ = countdowns.Run(intakeCtx)
	}()
	go func() {
		// The relay outlives what feeds the outbox, so that what they saved last is
		// published before the process exits.
		producing.Wait()
		stopRelay()
	}()
	go func() {
		defer wg.Done()
		_ = relay.Run(relayCtx, 5*time.Second)
	}()
	ready.Store(true)
	log.Info().Msg("refundd ready")
	if h.ready != nil {
		h.ready(listener.Addr().String())
	}
	<-intakeCtx.Done()
	ready.Store(false)
	log.Info().Msg("stopping: no new fetches; finishing held events")
	wg.Wait()
	return intakeErr
}

// provision waits for Redis and JetStream to answer, then creates what the engine needs
// in both. Until it returns, /readyz answers 503.
func provision(ctx context.Context, log zerolog.Logger, js jetstream.JetStream, store *redisstore.Store, streams consumers.StreamSettings) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	step := func(ctx context.Context) error {
		if err := store.Prepare(ctx); err != nil {
			return err
		}
		if err := producers.EnsureOutboundStream(ctx, js, streams.Replicas); err != nil {
			return err
		}
		c, err := consumers.EnsureStreams(ctx, js, streams)
		cons = c
		return err
	}
	for attempt := 1; ; attempt++ {
		stepCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := step(stepCtx)
		cancel()
		if err == nil {
			return cons, nil
		}
		log.Warn().Err(err).Int("attempt", attempt).Msg("provision streams and store; retrying")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("provision: %w", ctx.Err())
		case <-time.After(min(time.Duration(attempt)*time.Second, 10*time.Second)):
		}
	}
}

// durabilityReader is what the start-up check needs from the store.
type durabilityReader interface {
	Durability(ctx context.Context) (redisstore.Durability, error)
}

// requireDurableRedis refuses to run against a Redis that does not keep what it
// acknowledges, unless told it is intended (--allow-volatile-redis) or in --dev, whose
// in-process store is in memory by design. A Redis that will not say is run with a
// warning; one that fsyncs less than always is run with a warning too.
func requireDurableRedis(ctx context.Context, store durabilityReader, cfg Config, log zerolog.Logger) error {
	if cfg.Dev {
		log.Warn().Msg("dev mode: the Redis-compatible store is in memory; its state is lost on exit")
		return nil
	}
	d, err := store.Durability(ctx)
	if err != nil {
		return err
	}
	switch {
	case !d.Known:
		log.Warn().Msg("Redis does not say whether it persists (CONFIG is not allowed); make sure it runs with appendonly yes and appendfsync always")
	case !d.AppendOnly && !cfg.AllowVolatileRedis:
		return fmt.Errorf("%w: Redis runs without the append-only file, so an acknowledged event can be lost in a crash; run it with appendonly yes and appendfsync always, or pass --allow-volatile-redis if this is intended", ErrInvalidConfig)
	case !d.AppendOnly:
		log.Warn().Msg("Redis runs without the append-only file (--allow-volatile-redis): acknowledged events can be lost in a crash")
	case d.FsyncPolicy != "always":
		log.Warn().Str("appendfsync", d.FsyncPolicy).Msg("Redis fsyncs its append-only file less than always: a crash can lose the last acknowledged events")
	}
	return nil
}

// gaugeSource is what the operators' gauges read from the store.
type gaugeSource interface {
	OutboxLength(ctx context.Context) (int64, error)
	OutboxOldest(ctx context.Context) (time.Time, bool, error)
	PendingTimers(ctx context.Context) (int64, error)
	PendingTimersByKind(ctx context.Context) (map[string]int64, error)
	CasesByStatus(ctx context.Context) (map[string]int64, error)
}

// registerGauges adds what an operator watches at 3 a.m.: how far the intake is behind
// JetStream, how much waits in the outbox and for how long, and how many deadlines are
// pending. Each is read when Prometheus scrapes, with a short timeout; -1 means it
// could not be read.
func registerGauges(reg prometheus.Registerer, store gaugeSource, cons jetstream.Consumer, log zerolog.Logger) {
	read := func(name string, f func(ctx context.Context) (float64, error)) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			v, err := f(ctx)
			if err != nil {
				log.Warn().Err(err).Str("gauge", name).Msg("read gauge")
				return -1
			}
			return v
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "refunds_intake_consumer_pending",
			Help: "Inbound events JetStream holds for the intake and has not delivered yet (consumer lag).",
		}, read("consumer lag", func(ctx context.Context) (float64, error) {
			info, err := cons.Info(ctx)
			if err != nil {
				return 0, err
			}
			return float64(info.NumPending), nil
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "refunds_outbox_depth",
			Help: "Outbound events saved and not yet published (or not yet acknowledged by JetStream).",
		}, read("outbox depth", func(ctx context.Context) (float64, error) {
			n, err := store.OutboxLength(ctx)
			return float64(n), err
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "refunds_outbox_oldest_age_seconds",
			Help: "Age of the oldest outbound event waiting in the outbox; 0 when it is empty.",
		}, read("outbox oldest", func(ctx context.Context) (float64, error) {
			at, ok, err := store.OutboxOldest(ctx)
			if err != nil || !ok {
				return 0, err
			}
			return time.Since(at).Seconds(), nil
		})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "refunds_timers_pending",
			Help: "Accounts with a pending deadline (any timer kind: reserve, case overdue, settlement end), claimed or not.",
		}, read("pending timers", func(ctx context.Context) (float64, error) {
			n, err := store.PendingTimers(ctx)
			return float64(n), err
		})),
	)
	var kinds []string
	for _, k := range state.TimerKinds() {
		kinds = append(kinds, string(k))
	}
	reg.MustRegister(
		countsCollector{
			desc: prometheus.NewDesc("refunds_timers_pending_by_kind",
				"Accounts whose earliest pending deadline is of this kind (reserve_unfreeze, case_overdue, settlement_end).",
				[]string{"kind"}, nil),
			read: store.PendingTimersByKind, always: kinds, log: log,
			labels: func(key string) []string { return []string{key} },
		},
		countsCollector{
			desc: prometheus.NewDesc("refunds_cases",
				"Cases by kind and status: open ones in their current status, ended ones in the status they ended in.",
				[]string{"kind", "status"}, nil),
			read: store.CasesByStatus, log: log,
			labels: func(key string) []string { kind, status, _ := strings.Cut(key, "/"); return []string{kind, status} },
		},
	)
}

// natsOptions are refundd's NATS connect options: it keeps reconnecting for ever, from
// the first attempt on (NATS may start after it), authenticates and verifies the
// server as cfg.NATS says, and logs why an attempt failed (a refused credential, a
// certificate that does not verify), which would otherwise only show as a daemon that
// never becomes ready.
func natsOptions(cfg Config, log zerolog.Logger) ([]nats.Option, error) {
	auth, err := cfg.NATS.Options()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	log = log.With().Str("part", "nats").Logger()
	return append([]nats.Option{
		nats.Name("refundd " + cfg.Instance),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info().Str("server", nc.ConnectedUrlRedacted()).Str("auth", cfg.NATS.Auth()).Bool("tls", nc.TLSRequired()).Msg("connected to NATS")
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("NATS connection attempt failed; retrying")
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error().Err(err).Msg("NATS error")
		}),
	}, auth...), nil
}

// newRedisClient is a client for a single Redis, or, with --redis-cluster, for a Redis
// Cluster whose seed nodes the URL names (redis://host:port?addr=host2:port2...), with
// --redis-ca and the client certificate applied to a rediss:// URL. The store takes
// either: every key of one of its atomic steps shares a hash slot.
func newRedisClient(cfg Config) (redis.UniversalClient, error) {
	rdb, err := connect.NewRedisClient(cfg.RedisURL, cfg.RedisCluster, cfg.RedisTLS)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return rdb, nil
}

// redacted is a URL fit for a log: a password in it is replaced by "xxxxx".
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// countsCollector reports the counts a store keeps with every step (pending timers by
// kind, cases by kind and status) as one gauge per key, read once per scrape with a
// short timeout. The keys are the engine's own kinds and statuses, so the labels stay
// few.
type countsCollector struct {
	desc *prometheus.Desc
	read func(ctx context.Context) (map[string]int64, error)
	// always are keys reported even when the store has no count for them (0).
	always []string
	// labels turns a key into the label values of desc.
	labels func(key string) []string
	log    zerolog.Logger
}

func (c countsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c countsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.read(ctx)
	if err != nil {
		c.log.Warn().Err(err).Str("gauge", c.desc.String()).Msg("read gauge")
		return
	}
	for _, key := range c.always {
		if _, ok := counts[key]; !ok {
			counts[key] = 0
		}
	}
	for key, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), c.labels(key)...)
	}
}
