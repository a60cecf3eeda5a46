package testenv

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BuildCommand builds one of the project's commands (cmd/<name>: refundd, refundctl)
// as operators run it (go build, no race detector) into the test's temporary
// directory, and returns the binary's path.
func BuildCommand(tb testing.TB, name string) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/payinfra/refunds/cmd/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("testenv: build %s: %v\n%s", name, err, out)
	}
	return bin
}

// FreeAddr is a 127.0.0.1 address with a port free at the moment, for a process's
// HTTP listener.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: free address: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ErrExited is returned by WaitReady when the process exited before it was ready.
var ErrExited = errors.New("the process exited before it was ready")

// WaitReady polls a refundd's GET /readyz at httpAddr until it answers 200. It gives up
// when ctx ends, or, with exited set, when the process exits first (ErrExited wrapping
// its exit error).
func WaitReady(ctx context.Context, httpAddr string, exited <-chan error) error {
	client := http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case exitErr := <-exited:
			return errors.Join(ErrExited, exitErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LastLines is the end of a file (a process's log), for a failure's report.
func LastLines(path string, n int) string {
	data, _ := os.ReadFile(path)
	return lastLines(strings.TrimSpace(string(data)), n)
}
