package chaos_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payinfra/refunds/internal/testenv"
)

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
		inst := &instance{name: name, httpAddr: testenv.FreeAddr(t), logPath: filepath.Join(dir, name+".log")}
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
	if err := testenv.WaitReady(ctx, inst.httpAddr, nil); err != nil {
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
		if err := testenv.WaitReady(ctx, inst.httpAddr, nil); err != nil {
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
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s\n", inst.name, lines, testenv.LastLines(inst.logPath, lines))
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
