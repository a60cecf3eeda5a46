package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// devServers are the in-process NATS JetStream server and Redis-compatible server of
// --dev mode, so the whole service runs on a machine with nothing but Go.
type devServers struct {
	nats    *server.Server
	redis   *miniredis.Miniredis
	tempDir string
}

func startDevServers(cfg Config) (*devServers, error) {
	natsAddr, err := hostPort(cfg.NATSURL, "nats")
	if err != nil {
		return nil, err
	}
	redisAddr, err := hostPort(cfg.RedisURL, "redis")
	if err != nil {
		return nil, err
	}
	d := &devServers{}
	// Temporary, like the Redis-compatible server's memory: the two stores live and
	// die together, so no restart can find events acknowledged whose state is gone.
	dir, err := os.MkdirTemp("", "refundd-dev-jetstream-")
	if err != nil {
		return nil, fmt.Errorf("dev: jetstream dir: %w", err)
	}
	d.tempDir = dir
	host, portText, _ := net.SplitHostPort(natsAddr)
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("dev: nats port %q: %w", portText, err)
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "refundd-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
	})
	if err != nil {
		d.close()
		return nil, fmt.Errorf("dev: nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		d.close()
		return nil, fmt.Errorf("dev: nats server did not start on %s", natsAddr)
	}
	d.nats = ns

	// miniredis keeps everything in memory and runs Lua and streams like Redis; it
	// does not expire keys on its own, so dev mode remembers event ids until exit.
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr(redisAddr); err != nil {
		d.close()
		return nil, fmt.Errorf("dev: redis-compatible server on %s: %w", redisAddr, err)
	}
	d.redis = mr
	return d, nil
}

func (d *devServers) close() {
	if d.redis != nil {
		d.redis.Close()
	}
	if d.nats != nil {
		d.nats.Shutdown()
		d.nats.WaitForShutdown()
	}
	if d.tempDir != "" {
		_ = os.RemoveAll(d.tempDir)
	}
}
