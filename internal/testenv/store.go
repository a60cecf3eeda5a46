package testenv

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/state/redisstore"
)

// PreparedStore is a store on rdb (a container's client, or miniredis's) with its
// scripts loaded and outbox groups created, as refundd prepares it on start.
func PreparedStore(tb testing.TB, rdb redis.UniversalClient) *redisstore.Store {
	tb.Helper()
	store := redisstore.New(rdb)
	if err := store.Prepare(context.Background()); err != nil {
		tb.Fatalf("testenv: prepare store: %v", err)
	}
	return store
}
