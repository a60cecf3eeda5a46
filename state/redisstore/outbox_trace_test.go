package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// forEachRedisClient is forEachRedis with the client too, for tests that write or read
// the outbox's raw entries.
func forEachRedisClient(t *testing.T, suite func(t *testing.T, s *redisstore.Store, rdb *redis.Client)) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) { suite(t, newStore(t, rdb), rdb) })
}

func balanceChanged(t *testing.T, account, id string) events.Event {
	t.Helper()
	ev, err := events.New(events.BalanceChanged, account, state.Source, id, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC),
		&events.BalanceChangedData{CauseID: "evt-" + id, CauseType: events.TopupReceived, Currency: "CNY", Cash: events.MustAmount("5.00"), Withdrawable: events.MustAmount("5.00")})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

const (
	traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceState  = "vendor=opaque"
)

// An outbound event is saved with the trace context of the step that caused it, in
// the step's atomic write, and an entry without one has no trace fields at all.
func TestTheOutboxKeepsEachStepsTraceContext(t *testing.T) {
	forEachRedisClient(t, func(t *testing.T, s *redisstore.Store, rdb *redis.Client) {
		ctx := context.Background()
		tests := []struct {
			name                    string
			traceParent, traceState string
			wantFields              []string
		}{
			{name: "none", wantFields: []string{"body", "id", "subject"}},
			{name: "traceparent", traceParent: traceParent, wantFields: []string{"body", "id", "subject", "traceparent"}},
			{name: "traceparent and tracestate", traceParent: traceParent, traceState: traceState, wantFields: []string{"body", "id", "subject", "traceparent", "tracestate"}},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				account := fmt.Sprintf("acct-trace-%d", i)
				step := state.Step{
					Event:   state.EventRef{AccountID: account, EventID: "evt-" + account},
					Account: accountWithCash(account, "5"),
					// Two outbound events: both carry the step's context.
					Outbound:    []events.Event{balanceChanged(t, account, "rf-a-"+account), balanceChanged(t, account, "rf-b-"+account)},
					TraceParent: tt.traceParent, TraceState: tt.traceState,
				}
				if out, err := s.Commit(ctx, []state.Step{step}); err != nil || out[0].Outcome != state.Applied {
					t.Fatalf("outcome %v, err %v", out, err)
				}
				raw, err := rdb.XRange(ctx, fmt.Sprintf("rf:{p%02d}:outbox", redisstore.Partition(account)), "-", "+").Result()
				if err != nil {
					t.Fatal(err)
				}
				var mine []redis.XMessage
				for _, m := range raw {
					if m.Values["subject"] == "refunds.account.balance_changed."+account {
						mine = append(mine, m)
					}
				}
				if len(mine) != 2 {
					t.Fatalf("%d entries for %s, want 2", len(mine), account)
				}
				for _, m := range mine {
					if got := sortedKeys(m.Values); fmt.Sprint(got) != fmt.Sprint(tt.wantFields) {
						t.Errorf("entry fields %v, want %v", got, tt.wantFields)
					}
				}
				entries, err := s.ReadOutbox(ctx, "relay-"+account, 1000)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, e := range entries {
					if e.Subject != "refunds.account.balance_changed."+account {
						continue
					}
					n++
					if e.TraceParent != tt.traceParent || e.TraceState != tt.traceState {
						t.Errorf("read entry %s with trace %q %q, want %q %q", e.ID, e.TraceParent, e.TraceState, tt.traceParent, tt.traceState)
					}
				}
				if n != 2 {
					t.Fatalf("read %d entries for %s, want 2", n, account)
				}
				if err := s.AckOutbox(ctx, entries); err != nil {
					t.Fatal(err)
				}
			})
		}

		t.Run("an entry written before trace contexts were kept reads as one without", func(t *testing.T) {
			const account = "acct-old-format"
			key := fmt.Sprintf("rf:{p%02d}:outbox", redisstore.Partition(account))
			// Exactly what apply.lua wrote before: id, subject, body.
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"id", "rf-old", "subject", "refunds.account.balance_changed." + account, "body", `{"id":"rf-old"}`}}).Err(); err != nil {
				t.Fatal(err)
			}
			entries, err := s.ReadOutbox(ctx, "relay-old", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].ID != "rf-old" || string(entries[0].Body) != `{"id":"rf-old"}` || entries[0].TraceParent != "" || entries[0].TraceState != "" {
				t.Fatalf("read %+v, want the old entry whole, without a trace context", entries)
			}
			if err := s.AckOutbox(ctx, entries); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("a parked entry keeps its trace context", func(t *testing.T) {
			const account = "acct-parked-trace"
			step := state.Step{
				Event: state.EventRef{AccountID: account, EventID: "evt-parked"}, Account: accountWithCash(account, "5"),
				Outbound: []events.Event{balanceChanged(t, account, "rf-parked")}, TraceParent: traceParent, TraceState: traceState,
			}
			if out, err := s.Commit(ctx, []state.Step{step}); err != nil || out[0].Outcome != state.Applied {
				t.Fatalf("outcome %v, err %v", out, err)
			}
			entries, err := s.ReadOutbox(ctx, "relay-park", 1000)
			if err != nil || len(entries) != 1 {
				t.Fatalf("read %d entries, err %v", len(entries), err)
			}
			if err := s.ParkOutbox(ctx, entries); err != nil {
				t.Fatal(err)
			}
			parked, err := rdb.XRange(ctx, fmt.Sprintf("rf:{p%02d}:outbox:parked", redisstore.Partition(account)), "-", "+").Result()
			if err != nil || len(parked) != 1 || parked[0].Values["traceparent"] != traceParent || parked[0].Values["tracestate"] != traceState {
				t.Fatalf("parked %+v, err %v: want the entry with its trace context", parked, err)
			}
		})
	})
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
