package main

import (
	"errors"
	"testing"
	"time"
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
		"a hold that is not a duration": {"REFUNDS_RESERVE_HOLD": "a day"},
		"a negative hold":               {"REFUNDS_RESERVE_HOLD": "-1h"},
		"a NATS URL without a port":     {"REFUNDS_NATS_URL": "nats://localhost"},
		"a Redis URL of another scheme": {"REFUNDS_REDIS_URL": "http://localhost:6379"},
		"an HTTP address without port":  {"REFUNDS_HTTP_ADDR": "localhost"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := loadConfig(nil, env(vars)); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v, want ErrInvalidConfig", err)
			}
		})
	}
}
