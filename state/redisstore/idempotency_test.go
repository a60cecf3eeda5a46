package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// clock is a store's clock that a test moves by hand.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func preparedAt(t *testing.T, rdb *redis.Client, c *clock) *redisstore.Store {
	t.Helper()
	s := redisstore.New(rdb)
	s.SetClockForTest(c.Now)
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// commitOne commits one step and returns its outcome.
func commitOne(t *testing.T, s *redisstore.Store, st state.Step) state.Outcome {
	t.Helper()
	res, err := s.Commit(context.Background(), []state.Step{st})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome == state.Failed {
		t.Logf("step failed: %s", res[0].Reason)
	}
	return res[0].Outcome
}

// keysNamed lists the keys whose names contain part.
func keysNamed(t *testing.T, rdb *redis.Client, part string) []string {
	t.Helper()
	keys, err := rdb.Keys(context.Background(), "*"+part+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestAnEventIsRememberedForTheRetentionInItsAccountsOneHashOfRecords(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		c := &clock{now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
		s := preparedAt(t, rdb, c)
		retention := s.RetentionForTest()
		const fact = "billing.consumption.recorded:c-1"
		first := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-1"}, Account: accountWithCash("acct-r", "1"),
			Digest: "content-1", Fact: fact, FactDigest: "fact-1"}
		if got := commitOne(t, s, first); got != state.Applied {
			t.Fatalf("first event: %s", got)
		}
		if older := keysNamed(t, rdb, ":seen:"); len(older) > 0 {
			t.Fatalf("a store that never had the older layout wrote its keys: %v", older)
		}
		ids := redisstore.IDsKeyForTest("acct-r")
		if ttl := rdb.TTL(ctx, ids).Val(); ttl < retention || ttl > retention+retention/5 {
			t.Fatalf("the records expire in %s: want between the retention (%s) and a fifth more", ttl, retention)
		}

		// A day short of the retention, a later event trims the records: the first
		// one is young enough to stay, so its redelivery and its fact under another
		// id are still duplicates.
		c.now = c.now.Add(retention - 24*time.Hour)
		second := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-2"}, ExpectedVersion: first.NextVersion(),
			Account: accountWithCash("acct-r", "2"), Digest: "content-2"}
		if got := commitOne(t, s, second); got != state.Applied {
			t.Fatalf("second event: %s", got)
		}
		redelivered := first
		redelivered.ExpectedVersion = second.NextVersion()
		if got := commitOne(t, s, redelivered); got != state.Duplicate {
			t.Fatalf("the first event again, a day before the retention ends: %s, want a duplicate", got)
		}
		replayed := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-1-replayed"}, ExpectedVersion: second.NextVersion(),
			Account: accountWithCash("acct-r", "3"), Digest: "content-1r", Fact: fact, FactDigest: "fact-1"}
		if got := commitOne(t, s, replayed); got != state.Duplicate {
			t.Fatalf("the first event's fact under another id: %s, want a duplicate", got)
		}
		_, seen, err := s.Load(ctx, nil, []state.EventRef{first.Event, replayed.Event})
		if err != nil || seen[first.Event] != "content-1" || seen[replayed.Event] != "content-1r" {
			t.Fatalf("Load found %q and %q (%v): want each event's own content digest", seen[first.Event], seen[replayed.Event], err)
		}

		// Past the retention and the fifth after it, the next event's trim deletes the
		// first event's records, and keeps the young ones.
		c.now = c.now.Add(24*time.Hour + retention/5 + time.Hour)
		third := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-3"}, ExpectedVersion: second.NextVersion(),
			Account: accountWithCash("acct-r", "4"), Digest: "content-3"}
		if got := commitOne(t, s, third); got != state.Applied {
			t.Fatalf("third event: %s", got)
		}
		records, err := rdb.HGetAll(ctx, ids).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, gone := range []string{"e:evt-1", redisstore.FactFieldForTest(fact)} {
			if _, ok := records[gone]; ok {
				t.Errorf("record %s outlived the retention: %v", gone, records)
			}
		}
		for _, kept := range []string{"e:evt-2", "e:evt-1-replayed", "e:evt-3"} {
			if !strings.HasPrefix(records[kept], "content-") {
				t.Errorf("record %s was lost before the end of its retention: %v", kept, records)
			}
		}
		if ttl := rdb.TTL(ctx, ids).Val(); ttl < retention {
			t.Fatalf("after the trim the records expire in %s: sooner than the retention of the latest", ttl)
		}
	})
}

func TestRecordsOfTheOlderLayoutCountUntilARetentionAfterTheUpgrade(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		const fact = "billing.consumption.recorded:c-9"
		// What the older version left: an event's record and a fact's, a key each.
		oldSeen, oldFact := redisstore.OlderLayoutKeysForTest("acct-u", "evt-old", fact)
		if err := rdb.Set(ctx, oldSeen, "content-old", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, oldFact, "fact-old", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		upgrade := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
		c := &clock{now: upgrade}
		s := preparedAt(t, rdb, c)

		old := state.EventRef{AccountID: "acct-u", EventID: "evt-old"}
		if _, seen, err := s.Load(ctx, nil, []state.EventRef{old}); err != nil || seen[old] != "content-old" {
			t.Fatalf("Load found %q (%v) for an event the older version applied", seen[old], err)
		}
		if got := commitOne(t, s, state.Step{Event: old, Account: accountWithCash("acct-u", "9"), Digest: "content-old"}); got != state.Duplicate {
			t.Fatalf("an event the older version applied: %s, want a duplicate", got)
		}
		if got := commitOne(t, s, state.Step{Event: old, Account: accountWithCash("acct-u", "9"), Digest: "content-other"}); got != state.IDConflict {
			t.Fatalf("its id with other content: %s, want a conflict", got)
		}
		again := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-again"}, Account: accountWithCash("acct-u", "9"),
			Digest: "content-again", Fact: fact, FactDigest: "fact-old"}
		if got := commitOne(t, s, again); got != state.Duplicate {
			t.Fatalf("a fact the older version counted, under another id: %s, want a duplicate", got)
		}

		// Until a retention has passed, what this version applies is written in both
		// layouts, so an instance of the older one still running finds it.
		during := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-new"}, Account: accountWithCash("acct-u", "1"), Digest: "content-new"}
		if got := commitOne(t, s, during); got != state.Applied {
			t.Fatalf("a new event during the upgrade: %s", got)
		}
		duringSeen, _ := redisstore.OlderLayoutKeysForTest("acct-u", "evt-new", "")
		if got := rdb.Get(ctx, duringSeen).Val(); got != "content-new" {
			t.Fatalf("the older layout's record of a new event holds %q: an older instance would apply it again", got)
		}

		// A retention after the upgrade the older records are all gone, and nothing
		// writes them any more, even in a store prepared again.
		c.now = upgrade.Add(s.RetentionForTest() + time.Second)
		after := preparedAt(t, rdb, c)
		late := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-late"}, ExpectedVersion: during.NextVersion(),
			Account: accountWithCash("acct-u", "2"), Digest: "content-late"}
		if got := commitOne(t, after, late); got != state.Applied {
			t.Fatalf("an event a retention after the upgrade: %s", got)
		}
		lateSeen, _ := redisstore.OlderLayoutKeysForTest("acct-u", "evt-late", "")
		if n := rdb.Exists(ctx, lateSeen).Val(); n != 0 {
			t.Fatal("a retention after the upgrade, a step still wrote the older layout's record")
		}
		if _, seen, err := after.Load(ctx, nil, []state.EventRef{late.Event}); err != nil || seen[late.Event] != "content-late" {
			t.Fatalf("Load found %q (%v) for the late event", seen[late.Event], err)
		}
	})
}
