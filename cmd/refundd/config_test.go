package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigDefaultsAreTheContracts(t *testing.T) {
	cfg, err := loadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != "nats://127.0.0.1:4222" || cfg.RedisURL != "redis://127.0.0.1:6379/0" || cfg.HTTPAddr != "127.0.0.1:8080" || cfg.ReserveHold != 24*time.Hour || cfg.AckWait != 30*time.Second {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestConfigFlagsWinOverEnvironment(t *testing.T) {
	vars := map[string]string{"REFUNDS_NATS_URL": "nats://env:1", "REFUNDS_REDIS_URL": "redis://env:2/0", "REFUNDS_HTTP_ADDR": "env:3", "REFUNDS_RESERVE_HOLD": "5s"}
	cfg, err := loadConfig([]string{"--nats-url", "nats://flag:1", "--reserve-hold", "3s"}, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != "nats://flag:1" || cfg.ReserveHold != 3*time.Second {
		t.Errorf("flags lost: %+v", cfg)
	}
	if cfg.RedisURL != "redis://env:2/0" || cfg.HTTPAddr != "env:3" {
		t.Errorf("environment lost: %+v", cfg)
	}
}

func TestConfigRefusesUnsafeSettings(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"a hold that is not a duration":   {"REFUNDS_RESERVE_HOLD": "a day"},
		"a negative hold":                 {"REFUNDS_RESERVE_HOLD": "-1h"},
		"a NATS URL without a port":       {"REFUNDS_NATS_URL": "nats://localhost"},
		"a Redis URL of another scheme":   {"REFUNDS_REDIS_URL": "http://localhost:6379"},
		"an HTTP address without port":    {"REFUNDS_HTTP_ADDR": "localhost"},
		"an ack wait under a second":      {"REFUNDS_ACK_WAIT": "10ms"},
		"an ack wait that is no duration": {"REFUNDS_ACK_WAIT": "soon"},
		"an OTLP endpoint without scheme": {"REFUNDS_OTLP_ENDPOINT": "collector:4318"},
		"an OTLP endpoint of gRPC":        {"REFUNDS_OTLP_ENDPOINT": "grpc://collector:4317"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := loadConfig(nil, env(vars)); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigReadsACalendarFileAndRefusesABadOne(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/cal.json"
	if err := os.WriteFile(good, []byte(`{"name":"test","zone_offset":"+08:00","from":"2030-01-01","until":"2030-12-31","holidays":["2030-01-01"],"working_weekend_days":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig([]string{"--calendar", good}, env(nil))
	if err != nil || cfg.Calendar.Name() != "test" {
		t.Fatalf("calendar %q, err %v", cfg.Calendar.Name(), err)
	}
	bad := dir + "/bad.json"
	if err := os.WriteFile(bad, []byte(`{"name":"bad","zone_offset":"+08:00","from":"2030-01-01","until":"2029-12-31"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{bad, dir + "/missing.json"} {
		if _, err := loadConfig(nil, env(map[string]string{"REFUNDS_CALENDAR": path})); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: error %v, want ErrInvalidConfig", path, err)
		}
	}
}

func TestRefunddRefusesToStartPastTheCalendarsEnd(t *testing.T) {
	cal := state.DefaultCalendar()
	if err := requireCalendarCovers(cal, cal.Until().Add(time.Second)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("error %v a second after the calendar's end, want ErrInvalidConfig", err)
	}
	if err := requireCalendarCovers(cal, cal.Until().Add(-time.Hour)); err != nil {
		t.Fatalf("an hour before the end: %v", err)
	}
}

func TestDevDataIsRefusedBecauseTheDevRedisStateDoesNotSurviveARestart(t *testing.T) {
	_, err := loadConfig([]string{"--dev", "--dev-data", t.TempDir()}, env(nil))
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Redis state") {
		t.Fatalf("error %v, want --dev-data refused with the reason", err)
	}
}

func TestALoggedURLNeverShowsItsPassword(t *testing.T) {
	if got := redacted("redis://refundd:s3cret@redis:6379/0"); strings.Contains(got, "s3cret") {
		t.Fatalf("redacted to %q", got)
	}
}

func TestIntegerSettingsComeFromTheFlagElseTheEnvironmentElseTheirDefault(t *testing.T) {
	for _, tc := range []struct {
		flag, env         string
		of                func(Config) int
		fallback          int
		fromEnv, fromFlag string
		wantEnv, wantFlag int
		bad               []string
	}{
		{"stream-replicas", "REFUNDS_STREAM_REPLICAS", func(c Config) int { return c.StreamReplicas }, 1, "3", "1", 3, 1, []string{"2", "0", "three"}},
		{"cached-accounts", "REFUNDS_CACHED_ACCOUNTS", func(c Config) int { return c.CachedAccounts }, redisstore.DefaultCachedAccounts,
			"150000", "1000", 150_000, 1000, []string{"0", "-5", "lots"}},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			cfg, err := loadConfig(nil, env(nil))
			if err != nil || tc.of(cfg) != tc.fallback {
				t.Fatalf("default: %d, err %v; want %d", tc.of(cfg), err, tc.fallback)
			}
			cfg, err = loadConfig(nil, env(map[string]string{tc.env: tc.fromEnv}))
			if err != nil || tc.of(cfg) != tc.wantEnv {
				t.Fatalf("from %s=%s: %d, err %v", tc.env, tc.fromEnv, tc.of(cfg), err)
			}
			cfg, err = loadConfig([]string{"--" + tc.flag, tc.fromFlag}, env(map[string]string{tc.env: tc.fromEnv}))
			if err != nil || tc.of(cfg) != tc.wantFlag {
				t.Fatalf("the flag did not win: %d, err %v", tc.of(cfg), err)
			}
			for _, bad := range tc.bad {
				if _, err := loadConfig(nil, env(map[string]string{tc.env: bad})); !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("%s=%q: err %v, want it refused", tc.env, bad, err)
				}
			}
		})
	}
}

// securityFiles are usable and unusable files for the NATS and Redis security flags.
type securityFiles struct {
	ca, cert, key, seed, creds, accountSeed, notPEM, missing string
}

func writeSecurityFiles(t *testing.T) securityFiles {
	t.Helper()
	dir := t.TempDir()
	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "client")
	user, _ := nkeys.CreateUser()
	seed, _ := user.Seed()
	account, _ := nkeys.CreateAccount()
	accountSeed, _ := account.Seed()
	userPub, _ := user.PublicKey()
	token, err := jwt.NewUserClaims(userPub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := jwt.FormatUserConfig(token, seed)
	f := securityFiles{ca: ca.File, cert: cert, key: key, missing: dir + "/missing.pem"}
	for path, data := range map[*string][]byte{&f.seed: seed, &f.creds: creds, &f.accountSeed: accountSeed, &f.notPEM: []byte("not a certificate\n")} {
		file, err := os.CreateTemp(dir, "file")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := file.Write(data); err != nil {
			t.Fatal(err)
		}
		file.Close()
		*path = file.Name()
	}
	return f
}

func TestConfigTakesTheSecurityFilesFromFlagsOrTheEnvironment(t *testing.T) {
	f := writeSecurityFiles(t)
	vars := map[string]string{
		"REFUNDS_NATS_CREDS": f.creds, "REFUNDS_NATS_CA": f.ca, "REFUNDS_NATS_CERT": f.cert, "REFUNDS_NATS_KEY": f.key,
		"REFUNDS_REDIS_URL": "rediss://127.0.0.1:6380/0", "REFUNDS_REDIS_CA": f.notPEM, "REFUNDS_REDIS_CERT": f.cert, "REFUNDS_REDIS_KEY": f.key,
	}
	// The flag wins over the environment's unusable CA file.
	cfg, err := loadConfig([]string{"--redis-ca", f.ca}, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{}.NATS
	want.CredsFile, want.CAFile, want.CertFile, want.KeyFile = f.creds, f.ca, f.cert, f.key
	if cfg.NATS != want {
		t.Errorf("NATS settings %+v, want %+v", cfg.NATS, want)
	}
	if cfg.RedisTLS.CAFile != f.ca || cfg.RedisTLS.CertFile != f.cert || cfg.RedisTLS.KeyFile != f.key {
		t.Errorf("Redis TLS settings %+v", cfg.RedisTLS)
	}
	opts, err := natsOptions(cfg, zerolog.Nop())
	if err != nil || len(opts) == 0 {
		t.Fatalf("nats options: %d, %v", len(opts), err)
	}

	cfg, err = loadConfig([]string{"--nats-nkey", f.seed, "--redis-cluster", "--redis-url", "rediss://127.0.0.1:7000?addr=127.0.0.1:7001", "--redis-ca", f.ca}, env(nil))
	if err != nil || cfg.NATS.NKeyFile != f.seed || cfg.NATS.Auth() != "nkey" {
		t.Fatalf("nkey and a TLS cluster: %+v, %v", cfg.NATS, err)
	}
}

func TestConfigRefusesContradictoryOrUnusableSecuritySettings(t *testing.T) {
	f := writeSecurityFiles(t)
	const tlsRedis = "rediss://127.0.0.1:6380/0"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"creds and an nkey together", []string{"--nats-creds", f.creds, "--nats-nkey", f.seed}, "exclusive"},
		{"a missing creds file", []string{"--nats-creds", f.missing}, "no such file"},
		{"a creds file without a JWT", []string{"--nats-creds", f.seed}, "no user JWT"},
		{"a missing nkey file", []string{"--nats-nkey", f.missing}, "no such file"},
		{"an account seed as the user's nkey", []string{"--nats-nkey", f.accountSeed}, "user"},
		{"a missing NATS CA", []string{"--nats-ca", f.missing}, "no such file"},
		{"a NATS CA without a certificate", []string{"--nats-ca", f.notPEM}, "no PEM certificate"},
		{"a NATS client certificate without its key", []string{"--nats-cert", f.cert}, "give both"},
		{"a NATS client key that is not the certificate's", []string{"--nats-cert", f.cert, "--nats-key", f.seed}, "--nats-key"},
		{"a Redis CA with a redis:// URL", []string{"--redis-ca", f.ca}, "rediss://"},
		{"a Redis CA with a redis:// cluster URL", []string{"--redis-cluster", "--redis-url", "redis://127.0.0.1:7000", "--redis-ca", f.ca}, "rediss://"},
		{"a missing Redis CA", []string{"--redis-url", tlsRedis, "--redis-ca", f.missing}, "no such file"},
		{"a Redis CA without a certificate", []string{"--redis-url", tlsRedis, "--redis-ca", f.notPEM}, "no PEM certificate"},
		{"a Redis client key without its certificate", []string{"--redis-url", tlsRedis, "--redis-key", f.key}, "give both"},
		{"--dev with a NATS CA", []string{"--dev", "--nats-ca", f.ca}, "--dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(tc.args, env(nil))
			if !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, connect.ErrInvalid) && !strings.Contains(err.Error(), "--dev") {
				t.Fatalf("error %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			for _, secret := range []string{readFile(t, f.seed), readFile(t, f.accountSeed)} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error carries a seed: %v", err)
				}
			}
		})
	}
}

func TestConfigOTLPExporterIsOffByDefault(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		vars         map[string]string
		wantEndpoint string
		wantFromEnv  bool
	}{
		{name: "nothing set: off"},
		{name: "REFUNDS_OTLP_ENDPOINT", vars: map[string]string{"REFUNDS_OTLP_ENDPOINT": "http://env:4318"}, wantEndpoint: "http://env:4318"},
		{name: "the flag wins", args: []string{"--otlp-endpoint", "https://flag:4318"}, vars: map[string]string{"REFUNDS_OTLP_ENDPOINT": "http://env:4318"}, wantEndpoint: "https://flag:4318"},
		{name: "OTEL_EXPORTER_OTLP_ENDPOINT", vars: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"}, wantFromEnv: true},
		{name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", vars: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://otel:4318/v1/traces"}, wantFromEnv: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(tt.args, env(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OTLPEndpoint != tt.wantEndpoint || cfg.OTLPFromEnv != tt.wantFromEnv {
				t.Fatalf("endpoint %q from env %v, want %q %v", cfg.OTLPEndpoint, cfg.OTLPFromEnv, tt.wantEndpoint, tt.wantFromEnv)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
