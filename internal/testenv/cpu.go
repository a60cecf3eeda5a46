package testenv

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// SelfCPU is the user and system time this process has used so far.
func SelfCPU() (time.Duration, error) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano()), nil
}

// RedisCPU is the CPU time a Redis server has used so far (INFO cpu).
type RedisCPU struct {
	// MainThread is the thread that runs the commands.
	MainThread time.Duration
	// Threads is every thread's: the main one, and the background ones that close
	// and fsync files.
	Threads time.Duration
	// Forks is the forks' that rewrote the append-only file, once they have ended.
	Forks time.Duration
}

// ReadRedisCPU reads what rdb's server says it has used.
func ReadRedisCPU(ctx context.Context, rdb redis.UniversalClient) (RedisCPU, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return RedisCPU{}, fmt.Errorf("INFO cpu: %w", err)
	}
	var c RedisCPU
	for _, line := range strings.Split(info, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		var into *time.Duration
		switch name {
		case "used_cpu_sys_main_thread", "used_cpu_user_main_thread":
			into = &c.MainThread
		case "used_cpu_sys", "used_cpu_user":
			into = &c.Threads
		case "used_cpu_sys_children", "used_cpu_user_children":
			into = &c.Forks
		default:
			continue
		}
		seconds, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return RedisCPU{}, fmt.Errorf("INFO cpu %s: %w", line, err)
		}
		*into += time.Duration(seconds * float64(time.Second))
	}
	return c, nil
}
