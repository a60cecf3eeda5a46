package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/payinfra/refunds/internal/connect"
	"github.com/payinfra/refunds/state/redisstore"
)

// endedCasesApart moves every ended case kept in its account's hash apart, before a
// rollback to a version that reads them there alone (redisstore.MoveEndedCasesApart).
func endedCasesApart(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ended-cases-apart", flag.ContinueOnError)
	fs.SetOutput(out)
	redisURL := fs.String("redis-url", envOr("REFUNDS_REDIS_URL", "redis://127.0.0.1:6379/0"), "the engine's Redis (env REFUNDS_REDIS_URL)")
	cluster := fs.Bool("redis-cluster", envOr("REFUNDS_REDIS_CLUSTER", "") == "true", "the URL names the seed nodes of a Redis Cluster (env REFUNDS_REDIS_CLUSTER=true)")
	var tlsFiles connect.RedisTLS
	tlsFiles.RegisterFlags(fs, os.Getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("ended-cases-apart takes no arguments, got %q", fs.Args())
	}
	rdb, err := connect.NewRedisClient(*redisURL, *cluster, tlsFiles)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	moved, err := redisstore.New(rdb).MoveEndedCasesApart(ctx, func(p redisstore.EndedCasesMoved) {
		fmt.Fprintf(out, "looked at %d accounts, moved %d ended cases\n", p.Accounts, p.Cases)
	})
	if err != nil {
		return fmt.Errorf("after %d accounts looked at and %d cases moved: %w", moved.Accounts, moved.Cases, err)
	}
	_, err = fmt.Fprintf(out, "done: %d ended cases moved, %d accounts hold none in their hash; once every instance has restarted since the first run, roll back\n", moved.Cases, moved.Accounts)
	return err
}
