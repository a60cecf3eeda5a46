package testenv

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a nats-server with JetStream enabled, storing to /data inside its
// container (the defaults of the refunds-test/nats image).
type NATS struct {
	// URL is nats://host:port. It stays valid across Stop, Start and Restart:
	// the host port is pinned, so connected clients can simply reconnect.
	URL string

	server *server
}

// StartNATS starts a NATS server for this test and terminates it when the test
// ends. It skips the test when Docker is unreachable (fails under CI=true, see
// Docker) and builds the test images first if they are missing.
func StartNATS(tb testing.TB) *NATS {
	tb.Helper()
	s := startServer(tb, serverSpec{
		name:     "nats",
		image:    func(imgs images) string { return imgs.nats },
		port:     "4222/tcp",
		scheme:   "nats",
		readyLog: "Server is ready",
	})
	return &NATS{URL: s.url, server: s}
}

// Stop shuts the server down cleanly, as a deploy or crash-restart would, and
// keeps its container, so the JetStream store survives until Start.
func (n *NATS) Stop(ctx context.Context) error { return n.server.stop(ctx) }

// Start starts a stopped server again on the same URL and returns once it accepts
// clients. Streams, consumers and messages stored before Stop are still there.
func (n *NATS) Start(ctx context.Context) error { return n.server.start(ctx) }

// Restart is Stop followed by Start.
func (n *NATS) Restart(ctx context.Context) error { return n.server.restart(ctx) }

// JetStream is a JetStream client on a connection to this server that reconnects
// across Stop/Start, closed when the test ends.
func (n *NATS) JetStream(tb testing.TB, opts ...nats.Option) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(n.URL, append([]nats.Option{nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		tb.Fatalf("testenv: connect to %s: %v", n.URL, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("testenv: jetstream: %v", err)
	}
	return js
}
