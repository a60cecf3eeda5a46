package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/state/redisstore"
)

type fakeDurability redisstore.Durability

func (f fakeDurability) Durability(context.Context) (redisstore.Durability, error) {
	return redisstore.Durability(f), nil
}

func TestRefunddRefusesARedisThatDoesNotPersist(t *testing.T) {
	tests := []struct {
		name    string
		redis   fakeDurability
		cfg     Config
		refused bool
	}{
		{"the append-only file off", fakeDurability{Known: true, AppendOnly: false}, Config{}, true},
		{"the append-only file off, and that is intended", fakeDurability{Known: true}, Config{AllowVolatileRedis: true}, false},
		{"the append-only file on, fsync every second (a warning)", fakeDurability{Known: true, AppendOnly: true, FsyncPolicy: "everysec"}, Config{}, false},
		{"the append-only file on, fsync always", fakeDurability{Known: true, AppendOnly: true, FsyncPolicy: "always"}, Config{}, false},
		{"a Redis that will not say (a warning)", fakeDurability{}, Config{}, false},
		{"the dev server, in memory by design", fakeDurability{Known: true}, Config{Dev: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := requireDurableRedis(context.Background(), tc.redis, tc.cfg, zerolog.Nop())
			if refused := errors.Is(err, ErrInvalidConfig); refused != tc.refused {
				t.Fatalf("err %v, want refused %t", err, tc.refused)
			}
		})
	}
}

func TestRefunddStopsAtStartAgainstARealRedisWithoutItsAppendOnlyFile(t *testing.T) {
	redis := testenv.StartRedis(t)
	rdb := redis.Client(t)
	if d, err := redisstore.New(rdb).Durability(context.Background()); err != nil || !d.Known || !d.AppendOnly {
		t.Fatalf("the test Redis reports %+v, %v; want the append-only file on", d, err)
	}
	if err := rdb.ConfigSet(context.Background(), "appendonly", "no").Err(); err != nil {
		t.Fatal(err)
	}
	cfg := Config{NATSURL: testenv.StartNATS(t).URL, RedisURL: redis.URL, HTTPAddr: "127.0.0.1:0", ReserveHold: time.Hour, Instance: "volatile"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, cfg, zerolog.Nop(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("run returned %v, want a refusal of the volatile Redis", err)
	}
}

func TestRefunddRunsOnARedisClusterOfThreeMasters(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3)
	addrs := cluster.Options().Addrs
	url := "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	d := startDaemon(t, testenv.StartNATS(t).URL, url, func(c *Config, _ *hooks) { c.RedisCluster = true })
	const acct = "acct-on-cluster"
	at := d.openWithTopUp(t, acct)
	d.withdraw(t, acct, "w-cluster", at.Add(time.Minute), "designated", "40.00")
	d.waitForCase(t, "w-cluster", "in_review")
	d.reviewDecision(t, acct, "w-cluster", "rejected", at.Add(2*time.Minute))
	d.waitForCase(t, "w-cluster", "rejected") // ended: found through the index, in its own slot
	d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
}
