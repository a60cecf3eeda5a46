package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// build builds one of the project's commands (refundd, refundctl) into a temporary
// directory and returns the binary's path.
func build(t *testing.T, command string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), command)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/payinfra/refunds/cmd/"+command)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", command, err, out)
	}
	return bin
}

// supervisor runs refundd processes and starts each again whenever it exits, as
// systemd or Kubernetes would, until stop.
type supervisor struct {
	t         *testing.T
	bin       string
	env       []string
	instances []*instance
	stopping  atomic.Bool
	wg        sync.WaitGroup
}

type instance struct {
	name     string
	httpAddr string
	logPath  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	starts int
	kills  int
}

func startSupervisor(t *testing.T, bin string, env []string, names ...string) *supervisor {
	t.Helper()
	s := &supervisor{t: t, bin: bin, env: env}
	dir := t.TempDir()
	for _, name := range names {
		inst := &instance{name: name, httpAddr: freeAddr(t), logPath: filepath.Join(dir, name+".log")}
		s.instances = append(s.instances, inst)
		s.wg.Add(1)
		go s.keepRunning(inst)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *supervisor) keepRunning(inst *instance) {
	defer s.wg.Done()
	logFile, err := os.OpenFile(inst.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Errorf("%s: log file: %v", inst.name, err)
		return
	}
	defer logFile.Close()
	for !s.stopping.Load() {
		cmd := exec.Command(s.bin)
		cmd.Env = append(append(os.Environ(), s.env...),
			"REFUNDS_HTTP_ADDR="+inst.httpAddr, "REFUNDS_INSTANCE="+inst.name)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		inst.mu.Lock()
		if err := cmd.Start(); err != nil {
			inst.mu.Unlock()
			s.t.Errorf("%s: start: %v", inst.name, err)
			return
		}
		inst.cmd = cmd
		inst.starts++
		inst.mu.Unlock()
		_ = cmd.Wait()
		// A supervisor waits a moment before it starts a crashed service again.
		time.Sleep(200 * time.Millisecond)
	}
}

// kill sends SIGKILL to instance i once it is ready, so every kill hits a process
// that holds work.
func (s *supervisor) kill(ctx context.Context, i int) error {
	inst := s.instances[i]
	if err := waitReady(ctx, inst.httpAddr); err != nil {
		return fmt.Errorf("%s never became ready to be killed: %w", inst.name, err)
	}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if err := inst.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", inst.name, err)
	}
	inst.kills++
	return nil
}

// killAll kills every instance at the same moment, once all are ready.
func (s *supervisor) killAll(ctx context.Context) error {
	for _, inst := range s.instances {
		if err := waitReady(ctx, inst.httpAddr); err != nil {
			return fmt.Errorf("%s never became ready to be killed: %w", inst.name, err)
		}
	}
	for _, inst := range s.instances {
		inst.mu.Lock()
		err := inst.cmd.Process.Signal(syscall.SIGKILL)
		inst.kills++
		inst.mu.Unlock()
		if err != nil {
			return fmt.Errorf("kill %s: %w", inst.name, err)
		}
	}
	return nil
}

// stop ends every instance with SIGTERM, as a deploy would, and waits for them.
func (s *supervisor) stop() {
	if s.stopping.Swap(true) {
		return
	}
	for _, inst := range s.instances {
		inst.mu.Lock()
		if inst.cmd != nil { // an instance that already exited only refuses the signal
			_ = inst.cmd.Process.Signal(syscall.SIGTERM)
		}
		inst.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		for _, inst := range s.instances {
			inst.mu.Lock()
			_ = inst.cmd.Process.Kill()
			inst.mu.Unlock()
		}
		<-done
	}
}

// logTail is the end of every instance's log, for a failure's report.
func (s *supervisor) logTail(lines int) string {
	var b strings.Builder
	for _, inst := range s.instances {
		data, _ := os.ReadFile(inst.logPath)
		all := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", inst.name, lines, strings.Join(all[max(0, len(all)-lines):], "\n"))
	}
	return b.String()
}

// logs is every instance's whole log.
func (s *supervisor) logs() string {
	var b strings.Builder
	for _, inst := range s.instances {
		data, _ := os.ReadFile(inst.logPath)
		b.Write(data)
	}
	return b.String()
}

func waitReady(ctx context.Context, addr string) error {
	client := http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
