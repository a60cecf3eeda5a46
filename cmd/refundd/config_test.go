package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/state"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestConfigDefaultsAreTheContracts(t *testing.T) {
	cfg, err := loadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATSURL != "nats://127.0.0.1:4222" || cfg.RedisURL != "redis://127.0.0.1:6379/0" || cfg.HTTPAddr != "127.0.0.1:8080" || cfg.ReserveHold != 24*time.Hour {
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

func TestStreamReplicasComeFromTheFlagOrTheEnvironment(t *testing.T) {
	cfg, err := loadConfig(nil, env(map[string]string{"REFUNDS_STREAM_REPLICAS": "3"}))
	if err != nil || cfg.StreamReplicas != 3 {
		t.Fatalf("replicas %d, err %v", cfg.StreamReplicas, err)
	}
	cfg, err = loadConfig([]string{"--stream-replicas", "1"}, env(map[string]string{"REFUNDS_STREAM_REPLICAS": "3"}))
	if err != nil || cfg.StreamReplicas != 1 {
		t.Fatalf("the flag did not win: replicas %d, err %v", cfg.StreamReplicas, err)
	}
	for _, bad := range []string{"2", "0", "three"} {
		if _, err := loadConfig(nil, env(map[string]string{"REFUNDS_STREAM_REPLICAS": bad})); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("replicas %q: err %v", bad, err)
		}
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
