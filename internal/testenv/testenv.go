// Package testenv starts the real NATS JetStream and Redis servers that integration
// tests need, as Docker containers run through testcontainers-go.
//
// The images are never pulled: the test machines have Docker but no registry. They
// are built locally by deploy/images/build.sh (at most once per test process, and only
// when missing) and testenv refuses to start a container whose image is not present.
//
// Each container belongs to the test that started it and is terminated by t.Cleanup,
// pass or fail. testcontainers' reaper (Ryuk) is disabled, since its image cannot be
// pulled either; the cost is that a test binary killed outright (or a `go test
// -timeout` panic, which skips cleanups) leaves its containers behind. They carry the
// label io.payinfra.refunds.testenv, so
//
//	docker rm -f $(docker ps -aq --filter label=io.payinfra.refunds.testenv)
//
// removes them.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

const (
	// startupTimeout bounds how long a server may take to log that it is ready,
	// on first start and on every restart. Generous for loaded CI machines.
	startupTimeout = 60 * time.Second

	// stopTimeout is how long a server gets to shut down cleanly (flushing the
	// JetStream store or the Redis AOF) before Docker kills it.
	stopTimeout = 10 * time.Second

	// buildTimeout bounds deploy/images/build.sh; a cold build takes under a minute.
	buildTimeout = 15 * time.Minute

	// ownerLabel marks every container testenv starts, for manual clean-up.
	ownerLabel = "io.payinfra.refunds.testenv"
)

// disableRyuk turns testcontainers' reaper off before testcontainers first reads its
// configuration (lazily, once, behind a sync.Once; the environment overrides
// ~/.testcontainers.properties), unless the environment already decided. It runs on
// the first call into testenv, not at package init, so importing testenv changes
// nothing; checkRyukDisabled catches a binary that read the configuration earlier.
var disableRyuk = sync.OnceFunc(func() {
	if _, set := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !set {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
})

// Docker skips the test when the Docker daemon cannot be reached, except when the
// environment has CI=true: CI must really run the integration tests, so there the
// test fails instead. StartNATS and StartRedis call it; call it directly in tests
// that talk to Docker some other way.
func Docker(tb testing.TB) {
	tb.Helper()
	disableRyuk()
	if err := dockerReachable(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testenv: Docker is required when CI=true: %v", err)
		}
		tb.Skipf("testenv: Docker is not reachable, skipping: %v", err)
	}
}

// dockerReachable is evaluated once per process: when the daemon is down, every
// test should skip quickly rather than each wait for its own timeout.
var dockerReachable = sync.OnceValue(func() (err error) {
	// testcontainers panics on some discovery failures (no socket found at all).
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("find Docker: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("ping Docker: %w", err)
	}
	return nil
})

func checkRyukDisabled(tb testing.TB) {
	tb.Helper()
	if !testcontainers.ReadConfig().RyukDisabled {
		tb.Fatal("testenv: testcontainers read its configuration before testenv could disable Ryuk; " +
			"set TESTCONTAINERS_RYUK_DISABLED=true in the environment")
	}
}

// images are the tags of the test images, as deploy/images/build.sh reports them.
type images struct {
	nats  string
	redis string
}

// requireImages makes sure both images exist locally, running build.sh if not.
// The outcome, failure included, is shared by every test in the process: a broken
// build is not retried once per test.
func requireImages(tb testing.TB) images {
	tb.Helper()
	imgs, err := prepareImages()
	if err != nil {
		tb.Fatalf("testenv: test images: %v", err)
	}
	return imgs
}

var prepareImages = sync.OnceValues(func() (images, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()

	root, err := repoRoot()
	if err != nil {
		return images{}, err
	}
	script := filepath.Join(root, "deploy", "images", "build.sh")

	imgs, err := runBuildScript(ctx, script, "--print-tags")
	if err != nil {
		return images{}, err
	}
	missing, err := missingImages(ctx, imgs)
	if err != nil {
		return images{}, err
	}
	if len(missing) == 0 {
		return imgs, nil
	}

	fmt.Fprintf(os.Stderr, "testenv: images %s missing, running %s\n", strings.Join(missing, ", "), script)
	if imgs, err = runBuildScript(ctx, script); err != nil {
		return images{}, err
	}
	// This check is what guarantees testcontainers never tries to pull: it pulls
	// exactly when an image is absent.
	if missing, err = missingImages(ctx, imgs); err != nil {
		return images{}, err
	}
	if len(missing) > 0 {
		return images{}, fmt.Errorf("%s finished but %s still missing", script, strings.Join(missing, ", "))
	}
	return imgs, nil
})

// repoRoot walks up from the working directory (a package directory under `go test`)
// to the module root, recognised by go.mod next to deploy/images/build.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "deploy", "images", "build.sh")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod with deploy/images/build.sh above the working directory")
		}
		dir = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runBuildScript runs build.sh and parses the NATS_IMAGE/REDIS_IMAGE lines it prints
// on stdout. Its progress (stderr) is passed through: a cold build takes a while, and
// `go test` shows the output of a package that fails or runs with -v.
func runBuildScript(ctx context.Context, script string, args ...string) (images, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Dir = filepath.Dir(script)
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	if err := cmd.Run(); err != nil {
		return images{}, fmt.Errorf("%s %s: %w\n%s", script, strings.Join(args, " "), err, lastLines(stderr.String(), 20))
	}

	var imgs images
	scanner := bufio.NewScanner(&stdout)
	for scanner.Scan() {
		key, value, _ := strings.Cut(scanner.Text(), "=")
		switch key {
		case "NATS_IMAGE":
			imgs.nats = value
		case "REDIS_IMAGE":
			imgs.redis = value
		}
	}
	if imgs.nats == "" || imgs.redis == "" {
		return images{}, fmt.Errorf("%s %s printed no NATS_IMAGE/REDIS_IMAGE lines: %q", script, strings.Join(args, " "), stdout.String())
	}
	return imgs, nil
}

func missingImages(ctx context.Context, imgs images) ([]string, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()

	var missing []string
	for _, tag := range []string{imgs.nats, imgs.redis} {
		_, err := cli.ImageInspect(ctx, tag)
		switch {
		case errdefs.IsNotFound(err):
			missing = append(missing, tag)
		case err != nil:
			return nil, fmt.Errorf("inspect image %s: %w", tag, err)
		}
	}
	return missing, nil
}

// server is one container run by testenv: NATS and Redis differ only in their spec.
//
// Its host port is pinned when the container is created. Docker otherwise hands out
// a new ephemeral host port on every start, so a restart would move the server and
// strand every client holding its URL (the code under test, typically). With the
// port pinned, clients reconnect to the same URL, as they would in production.
type server struct {
	spec serverSpec
	url  string

	mu        sync.Mutex
	container *testcontainers.DockerContainer
	starts    int // how many times the ready line must appear in the logs by now
}

type serverSpec struct {
	name     string // for messages: "nats", "redis"
	image    func(images) string
	port     string                         // container port, e.g. "4222/tcp"
	scheme   string                         // URL scheme
	urlPath  string                         // appended to the URL, e.g. "/0"
	readyLog string                         // logged once per start, when the server accepts clients
	cmd      []string                       // replaces the image's arguments when set
	files    []testcontainers.ContainerFile // copied into the container before it starts
}

// createAttempts bounds retries when the chosen host port is taken between picking
// it and Docker binding it.
const createAttempts = 5

func startServer(tb testing.TB, spec serverSpec) *server {
	tb.Helper()
	Docker(tb)
	checkRyukDisabled(tb)
	image := spec.image(requireImages(tb))

	ctx, cancel := context.WithTimeout(context.Background(), startupTimeout+30*time.Second)
	defer cancel()

	var lastErr error
	for range createAttempts {
		hostPort, err := pickHostPort()
		if err != nil {
			tb.Fatalf("testenv: %s: %v", spec.name, err)
		}
		ctr, err := testcontainers.Run(ctx, image,
			testcontainers.WithLogger(tclog.TestLogger(tb)),
			testcontainers.WithLabels(map[string]string{ownerLabel: tb.Name()}),
			testcontainers.WithExposedPorts(spec.port),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.PortBindings = network.PortMap{
					network.MustParsePort(spec.port): {{HostPort: strconv.Itoa(hostPort)}},
				}
			}),
			testcontainers.WithWaitStrategy(readyWait(spec.readyLog, 1)),
			testcontainers.WithCmd(spec.cmd...),
			testcontainers.WithFiles(spec.files...),
		)
		if err != nil {
			lastErr = err
			retry := isPortConflict(err)
			if ctr != nil && !retry {
				dumpLogs(tb, spec.name, ctr)
			}
			if termErr := testcontainers.TerminateContainer(ctr); termErr != nil {
				tb.Errorf("testenv: %s: remove failed container: %v", spec.name, termErr)
			}
			if retry {
				continue
			}
			break
		}

		s := &server{spec: spec, container: ctr, starts: 1}
		tb.Cleanup(func() {
			if tb.Failed() {
				dumpLogs(tb, spec.name, ctr)
			}
			if err := testcontainers.TerminateContainer(ctr, testcontainers.StopTimeout(stopTimeout)); err != nil {
				tb.Errorf("testenv: %s: terminate container %s: %v", spec.name, ctr.GetContainerID(), err)
			}
		})
		host, err := publishedHost(ctx, ctr, hostPort)
		if err != nil {
			tb.Fatalf("testenv: %s: %v", spec.name, err)
		}
		s.url = spec.scheme + "://" + net.JoinHostPort(host, strconv.Itoa(hostPort)) + spec.urlPath
		return s
	}
	tb.Fatalf("testenv: start %s from %s: %v", spec.name, image, lastErr)
	return nil
}

// publishedHost finds the address at which the container's published port answers.
// Inside a container, testcontainers guesses the default gateway. That is right when
// the Docker socket is mounted from the host, and wrong when the daemon runs in the
// same container as the tests (as on the project's test machines), where ports are
// published on this machine itself; so loopback is tried first. The port was free
// here when picked, so whatever answers on loopback is Docker's binding for it.
// TESTCONTAINERS_HOST_OVERRIDE, when set, is taken as it is.
func publishedHost(ctx context.Context, ctr *testcontainers.DockerContainer, hostPort int) (string, error) {
	if host, ok := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); ok {
		return host, nil
	}
	candidates := []string{"127.0.0.1"}
	if guess, err := ctr.Host(ctx); err == nil && guess != "localhost" && guess != "127.0.0.1" {
		candidates = append(candidates, guess)
	}
	dialer := net.Dialer{Timeout: 2 * time.Second}
	for _, host := range candidates {
		conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(hostPort)))
		if err == nil {
			_ = conn.Close()
			return host, nil
		}
	}
	return "", fmt.Errorf("published port %d answers on none of %v; set TESTCONTAINERS_HOST_OVERRIDE to the Docker host's address", hostPort, candidates)
}

// readyWait waits for the n-th occurrence of the ready line. A container's log
// survives a restart, so after k starts the line must be seen k times: waiting for
// it once would return at once, before the restarted server is listening.
func readyWait(readyLog string, n int) wait.Strategy {
	return wait.ForLog(readyLog).WithOccurrence(n).WithStartupTimeout(startupTimeout)
}

// pickHostPort returns a port that is free on this host, from below the Linux
// ephemeral range (32768-60999). Docker assigns its own ephemeral host ports, and the
// kernel its client-side ports, from that range; staying under it means neither is
// likely to take the port while the container is stopped for a restart.
func pickHostPort() (int, error) {
	const low, high = 20000, 32768
	for range 100 {
		port := low + rand.IntN(high-low)
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free host port in [%d, %d)", low, high)
}

func isPortConflict(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use")
}

// stop stops the container gracefully; its filesystem, and so the data under /data,
// is kept.
func (s *server) stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	timeout := stopTimeout
	if err := s.container.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop %s: %w", s.spec.name, err)
	}
	return nil
}

// kill ends the server with SIGKILL, as a crash or the kernel's OOM killer would:
// nothing is flushed on the way out. The container and its data are kept for start.
func (s *server) kill(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("kill %s: %w", s.spec.name, err)
	}
	defer cli.Close()
	id := s.container.GetContainerID()
	if _, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill %s: %w", s.spec.name, err)
	}
	for {
		state, err := s.container.State(ctx)
		if err != nil {
			return fmt.Errorf("kill %s: %w", s.spec.name, err)
		}
		if !state.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kill %s: still running: %w", s.spec.name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// start starts the stopped container again and waits until the server is ready.
func (s *server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// testcontainers re-runs the container's wait strategy on every Start.
	s.container.WaitingFor = readyWait(s.spec.readyLog, s.starts+1)
	if err := s.container.Start(ctx); err != nil {
		if isPortConflict(err) {
			return fmt.Errorf("start %s: its host port was taken while it was stopped: %w", s.spec.name, err)
		}
		return fmt.Errorf("start %s: %w", s.spec.name, err)
	}
	s.starts++
	return nil
}

func (s *server) restart(ctx context.Context) error {
	if err := s.stop(ctx); err != nil {
		return err
	}
	return s.start(ctx)
}

// dumpLogs puts the tail of a container's log into the test output, so a failure
// caused by the server can be diagnosed from the test output alone.
func dumpLogs(tb testing.TB, name string, ctr *testcontainers.DockerContainer) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		tb.Logf("testenv: %s logs unavailable: %v", name, err)
		return
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Logf("testenv: %s logs unreadable: %v", name, err)
	}
	tb.Logf("testenv: last lines of the %s log:\n%s", name, lastLines(string(b), 40))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
