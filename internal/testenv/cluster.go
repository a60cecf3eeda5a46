package testenv

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// StartRedisCluster starts a Redis Cluster of masters nodes (no replicas), each in its
// own container on the host's network so that the addresses the nodes announce to
// clients are the ones this process reaches, assigns the 16384 slots evenly, and
// returns a cluster client once every node reports the cluster ok. The containers
// are removed when the test ends.
func StartRedisCluster(tb testing.TB, masters int) *redis.ClusterClient {
	tb.Helper()
	Docker(tb)
	checkRyukDisabled(tb)
	image := requireImages(tb).redis
	ctx, cancel := context.WithTimeout(context.Background(), 2*startupTimeout)
	defer cancel()

	addrs := make([]string, 0, masters)
	for range masters {
		port, err := pickHostPort()
		if err != nil {
			tb.Fatalf("testenv: redis cluster: %v", err)
		}
		ctr, err := testcontainers.Run(ctx, image,
			testcontainers.WithLogger(tclog.TestLogger(tb)),
			testcontainers.WithLabels(map[string]string{ownerLabel: tb.Name()}),
			testcontainers.WithCmd("--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
				"--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf",
				"--cluster-announce-ip", "127.0.0.1", "--dir", "/data", "--appendonly", "yes"),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
			testcontainers.WithWaitStrategy(readyWait("Ready to accept connections", 1)),
		)
		if ctr != nil {
			tb.Cleanup(func() {
				if tb.Failed() {
					dumpLogs(tb, "redis cluster node", ctr)
				}
				_ = testcontainers.TerminateContainer(ctr, testcontainers.StopTimeout(stopTimeout))
			})
		}
		if err != nil {
			tb.Fatalf("testenv: redis cluster node on port %d: %v", port, err)
		}
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}

	nodes := make([]*redis.Client, len(addrs))
	for i, addr := range addrs {
		nodes[i] = redis.NewClient(&redis.Options{Addr: addr})
		defer nodes[i].Close()
	}
	const slots = 16384
	for i, node := range nodes {
		host, port, _ := strings.Cut(addrs[0], ":")
		if i > 0 {
			if err := node.ClusterMeet(ctx, host, port).Err(); err != nil {
				tb.Fatalf("testenv: cluster meet: %v", err)
			}
		}
		from, to := i*slots/len(nodes), (i+1)*slots/len(nodes)-1
		if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", from, to).Err(); err != nil {
			tb.Fatalf("testenv: cluster addslotsrange %d-%d: %v", from, to, err)
		}
	}
	deadline := time.Now().Add(startupTimeout)
	for {
		ok := true
		for _, node := range nodes {
			info, err := node.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(nodes))) {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testenv: the redis cluster of %v did not become ok", addrs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	tb.Cleanup(func() { _ = client.Close() })
	return client
}
