package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
	"github.com/payinfra/refunds/producers"
)

// TestTheLeastPrivilegePermissionsExampleRunsTheEngine runs deploy/nats/permissions.conf,
// unchanged, under a nats-server with JetStream: refundd, as user refundd, provisions
// its streams and consumer and takes events end to end (billing publishes them, the
// payout gateway reads the decisions, a malformed one is dead-lettered), and the
// server refuses refundd a publish outside its permissions.
func TestTheLeastPrivilegePermissionsExampleRunsTheEngine(t *testing.T) {
	passwords := map[string]string{"refundd": "refundd-pw", "billing": "billing-pw", "console": "console-pw", "payout": "payout-pw"}
	env := map[string]string{}
	for user, pw := range passwords {
		env[strings.ToUpper(user)+"_PASSWORD"] = pw
	}
	natsURL := testenv.StartNATSWithPermissions(t, env)
	as := func(user string) string {
		return strings.Replace(natsURL, "://", "://"+user+":"+passwords[user]+"@", 1)
	}
	connectAs := func(user string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		nc, err := nats.Connect(as(user), opts...)
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}

	logs := &lockedBuffer{}
	capturedLogs = logs
	t.Cleanup(func() { capturedLogs = nil })
	d := startDaemon(t, as("refundd"), testenv.StartRedis(t).URL)

	// Upstream billing publishes the events; the payout gateway reads the decisions.
	_, billingJS := connectAs("billing")
	billing := *d
	billing.pub = producers.NewPublisher(billingJS)
	_, payoutJS := connectAs("payout")
	payout := *d
	payout.js = payoutJS

	const acct = "acct-perms"
	at := billing.openWithTopUp(t, acct)
	d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
	waitFor(t, func() string {
		if n := len(payout.outbound(t, acct)); n == 0 {
			return "the payout user reads no outbound event for " + acct
		}
		return ""
	})
	// The console publishes customer requests.
	_, consoleJS := connectAs("console")
	console := *d
	console.pub = producers.NewPublisher(consoleJS)
	console.withdraw(t, acct, "w-perms", at.Add(time.Minute), events.MethodOriginal, "10.00")
	d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "10.00", Withdrawable: "490.00"})
	// A malformed event is dead-lettered: refundd may publish there too.
	if _, err := billingJS.Publish(context.Background(), "billing.topup.received."+acct, []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() string {
		if !strings.Contains(logs.String(), "event refused and dead-lettered") {
			return "the malformed event was not dead-lettered"
		}
		return ""
	})

	// The consumer-lag gauge reads the consumer's info: -1 would mean it was refused.
	waitFor(t, func() string {
		resp, err := http.Get("http://" + d.httpAddr + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !regexp.MustCompile(`(?m)^refunds_intake_consumer_pending [0-9]`).Match(body) {
			return "the consumer lag gauge cannot be read:\n" + string(body)
		}
		return ""
	})

	// refundd may not publish what billing publishes.
	refused := make(chan error, 10)
	refunddNC, _ := connectAs("refundd", nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { refused <- err }))
	const outside = "billing.topup.received.x"
	if err := refunddNC.Publish(outside, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := refunddNC.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refused:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), outside) {
			t.Errorf("error %v, want a permissions violation for %s", err, outside)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the server did not refuse refundd's publish to %s", outside)
	}

	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	// The engine itself never ran into its permissions.
	if strings.Contains(strings.ToLower(logs.String()), "permissions violation") {
		t.Errorf("refundd was refused something it needs:\n%s", logs.String())
	}
}
