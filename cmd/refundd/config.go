package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/tracing"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// Config is refundd's settings. Each comes from a flag, else from its environment
// variable, else from the default in CONTRACT.md.
type Config struct {
	NATSURL     string        // REFUNDS_NATS_URL, default nats://127.0.0.1:4222
	RedisURL    string        // REFUNDS_REDIS_URL, default redis://127.0.0.1:6379/0
	HTTPAddr    string        // REFUNDS_HTTP_ADDR, default 127.0.0.1:8080
	ReserveHold time.Duration // REFUNDS_RESERVE_HOLD, default 24h
	// Dev runs an in-process NATS JetStream server and Redis-compatible server at the
	// addresses of NATSURL and RedisURL.
	Dev bool
	// Instance names this process in logs and in the outbox consumer group.
	Instance string
	LogLevel string
	// Calendar is the business-day calendar expected completion times count in,
	// loaded from CalendarFile (REFUNDS_CALENDAR) or, without one, the mainland-China
	// calendar shipped in state/calendars.
	Calendar     state.Calendar
	CalendarFile string
	// AllowVolatileRedis lets refundd run against a Redis that does not persist what
	// it acknowledges (REFUNDS_ALLOW_VOLATILE_REDIS=true). Off by default: the engine
	// acknowledges an event once Redis has its effect, so a Redis that forgets loses
	// money movements for good.
	AllowVolatileRedis bool
	// RedisCluster makes RedisURL name the seed nodes of a Redis Cluster
	// (REFUNDS_REDIS_CLUSTER=true): redis://host:port?addr=host2:port2&addr=...
	RedisCluster bool
	// StreamReplicas is how many copies JetStream keeps of the engine's streams
	// (REFUNDS_STREAM_REPLICAS): 1 on a single server, 3 on a cluster. Default 1.
	StreamReplicas int
	// CachedAccounts is how many decoded accounts this instance keeps
	// (--cached-accounts, REFUNDS_CACHED_ACCOUNTS), at least 1. Default 50,000
	// (redisstore.DefaultCachedAccounts). An event of an account not cached reads the
	// account whole; each cached account costs about 15 KiB of RSS. Raise it towards
	// the number of accounts active at once when memory allows.
	CachedAccounts int
	// AckWait is how long an event an instance fetched may stay unacknowledged before
	// JetStream gives it to another instance (REFUNDS_ACK_WAIT, a Go duration, at
	// least 1s). Default 30s. Shorter means a crashed instance's events move on sooner;
	// it must stay longer than a batch takes to save, or events are decided twice
	// (harmlessly: the second save is refused as a conflict, but it is wasted work).
	AckWait time.Duration
	// NATS authenticates with an NKey or a creds file and verifies the server with a
	// CA of its own (--nats-creds, --nats-nkey, --nats-ca, --nats-cert, --nats-key and
	// their REFUNDS_NATS_* variables). Default: none of them, only what NATSURL carries
	// (user:password@), and TLS only for a tls:// URL, verified by the system's roots.
	NATS connect.NATS
	// RedisTLS verifies a rediss:// server with a CA of its own and shows it a client
	// certificate (--redis-ca, --redis-cert, --redis-key and their REFUNDS_REDIS_*
	// variables). Default: none; a rediss:// URL is then verified by the system's roots.
	RedisTLS connect.RedisTLS
	// OTLPEndpoint is the base URL of an OTLP/HTTP collector spans are exported to
	// (--otlp-endpoint, REFUNDS_OTLP_ENDPOINT), e.g. http://otel-collector:4318; spans
	// go to its /v1/traces. It wins over the standard OTEL_EXPORTER_OTLP_ENDPOINT and
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which switch the exporter on too (OTLPFromEnv).
	// Off by default: trace context is then carried from inbound to outbound events,
	// and no span is recorded.
	OTLPEndpoint string
	OTLPFromEnv  bool
	// CPUProfile is a file refundd writes a CPU profile of its whole run to, on a clean
	// stop (--cpu-profile, REFUNDS_CPU_PROFILE), for `go tool pprof`: the end-to-end
	// bench profiles refundd so. Off by default.
	CPUProfile string
}

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid configuration")

func loadConfig(args []string, getenv func(string) string) (Config, error) {
	envOr := func(key, fallback string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return fallback
	}
	host, _ := os.Hostname()
	var cfg Config
	fs := flag.NewFlagSet("refundd", flag.ContinueOnError)
	fs.StringVar(&cfg.NATSURL, "nats-url", envOr("REFUNDS_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (env REFUNDS_NATS_URL)")
	fs.StringVar(&cfg.RedisURL, "redis-url", envOr("REFUNDS_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (env REFUNDS_REDIS_URL)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", envOr("REFUNDS_HTTP_ADDR", "127.0.0.1:8080"), "read API and health address (env REFUNDS_HTTP_ADDR)")
	hold := fs.String("reserve-hold", envOr("REFUNDS_RESERVE_HOLD", "24h"), "how long the reserve stays frozen after the last pay-as-you-go release, a Go duration (env REFUNDS_RESERVE_HOLD)")
	fs.BoolVar(&cfg.Dev, "dev", false, "run an in-process NATS JetStream server and Redis-compatible server at the configured addresses")
	ackWait := fs.String("ack-wait", envOr("REFUNDS_ACK_WAIT", "30s"), "how long a fetched event may stay unacknowledged before another instance gets it, a Go duration (env REFUNDS_ACK_WAIT)")
	devData := fs.String("dev-data", "", "refused: see the error it gives")
	replicas := fs.Int("stream-replicas", 1, "copies of the engine's JetStream streams: 1 on a single server, 3 on a cluster (env REFUNDS_STREAM_REPLICAS)")
	cached := fs.Int("cached-accounts", redisstore.DefaultCachedAccounts, "decoded accounts this instance keeps, about 15 KiB of memory each; an event of an account not kept reads it whole (env REFUNDS_CACHED_ACCOUNTS)")
	fs.BoolVar(&cfg.RedisCluster, "redis-cluster", envOr("REFUNDS_REDIS_CLUSTER", "") == "true", "the Redis URL names the seed nodes of a Redis Cluster: redis://host:port?addr=host2:port2 (env REFUNDS_REDIS_CLUSTER=true)")
	fs.BoolVar(&cfg.AllowVolatileRedis, "allow-volatile-redis", envOr("REFUNDS_ALLOW_VOLATILE_REDIS", "") == "true", "run against a Redis without the append-only file (env REFUNDS_ALLOW_VOLATILE_REDIS=true); acknowledged events can then be lost")
	fs.StringVar(&cfg.Instance, "instance", envOr("REFUNDS_INSTANCE", fmt.Sprintf("%s-%d", host, os.Getpid())), "this instance's name (env REFUNDS_INSTANCE)")
	fs.StringVar(&cfg.CalendarFile, "calendar", envOr("REFUNDS_CALENDAR", ""), "business-day calendar file, JSON like state/calendars/cn-mainland.json (env REFUNDS_CALENDAR; default: the mainland-China calendar built in)")
	cfg.NATS.RegisterFlags(fs, getenv)
	cfg.RedisTLS.RegisterFlags(fs, getenv)
	fs.StringVar(&cfg.OTLPEndpoint, "otlp-endpoint", envOr("REFUNDS_OTLP_ENDPOINT", ""), "export trace spans to this OTLP/HTTP collector base URL, e.g. http://otel-collector:4318 (env REFUNDS_OTLP_ENDPOINT; the standard OTEL_EXPORTER_OTLP_ENDPOINT works too); off by default")
	fs.StringVar(&cfg.CPUProfile, "cpu-profile", envOr("REFUNDS_CPU_PROFILE", ""), "write a CPU profile of the whole run to this file on a clean stop, for go tool pprof (env REFUNDS_CPU_PROFILE); off by default")
	fs.StringVar(&cfg.LogLevel, "log-level", envOr("REFUNDS_LOG_LEVEL", "info"), "debug, info, warn or error (env REFUNDS_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if *devData != "" {
		// Kept as a flag only to say why: the JetStream store would survive a restart
		// and the in-memory Redis state would not, so every account would be gone while
		// its events stay acknowledged.
		return Config{}, fmt.Errorf("%w: --dev-data is refused: it would keep JetStream's acknowledged events across a restart but not the in-memory Redis state, so the accounts would be lost; for state that survives, run NATS and Redis (deploy/) without --dev", ErrInvalidConfig)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected arguments %q", ErrInvalidConfig, fs.Args())
	}
	d, err := time.ParseDuration(*hold)
	if err != nil || d <= 0 {
		return Config{}, fmt.Errorf("%w: reserve hold %q must be a positive Go duration such as 24h", ErrInvalidConfig, *hold)
	}
	cfg.ReserveHold = d
	if cfg.AckWait, err = time.ParseDuration(*ackWait); err != nil || cfg.AckWait < time.Second {
		return Config{}, fmt.Errorf("%w: ack wait %q must be a Go duration of at least 1s, such as 30s", ErrInvalidConfig, *ackWait)
	}
	cfg.OTLPFromEnv = getenv(tracing.EnvOTLPEndpoint) != "" || getenv(tracing.EnvOTLPTracesEndpoint) != ""
	if cfg.StreamReplicas, err = intSetting(fs, getenv, "stream-replicas", "REFUNDS_STREAM_REPLICAS", *replicas); err != nil {
		return Config{}, err
	}
	if cfg.StreamReplicas != 1 && cfg.StreamReplicas != 3 && cfg.StreamReplicas != 5 {
		return Config{}, fmt.Errorf("%w: stream replicas %d: must be 1, 3 or 5", ErrInvalidConfig, cfg.StreamReplicas)
	}
	if cfg.CachedAccounts, err = intSetting(fs, getenv, "cached-accounts", "REFUNDS_CACHED_ACCOUNTS", *cached); err != nil {
		return Config{}, err
	}
	if cfg.CachedAccounts < 1 {
		return Config{}, fmt.Errorf("%w: cached accounts %d: must be at least 1", ErrInvalidConfig, cfg.CachedAccounts)
	}
	cfg.Calendar = state.DefaultCalendar()
	if cfg.CalendarFile != "" {
		data, err := os.ReadFile(cfg.CalendarFile)
		if err != nil {
			return Config{}, fmt.Errorf("%w: calendar: %w", ErrInvalidConfig, err)
		}
		if cfg.Calendar, err = state.ParseCalendar(data); err != nil {
			return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return cfg, cfg.validate()
}

// requireCalendarCovers refuses to run past the calendar's end: expected completion
// times would otherwise be guessed, and every request counted in business days would
// wait.
func requireCalendarCovers(c state.Calendar, now time.Time) error {
	if !c.Covers(now) {
		return fmt.Errorf("%w: the business-day calendar %s ends %s, before now (%s); give a current one with --calendar",
			ErrInvalidConfig, c.Name(), c.Until().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

func (c Config) validate() error {
	// A NATS cluster is given as its nodes' URLs, comma-separated, as nats.Connect
	// takes them.
	for _, u := range strings.Split(c.NATSURL, ",") {
		if _, err := hostPort(strings.TrimSpace(u), "nats"); err != nil {
			return err
		}
	}
	if _, err := hostPort(c.RedisURL, "redis"); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("%w: http address %q: %w", ErrInvalidConfig, c.HTTPAddr, err)
	}
	if c.Dev && c.RedisCluster {
		return fmt.Errorf("%w: --dev runs a single in-process Redis-compatible server, not a cluster", ErrInvalidConfig)
	}
	if c.Dev && (c.NATS.Used() || c.RedisTLS.Used()) {
		return fmt.Errorf("%w: --dev runs its servers without TLS, NKeys or creds; drop the --nats-*/--redis-* files or run real servers", ErrInvalidConfig)
	}
	// Every file is read now: a missing or unusable one stops the start, rather than
	// leaving refundd retrying a connection that can never succeed.
	if _, err := c.NATS.Options(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.checkRedisTLS(); err != nil {
		return err
	}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: OTLP endpoint %q must be an http:// or https:// URL with a host, e.g. http://otel-collector:4318", ErrInvalidConfig, c.OTLPEndpoint)
		}
	}
	if strings.TrimSpace(c.Instance) == "" {
		return fmt.Errorf("%w: instance name is empty", ErrInvalidConfig)
	}
	return nil
}

// checkRedisTLS refuses TLS files for a redis:// URL and files that cannot be used.
func (c Config) checkRedisTLS() error {
	if !c.RedisTLS.Used() {
		return nil
	}
	rdb, err := connect.NewRedisClient(c.RedisURL, c.RedisCluster, c.RedisTLS)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return rdb.Close() // no connection is made until a command is sent
}

// hostPort is the host:port of a nats:// (or tls://) or redis:// (or rediss://) URL.
func hostPort(raw, scheme string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %s URL %q: %w", ErrInvalidConfig, scheme, raw, err)
	}
	if u.Scheme != scheme && !(scheme == "redis" && u.Scheme == "rediss") && !(scheme == "nats" && u.Scheme == "tls") {
		return "", fmt.Errorf("%w: %s URL %q must start with %s://", ErrInvalidConfig, scheme, raw, scheme)
	}
	if u.Port() == "" || u.Hostname() == "" {
		return "", fmt.Errorf("%w: %s URL %q needs a host and a port", ErrInvalidConfig, scheme, raw)
	}
	return u.Host, nil
}

// intSetting is an integer setting: the flag's value when it was given, else the
// environment variable's when set, else the flag's default.
func intSetting(fs *flag.FlagSet, getenv func(string) string, flagName, envName string, flagValue int) (int, error) {
	v := getenv(envName)
	if v == "" || flagGiven(fs, flagName) {
		return flagValue, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not a number", ErrInvalidConfig, envName, v)
	}
	return n, nil
}

// flagGiven says the flag was set on the command line, which wins over the environment.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
