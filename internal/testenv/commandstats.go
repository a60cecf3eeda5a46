package testenv

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// CommandTime is one Redis command's share since its statistics were last reset
// (CONFIG RESETSTAT): how often it ran, and the microseconds Redis's main thread spent
// executing it (INFO commandstats). A command a script called counts in the script's
// time (evalsha) too, and again under its own name: evalsha less those is the script's
// own work (Lua, and passing arguments and replies between Lua and Redis).
type CommandTime struct {
	Command     string
	Calls, Usec int64
}

// CommandTimes reads INFO commandstats, the commands with the most time first.
func CommandTimes(ctx context.Context, rdb redis.UniversalClient) ([]CommandTime, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	var all []CommandTime
	for _, line := range strings.Split(info, "\r\n") {
		rest, isCommand := strings.CutPrefix(line, "cmdstat_")
		name, stats, ok := strings.Cut(rest, ":")
		if !isCommand || !ok {
			continue // the section's header, or its end
		}
		c := CommandTime{Command: name}
		for _, stat := range strings.Split(stats, ",") {
			key, value, _ := strings.Cut(stat, "=")
			switch key {
			case "calls":
				c.Calls, _ = strconv.ParseInt(value, 10, 64)
			case "usec":
				c.Usec, _ = strconv.ParseInt(value, 10, 64)
			}
		}
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b CommandTime) int { return cmp.Compare(b.Usec, a.Usec) })
	return all, nil
}
