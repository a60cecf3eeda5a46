package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/payinfra/refunds/consumers"
	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

// On a three-node NATS cluster with streams of three replicas, one node killed in the
// middle of the stream loses nothing: every consumption is counted once.
func TestANATSNodeKilledMidStreamLosesNothing(t *testing.T) {
	cluster := testenv.StartNATSCluster(t)
	d := startDaemon(t, cluster.URL, testenv.StartRedis(t).URL, func(_ *Config, h *hooks) {
		// Events delivered in a fetch whose reply died with the node come back after
		// the ack wait: 3 s here, so the check below (15 s) sees them redelivered
		// rather than the default 30 s.
		h.streams = consumers.StreamSettings{Replicas: 3, AckWait: 3 * time.Second}
	})
	const acct = "acct-nats-cluster"
	at := d.openWithTopUp(t, acct)
	publish := func(i int) {
		t.Helper()
		for attempt := 0; ; attempt++ {
			ev, err := events.New(events.ConsumptionRecorded, acct, "/billing", fmt.Sprintf("nc-%d", i), at.Add(time.Duration(i)*time.Second),
				&events.ConsumptionRecordedData{ConsumptionID: fmt.Sprintf("c%d", i), Amount: events.MustAmount("1.00")})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = d.pub.Publish(ctx, ev)
			cancel()
			if err == nil {
				return
			}
			if attempt == 20 {
				t.Fatalf("publish %d: %v", i, err)
			}
			time.Sleep(250 * time.Millisecond) // as upstream billing retries through a failover
		}
	}
	for i := range 100 {
		publish(i)
	}
	// The first node is the one refundd and the publisher connected to: both fail over.
	if err := cluster.Kill(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 200; i++ {
		publish(i)
	}
	d.waitForAccount(t, acct, accountJSON{Cash: "300.00", Held: "0.00", Withdrawable: "300.00"})
}
