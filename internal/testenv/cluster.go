package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/payinfra/refunds/internal/connect"
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
	busPorts := make([]int, 0, masters)
	for range masters {
		port, err := pickHostPort()
		if err != nil {
			tb.Fatalf("testenv: redis cluster: %v", err)
		}
		// The cluster bus port is chosen too: Redis's default, the port plus 10000,
		// falls in the kernel's ephemeral range, where a client connection may hold it.
		busPort, err := pickHostPort()
		if err != nil || busPort == port {
			tb.Fatalf("testenv: redis cluster bus port: %v (%d)", err, busPort)
		}
		runOnHostNetwork(tb, "redis cluster node", image, "Ready to accept connections",
			"--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(busPort), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+strconv.Itoa(port)+".conf",
			"--cluster-announce-ip", "127.0.0.1", "--dir", "/data", "--appendonly", "yes")
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
		busPorts = append(busPorts, busPort)
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
			// MEET names the first node's bus port: without it Redis assumes the port plus 10000.
			if err := node.Do(ctx, "CLUSTER", "MEET", host, port, busPorts[0]).Err(); err != nil {
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
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: connect.DefaultRedisProtocol})
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// NATSCluster is a JetStream cluster of nodes on this host's network.
type NATSCluster struct {
	// URL lists every node's client address, comma-separated, as nats.Connect takes it.
	URL   string
	nodes []*testcontainers.DockerContainer
}

// Kill stops node i at once (SIGKILL), as a crash would.
func (c *NATSCluster) Kill(ctx context.Context, i int) error {
	return c.nodes[i].Stop(ctx, ptr(time.Duration(0)))
}

func ptr[T any](v T) *T { return &v }

// StartNATSCluster starts a three-node NATS cluster with JetStream from the project's
// own deploy/nats/cluster.conf (every write fsynced: sync_interval always), each node
// in its own container on the host's network, and returns once every node has logged
// that it is ready.
func StartNATSCluster(tb testing.TB) *NATSCluster {
	tb.Helper()
	Docker(tb)
	checkRyukDisabled(tb)
	image := requireImages(tb).nats
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("testenv: nats cluster: %v", err)
	}
	const n = 3
	var clientPorts, routePorts, monitorPorts [n]int
	for i := range n {
		for _, port := range []*int{&clientPorts[i], &routePorts[i], &monitorPorts[i]} {
			if *port, err = pickHostPort(); err != nil {
				tb.Fatalf("testenv: nats cluster: %v", err)
			}
		}
	}
	c := &NATSCluster{}
	var urls []string
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		env := map[string]string{
			"SERVER_NAME":    name,
			"CLIENT_LISTEN":  fmt.Sprintf("127.0.0.1:%d", clientPorts[i]),
			"MONITOR_LISTEN": fmt.Sprintf("127.0.0.1:%d", monitorPorts[i]),
			"CLUSTER_LISTEN": fmt.Sprintf("127.0.0.1:%d", routePorts[i]),
			"STORE_DIR":      "/data/" + name,
		}
		for j := range n {
			env[fmt.Sprintf("ROUTE_%d", j+1)] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[j])
		}
		c.nodes = append(c.nodes, runOnHostNetworkWith(tb, "nats "+name, image, "Server is ready",
			[]testcontainers.ContainerCustomizer{
				testcontainers.WithEnv(env),
				testcontainers.WithFiles(testcontainers.ContainerFile{
					HostFilePath: filepath.Join(root, "deploy", "nats", "cluster.conf"), ContainerFilePath: "/etc/nats/cluster.conf", FileMode: 0o644,
				}),
			},
			"-c", "/etc/nats/cluster.conf"))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	c.URL = strings.Join(urls, ",")
	return c
}

// StartNATSWithAuth starts one NATS server with JetStream that admits only user with
// password, on the host's network, and returns its URL without credentials.
func StartNATSWithAuth(tb testing.TB, user, password string) string {
	tb.Helper()
	port, _ := hostNetworkServer(tb, "nats (auth)", requireImagesFor(tb).nats, "Server is ready",
		func(port int) []string {
			return []string{"--addr", "127.0.0.1", "--port", strconv.Itoa(port), "--jetstream", "--store_dir", "/data",
				"--user", user, "--pass", password}
		})
	return "nats://127.0.0.1:" + strconv.Itoa(port)
}

// StartRedisWithACL starts one Redis server whose only user is user with password (the
// default user is off), on the host's network, and returns its URL without credentials.
func StartRedisWithACL(tb testing.TB, user, password string) string {
	tb.Helper()
	port, _ := hostNetworkServer(tb, "redis (acl)", requireImagesFor(tb).redis, "Ready to accept connections",
		func(port int) []string {
			return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", "/data", "--appendonly", "yes",
				"--user", "default", "off",
				"--user", user, "on", ">" + password, "~*", "&*", "+@all"}
		})
	return "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
}

func requireImagesFor(tb testing.TB) images {
	tb.Helper()
	Docker(tb)
	checkRyukDisabled(tb)
	return requireImages(tb)
}

// hostNetworkServer runs image with the arguments args gives for a free port, and
// opts (files, environment), on the host's network, until the test ends, and returns
// the port and the container.
func hostNetworkServer(tb testing.TB, name, image, readyLog string, args func(port int) []string, opts ...testcontainers.ContainerCustomizer) (int, *testcontainers.DockerContainer) {
	tb.Helper()
	port, err := pickHostPort()
	if err != nil {
		tb.Fatalf("testenv: %s: %v", name, err)
	}
	return port, runOnHostNetworkWith(tb, name, image, readyLog, opts, args(port)...)
}

// runOnHostNetwork runs image with args on the host's network, so that the addresses a
// server announces (cluster nodes) are the ones this process reaches, waits for its
// ready line, and removes it when the test ends.
func runOnHostNetwork(tb testing.TB, name, image, readyLog string, args ...string) *testcontainers.DockerContainer {
	tb.Helper()
	return runOnHostNetworkWith(tb, name, image, readyLog, nil, args...)
}

// runOnHostNetworkWith is runOnHostNetwork with more options (files, environment).
func runOnHostNetworkWith(tb testing.TB, name, image, readyLog string, opts []testcontainers.ContainerCustomizer, args ...string) *testcontainers.DockerContainer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout+30*time.Second)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, image, append([]testcontainers.ContainerCustomizer{
		testcontainers.WithLogger(tclog.TestLogger(tb)),
		testcontainers.WithLabels(map[string]string{ownerLabel: tb.Name()}),
		testcontainers.WithCmd(args...),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
		testcontainers.WithWaitStrategy(readyWait(readyLog, 1)),
	}, opts...)...)
	if ctr != nil {
		tb.Cleanup(func() {
			if tb.Failed() {
				dumpLogs(tb, name, ctr)
			}
			_ = testcontainers.TerminateContainer(ctr, testcontainers.StopTimeout(stopTimeout))
		})
	}
	if err != nil {
		tb.Fatalf("testenv: %s: %v", name, err)
	}
	return ctr
}

// StartNATSForBench starts a NATS server with JetStream for a benchmark: on the host's
// network, so no userland port proxy copies every byte, and with its store in a
// directory of the host, not on the container's overlay filesystem (which goes through
// fuse-overlayfs here). That is how a server runs in production: on its own network
// address, with its data on a volume. It cannot be killed or restarted.
func StartNATSForBench(tb testing.TB) *NATS {
	tb.Helper()
	profilePort, err := pickHostPort()
	if err != nil {
		tb.Fatalf("testenv: nats (bench): %v", err)
	}
	// --profile serves Go's pprof on 127.0.0.1 (idle unless asked), so a bench can
	// profile the server as it profiles refundd.
	port, ctr := hostNetworkServer(tb, "nats (bench)", requireImagesFor(tb).nats, "Server is ready",
		func(port int) []string {
			return []string{"--addr", "127.0.0.1", "--port", strconv.Itoa(port), "--jetstream", "--store_dir", "/data",
				"--profile", strconv.Itoa(profilePort)}
		}, dataOnHost(tb))
	return &NATS{URL: "nats://127.0.0.1:" + strconv.Itoa(port), ProfileURL: "http://127.0.0.1:" + strconv.Itoa(profilePort), HostPID: hostPID(ctr)}
}

// hostPID is the container's process as the host sees it, for a bench to read its CPU
// time and waits from /proc; 0 when Docker does not say, and a bench then reports none.
func hostPID(ctr *testcontainers.DockerContainer) int {
	if info, err := ctr.Inspect(context.Background()); err == nil && info.State != nil {
		return info.State.Pid
	}
	return 0
}

// StartRedisForBench starts a Redis server (append-only file, fsynced every second, as
// the image runs it) for a benchmark, as StartNATSForBench does: on the host's network,
// with its data in a directory of the host. It cannot be killed or restarted.
func StartRedisForBench(tb testing.TB) *Redis {
	tb.Helper()
	port, ctr := hostNetworkServer(tb, "redis (bench)", requireImagesFor(tb).redis, "Ready to accept connections",
		func(port int) []string {
			return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", "/data", "--appendonly", "yes"},
				ListpackArgs...)
		}, dataOnHost(tb))
	return &Redis{URL: "redis://127.0.0.1:" + strconv.Itoa(port) + "/0", HostPID: hostPID(ctr)}
}

// dataOnHost mounts a temporary directory of the host at /data.
func dataOnHost(tb testing.TB) testcontainers.ContainerCustomizer {
	dir := tb.TempDir()
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.Binds = append(hc.Binds, dir+":/data")
	})
}
