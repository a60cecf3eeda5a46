package e2ebench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payinfra/refunds/internal/testenv"
)

// daemon is one refundd process.
type daemon struct {
	name, httpAddr, logPath string
	cmd                     *exec.Cmd
	exited                  chan error
}

// startDaemons starts n refundd processes on e's servers, logging at warn to files,
// and stops them (SIGTERM) when s closes. extraEnv is added to their environment.
// With -e2e.cpuprofile, each writes its CPU profile there as <run>-<its name>.pprof.
func startDaemons(s *scope, bin string, e *env, run string, n int, extraEnv ...string) []*daemon {
	s.Helper()
	dir := s.TempDir()
	var ds []*daemon
	for i := range n {
		d := &daemon{name: fmt.Sprintf("refundd-%d", i+1), httpAddr: testenv.FreeAddr(s), exited: make(chan error, 1)}
		env := extraEnv
		if *benchCPUProfiles != "" {
			env = append(slices.Clone(extraEnv), "REFUNDS_CPU_PROFILE="+filepath.Join(*benchCPUProfiles, run+"-"+d.name+".pprof"))
		}
		d.logPath = filepath.Join(dir, d.name+".log")
		logFile, err := os.Create(d.logPath)
		if err != nil {
			s.Fatal(err)
		}
		d.cmd = exec.Command(bin)
		d.cmd.Env = append(append(os.Environ(),
			"REFUNDS_NATS_URL="+e.natsURL, "REFUNDS_REDIS_URL="+e.redisURL,
			"REFUNDS_HTTP_ADDR="+d.httpAddr, "REFUNDS_INSTANCE="+d.name,
			"REFUNDS_LOG_LEVEL=warn", "GOMEMLIMIT="+daemonMemoryLimit()), env...)
		d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
		if err := d.cmd.Start(); err != nil {
			s.Fatalf("start %s: %v", d.name, err)
		}
		go func() { d.exited <- d.cmd.Wait(); _ = logFile.Close() }()
		s.Cleanup(d.stop)
		ds = append(ds, d)
	}
	return ds
}

// daemonMemoryLimit is the refundd processes' GOMEMLIMIT: the environment's, else
// -e2e.gomemlimit ("" for none, which the runtime takes as no limit).
func daemonMemoryLimit() string {
	if limit, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return limit
	}
	return *benchMemoryLimit
}

// stop ends the process with SIGTERM, as a deploy would, and kills it after 30s.
func (d *daemon) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// waitReady polls /readyz until it answers 200, failing if the process exits first.
func (d *daemon) waitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := testenv.WaitReady(ctx, d.httpAddr, d.exited); err != nil {
		tb.Fatalf("%s not ready: %v\n%s", d.name, err, d.logTail(20))
	}
}

// peakRSS is the process's VmHWM (peak resident set size) in bytes, from
// /proc/<pid>/status; it must be read before the process exits.
func (d *daemon) peakRSS(tb testing.TB) int64 {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		tb.Fatalf("%s: %v", d.name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("%s: VmHWM %q: %v", d.name, rest, err)
			}
			return kb * 1024
		}
	}
	tb.Fatalf("%s: no VmHWM in /proc/%d/status", d.name, d.cmd.Process.Pid)
	return 0
}

// intakePhases reads the process's refunds_intake_phase_seconds_total and
// refunds_intake_workers from its /metrics, adding them to into.
func (d *daemon) intakePhases(tb testing.TB, into *intakeTime) {
	tb.Helper()
	resp, err := http.Get("http://" + d.httpAddr + "/metrics")
	if err != nil {
		tb.Fatalf("%s: %v", d.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s: read /metrics: %v", d.name, err)
	}
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		if phase, ok := strings.CutPrefix(name, `refunds_intake_phase_seconds_total{phase="`); ok {
			if into.seconds == nil {
				into.seconds = map[string]float64{}
			}
			into.seconds[strings.TrimSuffix(phase, `"}`)] += v
		} else if name == "refunds_intake_workers" {
			into.workers += v
		}
	}
}

func (d *daemon) logTail(lines int) string { return testenv.LastLines(d.logPath, lines) }

// panicked says the process logged a panic.
func (d *daemon) panicked() bool {
	data, _ := os.ReadFile(d.logPath)
	return strings.Contains(string(data), "panic")
}
