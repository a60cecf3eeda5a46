package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a nats-server with JetStream enabled, storing to /data inside its
// container (the defaults of the refunds-test/nats image).
type NATS struct {
	// URL is nats://host:port. It stays valid across Stop, Start and Restart:
	// the host port is pinned, so connected clients can simply reconnect.
	URL string
	// HostPID is the server's process id on the host, when known (StartNATSForBench).
	HostPID int
	// ProfileURL serves the server's pprof (/debug/pprof/), when it was started with
	// one (StartNATSForBench).
	ProfileURL string

	server *server
}

// StartNATS starts a NATS server for this test and terminates it when the test
// ends. It skips the test when Docker is unreachable (fails under CI=true, see
// Docker) and builds the test images first if they are missing.
func StartNATS(tb testing.TB) *NATS {
	tb.Helper()
	s := startServer(tb, natsSpec())
	return &NATS{URL: s.url, server: s}
}

// natsSpec is the NATS server as the image runs it.
func natsSpec() serverSpec {
	return serverSpec{
		name:     "nats",
		image:    func(imgs images) string { return imgs.nats },
		port:     "4222/tcp",
		scheme:   "nats",
		readyLog: "Server is ready",
	}
}

// StartDurableNATS is StartNATS with JetStream writing every message to disk before
// it acknowledges it (sync_interval: always), as deploy/nats/nats.conf runs it in
// production: a server killed with SIGKILL then keeps every event it acknowledged.
func StartDurableNATS(tb testing.TB) *NATS {
	tb.Helper()
	spec := natsSpec()
	spec.name = "nats (sync always)"
	spec.cmd = []string{"-c", "/etc/nats/durable.conf"}
	spec.files = []testcontainers.ContainerFile{{
		Reader:            strings.NewReader("port: 4222\njetstream {\n  store_dir: /data\n  sync_interval: always\n}\n"),
		ContainerFilePath: "/etc/nats/durable.conf",
		FileMode:          0o644,
	}}
	s := startServer(tb, spec)
	return &NATS{URL: s.url, server: s}
}

// Kill ends the server with SIGKILL, as a crash would, and keeps its container, so
// what the JetStream store had written survives until Start.
func (n *NATS) Kill(ctx context.Context) error { return n.server.kill(ctx) }

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
