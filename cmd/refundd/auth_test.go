package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/internal/testenv"
)

func TestRefunddAuthenticatesToNATSAndRedisFromItsURLs(t *testing.T) {
	natsURL := testenv.StartNATSWithAuth(t, "refundd", "nats-s3cret")
	redisURL := testenv.StartRedisWithACL(t, "refundd", "redis-s3cret")

	// Both servers really refuse a client without the credentials.
	if nc, err := nats.Connect(natsURL); err == nil {
		nc.Close()
		t.Fatal("NATS admitted a client without credentials")
	}
	opts, _ := redis.ParseURL(redisURL)
	anon := redis.NewClient(opts)
	defer anon.Close()
	if err := anon.Ping(context.Background()).Err(); err == nil {
		t.Fatal("Redis answered a client without credentials")
	}

	withCreds := func(url, user, password string) string {
		scheme, rest, _ := strings.Cut(url, "://")
		return scheme + "://" + user + ":" + password + "@" + rest
	}
	// refundd (and the test's publisher) take the credentials from the URLs, and its
	// logs never show them.
	logs := &lockedBuffer{}
	capturedLogs = logs
	t.Cleanup(func() { capturedLogs = nil })
	d := startDaemon(t, withCreds(natsURL, "refundd", "nats-s3cret"), withCreds(redisURL, "refundd", "redis-s3cret"))
	d.openWithTopUp(t, "acct-auth")
	d.waitForAccount(t, "acct-auth", accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"nats-s3cret", "redis-s3cret"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs carry the password %q", secret)
		}
	}
	if logs.String() == "" {
		t.Error("no log output was captured: the scan would prove nothing")
	}
}
