package e2ebench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/payinfra/refunds/internal/testenv"
)

// clockTick is the unit of /proc's CPU times (USER_HZ): 100 per second on Linux.
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time the machine and the scenario's processes had used at one
// moment. Two samples say where a scenario's CPU went: on a machine whose cores the
// consumer, NATS and Redis share, the process that uses the most per event is the
// one to make cheaper.
type cpuSample struct {
	at time.Time
	// machineBusy is every core's time not idle (/proc/stat: user, nice, system, irq,
	// softirq, steal), summed over the cores; cores is how many /proc/stat lists.
	machineBusy time.Duration
	cores       int
	// consumer is the consumer's own: the refundd processes' (/proc/<pid>/stat), or
	// this process's for the loops, which run in it.
	consumer time.Duration
	// redis is the Redis server's, all its threads and the forks that rewrite its
	// append-only file (INFO cpu); redisForks is the forks' part. Redis counts a fork's
	// time once it has ended: one still rewriting at the closing sample counts under
	// the rest of the machine.
	redis, redisForks time.Duration
	// nats is the NATS server's (/proc/<pid>/stat), when its process is known.
	nats time.Duration
	// waited is how long each process's threads have waited for a core so far.
	waited waits
}

// waits is how long the consumer's, Redis's and NATS's threads were ready to run and
// waited for a core (the run queue: /proc/<pid>/task/*/schedstat), -1 where not known:
// a process given by address, or a kernel without schedstats.
type waits struct{ consumer, redis, nats time.Duration }

// processTime is a process's (or several's) CPU time, and how long its threads have
// waited for a core (-1 when not known).
type processTime struct{ cpu, waited time.Duration }

// sampleCPU reads the machine's and Redis's CPU time so far, beside the consumer's,
// given (selfCPU for a loop, daemonsCPU for refundd).
func (e *env) sampleCPU(s *scope, consumer processTime) cpuSample {
	s.Helper()
	c := cpuSample{at: time.Now(), consumer: consumer.cpu, waited: waits{consumer: consumer.waited, redis: -1, nats: -1}}
	c.machineBusy, c.cores = machineBusy(s)
	c.redis, c.redisForks = e.redisCPU(s)
	if e.natsPID != 0 {
		c.nats = processCPU(s, e.natsPID)
		c.waited.nats = runQueueWait(e.natsPID)
	}
	if e.redisPID != 0 {
		c.waited.redis = runQueueWait(e.redisPID)
	}
	return c
}

// selfCPU is this process's user and system time: the loops run in it.
func selfCPU(s *scope) processTime {
	s.Helper()
	d, err := testenv.SelfCPU()
	if err != nil {
		s.Fatal(err)
	}
	return processTime{cpu: d, waited: runQueueWait(os.Getpid())}
}

// daemonsCPU is the refundd processes' user and system time; they must be running.
func daemonsCPU(s *scope, ds []*daemon) processTime {
	s.Helper()
	var sum processTime
	for _, d := range ds {
		sum.cpu += processCPU(s, d.cmd.Process.Pid)
		waited := runQueueWait(d.cmd.Process.Pid)
		if waited < 0 || sum.waited < 0 {
			sum.waited = -1
			continue
		}
		sum.waited += waited
	}
	return sum
}

// runQueueWait is how long the process's threads have waited for a core, ready to run:
// the second field of each /proc/<pid>/task/<tid>/schedstat, in ns, summed. -1 when the
// kernel keeps no schedstats. A thread that has ended takes its count with it, so a
// difference of two readings can come out short, never long.
func runQueueWait(pid int) time.Duration {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return -1
	}
	var sum time.Duration
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if err != nil {
			continue // the thread ended
		}
		fields := strings.Fields(string(data))
		if len(fields) < 2 {
			return -1
		}
		ns, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return -1
		}
		sum += time.Duration(ns)
	}
	return sum
}

// cpuPerEvent is where a scenario's CPU went, per event consumed.
type cpuPerEvent struct {
	// nats is -1 when the NATS server's process is not known: rest holds it then.
	consumer, redis, redisForks, nats, rest time.Duration
	// busy is how much of the machine was busy, 1 for every core all the time.
	busy float64
	// waited is how long each process's threads waited for a core, per event.
	waited waits
}

// perEvent is what the scenario used between from and to over events.
func perEvent(from, to cpuSample, events int) cpuPerEvent {
	per := func(d time.Duration) time.Duration { return d / time.Duration(max(1, events)) }
	machine := to.machineBusy - from.machineBusy
	consumer, redis, nats := to.consumer-from.consumer, to.redis-from.redis, to.nats-from.nats
	natsPerEvent := time.Duration(-1)
	if to.nats > 0 {
		natsPerEvent = per(nats)
	}
	waited := func(from, to time.Duration) time.Duration {
		if from < 0 || to < 0 {
			return -1
		}
		return per(max(0, to-from))
	}
	return cpuPerEvent{
		waited: waits{
			consumer: waited(from.waited.consumer, to.waited.consumer),
			redis:    waited(from.waited.redis, to.waited.redis),
			nats:     waited(from.waited.nats, to.waited.nats),
		},
		consumer:   per(consumer),
		redis:      per(redis),
		redisForks: per(to.redisForks - from.redisForks),
		nats:       natsPerEvent,
		rest:       per(max(0, machine-consumer-redis-nats)),
		busy:       machine.Seconds() / (to.at.Sub(from.at).Seconds() * float64(max(1, to.cores))),
	}
}

func (c cpuPerEvent) String() string {
	rest := "the kernel's network and disk, this bench"
	if c.nats < 0 {
		rest = "NATS, the kernel's network, this bench"
	}
	return fmt.Sprintf("CPU per event: %s, the rest of the machine %s (%s); the machine %.0f%% busy",
		c.processes("consumer"), us(c.rest), rest, 100*c.busy)
}

// processes is the part of the CPU the consumer (named so), Redis and NATS (when its
// process is known) took.
func (c cpuPerEvent) processes(consumer string) string {
	s := fmt.Sprintf("%s %s, Redis %s (%s of it rewriting the append-only file)", consumer, us(c.consumer), us(c.redis), us(c.redisForks))
	if c.nats >= 0 {
		s += ", NATS " + us(c.nats)
	}
	return s
}

// waitedForACore is how long each process's threads waited for a core per event (""
// when none is known). Beside the CPU they used, it says whether the cores were the
// limit: a process that waits about as long as it runs is held up by the others on
// the same cores, however idle the machine is on average.
func (c cpuPerEvent) waitedForACore(consumer string) string {
	var parts []string
	for _, p := range []struct {
		name   string
		waited time.Duration
	}{{consumer, c.waited.consumer}, {"Redis", c.waited.redis}, {"NATS", c.waited.nats}} {
		if p.waited >= 0 {
			parts = append(parts, p.name+" "+us(p.waited))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "waited for a core (ready to run, in the run queue: /proc/<pid>/task/*/schedstat): " + strings.Join(parts, ", ")
}

// machineBusy is the time every core has spent not idle since boot (/proc/stat's cpu
// line; iowait counts as idle, since a core waiting on the disk can run anything), and
// how many cores there are (its cpuN lines: all online cores, as the cpu line sums,
// whatever this process may run on).
func machineBusy(s *scope) (time.Duration, int) {
	s.Helper()
	busy, cores, err := readMachineBusy()
	if err != nil {
		s.Fatal(err)
	}
	return busy, cores
}

// readMachineBusy is machineBusy for a goroutine of its own, which may not end the
// benchmark: it returns what went wrong instead.
func readMachineBusy() (time.Duration, int, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	lines := strings.Split(string(data), "\n")
	fields := strings.Fields(lines[0])
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat begins %q, not the cpu line", lines[0])
	}
	var busy int64
	// user nice system idle iowait irq softirq steal: all but idle and iowait.
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat %q: %w", lines[0], err)
		}
		busy += n
	}
	cores := 0
	for _, line := range lines[1:] {
		if rest, ok := strings.CutPrefix(line, "cpu"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			cores++
		}
	}
	return time.Duration(busy) * clockTick, cores, nil
}

// processCPU is a running process's user and system time (/proc/<pid>/stat).
func processCPU(s *scope, pid int) time.Duration {
	s.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		s.Fatalf("read the CPU time of process %d: %v", pid, err)
	}
	// After the command's name, which may hold spaces, in parentheses: utime and stime
	// are the 12th and 13th fields.
	end := strings.LastIndex(string(data), ") ")
	if end < 0 {
		s.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	fields := strings.Fields(string(data)[end+2:])
	if len(fields) < 13 {
		s.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			s.Fatalf("/proc/%d/stat: %q", pid, data)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}

// redisCPU is the time Redis has used: in all (its threads, and its forks that
// rewrote the append-only file), and in those forks.
func (e *env) redisCPU(s *scope) (all, forks time.Duration) {
	s.Helper()
	c, err := testenv.ReadRedisCPU(context.Background(), e.rdb)
	if err != nil {
		s.Fatal(err)
	}
	return c.Threads + c.Forks, c.Forks
}

// natsProfileSlice is how long each CPU profile of the NATS server lasts: pprof takes
// the duration up front, and a scenario's length is not known before it ends.
const natsProfileSlice = 2 * time.Second

// profileNATS writes CPU profiles of the NATS server to dir, one per
// natsProfileSlice, as <run>-nats-<k>.pprof, until stop is closed; the profile under
// way then completes. `go tool pprof` takes them all at once. The returned channel
// closes when it is done. Without a profile URL it writes nothing.
func (e *env) profileNATS(dir, run string, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	if e.natsProfileURL == "" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", e.natsProfileURL, int(natsProfileSlice/time.Second))
		// A server that stops answering must not hold the scenario up for ever.
		client := &http.Client{Timeout: natsProfileSlice + 10*time.Second}
		for k := 1; ; k++ {
			resp, err := client.Get(url)
			if err != nil {
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-nats-%d.pprof", run, k)), body, 0o644)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	return done
}
