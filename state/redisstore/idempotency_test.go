package redisstore_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// clock is a store's clock that a test moves by hand.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// upgradedAt is when the tests' stores first start.
var upgradedAt = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// storeOnAClock is a store prepared at upgradedAt, and its clock.
func storeOnAClock(t *testing.T, rdb *redis.Client) (*redisstore.Store, *clock) {
	t.Helper()
	c := &clock{now: upgradedAt}
	return preparedAt(t, rdb, c), c
}

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

// expectedOutcome is a step and what committing it alone should come to.
type expectedOutcome struct {
	name string
	st   state.Step
	want state.Outcome
}

// commitEach commits each step on its own, in order, and wants its outcome.
func commitEach(t *testing.T, s *redisstore.Store, steps []expectedOutcome) {
	t.Helper()
	for _, tc := range steps {
		if got := commitOne(t, s, tc.st); got != tc.want {
			t.Fatalf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
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
		s, c := storeOnAClock(t, rdb)
		retention := s.RetentionForTest()
		const fact = "billing.consumption.recorded:c-1"
		first := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-1"}, Account: accountWithCash("acct-r", "1"),
			Digest: digestOf("content-1"), Fact: fact, FactDigest: digestOf("fact-1")}
		if got := commitOne(t, s, first); got != state.Applied {
			t.Fatalf("first event: %s", got)
		}
		if older := append(keysNamed(t, rdb, ":seen:"), keysNamed(t, rdb, ":fact:")...); len(older) > 0 {
			t.Fatalf("a store that never had the older layout wrote its keys: %v", older)
		}
		ids := redisstore.IDsKeyForTest("acct-r")
		if ttl := rdb.TTL(ctx, ids).Val(); ttl < retention || ttl > retention+retention/5+time.Hour {
			t.Fatalf("the records expire in %s: want between the retention (%s) and a fifth and an hour more", ttl, retention)
		}
		// The last write before the next pass would begin moves no expiry, yet the
		// hash still outlives its record by the retention.
		c.now = c.now.Add(retention/5 - time.Minute)
		late := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-late"}, ExpectedVersion: first.NextVersion(),
			Account: accountWithCash("acct-r", "1.5"), Digest: digestOf("content-late")}
		if got := commitOne(t, s, late); got != state.Applied {
			t.Fatalf("late event: %s", got)
		}
		if ttl := rdb.TTL(ctx, ids).Val(); ttl < retention/5-time.Minute+retention {
			t.Fatalf("the records expire in %s, less than the retention after the latest was written %s after the expiry was set", ttl, retention/5-time.Minute)
		}

		// A day short of the retention, a later event trims the records: the first
		// one is young enough to stay, so its redelivery and its fact under another
		// id are still duplicates.
		c.now = c.now.Add(retention - 24*time.Hour - (retention/5 - time.Minute))
		second := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-2"}, ExpectedVersion: late.NextVersion(),
			Account: accountWithCash("acct-r", "2"), Digest: digestOf("content-2")}
		if got := commitOne(t, s, second); got != state.Applied {
			t.Fatalf("second event: %s", got)
		}
		redelivered := first
		redelivered.ExpectedVersion = second.NextVersion()
		if got := commitOne(t, s, redelivered); got != state.Duplicate {
			t.Fatalf("the first event again, a day before the retention ends: %s, want a duplicate", got)
		}
		replayed := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-1-replayed"}, ExpectedVersion: second.NextVersion(),
			Account: accountWithCash("acct-r", "3"), Digest: digestOf("content-1r"), Fact: fact, FactDigest: digestOf("fact-1")}
		if got := commitOne(t, s, replayed); got != state.Duplicate {
			t.Fatalf("the first event's fact under another id: %s, want a duplicate", got)
		}
		_, seen, err := s.Load(ctx, nil, []state.EventRef{first.Event, replayed.Event})
		if err != nil || seen[first.Event] != keptDigest("content-1") || seen[replayed.Event] != keptDigest("content-1r") {
			t.Fatalf("Load found %q and %q (%v): want each event's own content digest", seen[first.Event], seen[replayed.Event], err)
		}

		// Past the retention and the fifth after it, the next event's trim deletes the
		// first event's records, and keeps the young ones.
		c.now = c.now.Add(24*time.Hour + retention/5 + time.Hour)
		third := state.Step{Event: state.EventRef{AccountID: "acct-r", EventID: "evt-3"}, ExpectedVersion: second.NextVersion(),
			Account: accountWithCash("acct-r", "4"), Digest: digestOf("content-3")}
		if got := commitOne(t, s, third); got != state.Applied {
			t.Fatalf("third event: %s", got)
		}
		records, err := rdb.HGetAll(ctx, ids).Result()
		if err != nil {
			t.Fatal(err)
		}
		for name, gone := range map[string]string{"evt-1": redisstore.EventFieldForTest("evt-1"), fact: redisstore.FactFieldForTest(fact)} {
			if _, ok := records[gone]; ok {
				t.Errorf("the record of %s outlived the retention", name)
			}
		}
		for _, id := range []string{"evt-2", "evt-1-replayed", "evt-3"} {
			if records[redisstore.EventFieldForTest(id)] == "" {
				t.Errorf("the record of %s was lost before the end of its retention", id)
			}
		}
	})
}

func TestRecordsOfTheOlderLayoutCountUntilARetentionAfterTheUpgrade(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		const fact = "billing.consumption.recorded:c-9"
		// What the older version left: an event's record and a fact's, a key each.
		oldSeen, oldFact := redisstore.OlderLayoutKeysForTest("acct-u", "evt-old", fact)
		if err := rdb.Set(ctx, oldSeen, digestOf("content-old"), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, oldFact, digestOf("fact-old"), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		upgrade := upgradedAt
		c := &clock{now: upgrade}
		s := preparedAt(t, rdb, c)

		old := state.EventRef{AccountID: "acct-u", EventID: "evt-old"}
		if _, seen, err := s.Load(ctx, nil, []state.EventRef{old}); err != nil || seen[old] != digestOf("content-old") {
			t.Fatalf("Load found %q (%v) for an event the older version applied", seen[old], err)
		}
		if got := commitOne(t, s, state.Step{Event: old, Account: accountWithCash("acct-u", "9"), Digest: digestOf("content-old")}); got != state.Duplicate {
			t.Fatalf("an event the older version applied: %s, want a duplicate", got)
		}
		if got := commitOne(t, s, state.Step{Event: old, Account: accountWithCash("acct-u", "9"), Digest: digestOf("content-other")}); got != state.IDConflict {
			t.Fatalf("its id with other content: %s, want a conflict", got)
		}
		again := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-again"}, Account: accountWithCash("acct-u", "9"),
			Digest: digestOf("content-again"), Fact: fact, FactDigest: digestOf("fact-old")}
		if got := commitOne(t, s, again); got != state.Duplicate {
			t.Fatalf("a fact the older version counted, under another id: %s, want a duplicate", got)
		}

		// Until a retention has passed, what this version applies is written in both
		// layouts, so an instance of the older one still running finds it, and an
		// ended case is JSON, which the older one reads. Several steps of one
		// partition go in one call, five keys each.
		withdrawal := state.Case{ID: "w-1", Kind: events.CaseWithdrawal, Status: events.StatusSucceeded, Amount: decimal.RequireFromString("5"),
			History: []state.CaseEntry{{Status: events.StatusSucceeded, At: upgrade, By: state.ByPayout, Reason: "payout succeeded"}}}
		during := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-new"}, Account: accountWithCash("acct-u", "1"),
			Digest: digestOf("content-new"), ClosedCases: []state.Case{withdrawal}}
		const newFact = "billing.consumption.recorded:c-10"
		counted := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-c10"}, ExpectedVersion: during.NextVersion(),
			Account: accountWithCash("acct-u", "11"), Digest: digestOf("content-c10"), Fact: newFact, FactDigest: digestOf("fact-c10")}
		oldAgain := state.Step{Event: old, ExpectedVersion: counted.NextVersion(), Account: accountWithCash("acct-u", "99"), Digest: digestOf("content-old")}
		res, err := s.Commit(ctx, []state.Step{during, counted, oldAgain})
		if err != nil || res[0].Outcome != state.Applied || res[1].Outcome != state.Applied || res[2].Outcome != state.Duplicate {
			t.Fatalf("outcomes %v (%v): want applied, applied and the older version's event a duplicate", res, err)
		}
		duringSeen, _ := redisstore.OlderLayoutKeysForTest("acct-u", "evt-new", "")
		_, countedFact := redisstore.OlderLayoutKeysForTest("acct-u", "evt-c10", newFact)
		if got := rdb.Get(ctx, duringSeen).Val(); got != digestOf("content-new") {
			t.Fatalf("the older layout's record of a new event holds %q: an older instance would apply it again", got)
		}
		if got := rdb.Get(ctx, countedFact).Val(); got != digestOf("fact-c10") {
			t.Fatalf("the older layout's record of a new fact holds %q: an older instance would count it again", got)
		}
		if got := rdb.HGet(ctx, redisstore.ClosedCasesKeyForTest("acct-u"), "w-1").Val(); !strings.HasPrefix(got, "{") {
			t.Fatalf("an ended case during the upgrade is stored as %q, which the older version cannot read", got)
		}

		// A retention after the upgrade, an instance of the older version that ran on
		// has left a record: a store prepared now still reads them.
		retention := s.RetentionForTest()
		c.now = upgrade.Add(retention + time.Second)
		straggler, _ := redisstore.OlderLayoutKeysForTest("acct-u", "evt-straggler", "")
		if err := rdb.Set(ctx, straggler, digestOf("content-straggler"), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		reprepared := preparedAt(t, rdb, c)
		strayStep := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-straggler"}, ExpectedVersion: counted.NextVersion(),
			Account: accountWithCash("acct-u", "12"), Digest: digestOf("content-straggler")}
		if got := commitOne(t, reprepared, strayStep); got != state.Duplicate {
			t.Fatalf("an event an older instance applied after the first retention: %s, want a duplicate", got)
		}
		// Records stay text while the older layout's are written, though the day after
		// which records may be compact has long passed: the older layout's version
		// reads text alone.
		reopened := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-reopened"}, ExpectedVersion: counted.NextVersion(),
			Account: accountWithCash("acct-u", "13"), Digest: digestOf("content-reopened")}
		if got := commitOne(t, reprepared, reopened); got != state.Applied {
			t.Fatalf("an event in the reopened window: %s", got)
		}
		counted = reopened // what later steps of the account are decided on
		if got := rdb.HGet(ctx, redisstore.IDsKeyForTest("acct-u"), redisstore.EventFieldForTest("evt-reopened")).Val(); got != digestOf("content-reopened")+":"+fmt.Sprint(c.now.Unix()/3600) {
			t.Fatalf("in the reopened window a record is %q: want text", got)
		}

		// Once the older records are all gone (expired; deleted here), a store
		// prepared a retention later neither reads nor writes them, and deflates
		// ended cases.
		for _, k := range append(keysNamed(t, rdb, ":seen:"), keysNamed(t, rdb, ":fact:")...) {
			rdb.Del(ctx, k)
		}
		c.now = c.now.Add(retention + time.Second)
		after := preparedAt(t, rdb, c)
		withdrawal.ID = "w-2"
		late := state.Step{Event: state.EventRef{AccountID: "acct-u", EventID: "evt-late"}, ExpectedVersion: counted.NextVersion(),
			Account: accountWithCash("acct-u", "2"), Digest: digestOf("content-late"), ClosedCases: []state.Case{withdrawal}}
		if got := commitOne(t, after, late); got != state.Applied {
			t.Fatalf("an event a retention after the upgrade: %s", got)
		}
		lateSeen, _ := redisstore.OlderLayoutKeysForTest("acct-u", "evt-late", "")
		if n := rdb.Exists(ctx, lateSeen).Val(); n != 0 {
			t.Fatal("a retention after the older records were gone, a step still wrote the older layout's record")
		}
		if _, seen, err := after.Load(ctx, nil, []state.EventRef{late.Event}); err != nil || seen[late.Event] != keptDigest("content-late") {
			t.Fatalf("Load found %q (%v) for the late event", seen[late.Event], err)
		}
		if got := rdb.HGet(ctx, redisstore.AccountKeyForTest("acct-u"), "ce:w-2").Val(); got == "" || strings.HasPrefix(got, "{") {
			t.Fatalf("after the upgrade, an ended case is stored as %q: want it deflated in its account's hash", got)
		}
		if c, _, ok, err := after.Case(ctx, "w-1"); err != nil || ok && c.Status != events.StatusSucceeded {
			t.Fatalf("the case ended as JSON during the upgrade reads as %+v (%v)", c, err)
		}
	})
}

func TestAPassOverABigHashOfRecordsGoesAPageAtATimeAndKeepsTheYoungOnes(t *testing.T) {
	forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		s, c := storeOnAClock(t, rdb)
		retention := s.RetentionForTest()
		ids := redisstore.IDsKeyForTest("acct-big")
		// A busy account: 700 records past the retention, 50 young ones, and a pass
		// due (the last began more than a fifth of the retention ago). Past 512
		// fields (hash-max-listpack-entries, as Redis is built) the hash is a hash
		// table, which HSCAN walks in pages.
		hour := func(t time.Time) string { return fmt.Sprint(t.Unix() / 3600) }
		seed := []any{"~", c.now.Add(-retention/5 - time.Hour).Unix()}
		for i := range 700 {
			seed = append(seed, fmt.Sprintf("e:old-%d", i), "d:"+hour(c.now.Add(-retention-72*time.Hour)))
		}
		for i := range 50 {
			seed = append(seed, fmt.Sprintf("e:young-%d", i), "d:"+hour(c.now.Add(-24*time.Hour)))
		}
		if err := rdb.HSet(ctx, ids, seed...).Err(); err != nil {
			t.Fatal(err)
		}
		countOld := func() (old, young int, marker string) {
			records := rdb.HGetAll(ctx, ids).Val()
			for f := range records {
				switch {
				case strings.HasPrefix(f, "e:old-"):
					old++
				case strings.HasPrefix(f, "e:young-"):
					young++
				}
			}
			return old, young, records["~"]
		}
		version := ""
		for i := range 30 {
			st := state.Step{Event: state.EventRef{AccountID: "acct-big", EventID: fmt.Sprintf("evt-%d", i)}, ExpectedVersion: version,
				Account: accountWithCash("acct-big", "1"), Digest: digestOf("content")}
			if got := commitOne(t, s, st); got != state.Applied {
				t.Fatalf("event %d: %s", i, got)
			}
			version = st.NextVersion()
			old, young, marker := countOld()
			if i == 0 && strings.HasSuffix(t.Name(), "redis-server") && old == 0 {
				t.Fatal("one step walked the whole hash of 750 records instead of a page")
			}
			if young != 50 {
				t.Fatalf("after event %d, %d of the 50 young records are left", i, young)
			}
			if old == 0 && !strings.Contains(marker, ":") {
				if n := rdb.HLen(ctx, ids).Val(); n != 50+int64(i)+2 {
					t.Fatalf("the pass ended with %d fields, want the 50 young records, %d new ones and ~", n, i+1)
				}
				return
			}
		}
		old, _, marker := countOld()
		t.Fatalf("after 30 steps %d old records are left (~ = %q): the pass does not end", old, marker)
	})
}

// versionsBefore are the versions a store may be upgraded from, by the format of the
// records they write: the marks each leaves (set to "0": it started on an empty
// database), and a record as it writes it.
var versionsBefore = []struct {
	name   string
	marks  []string
	record func(digest string, hour int64) string
	// wrote says a record is in that version's format, with digest.
	wrote func(record, digest string) bool
}{
	{
		name:   "text",
		marks:  []string{"rf:idempotency-hashes-since"},
		record: func(digest string, hour int64) string { return fmt.Sprintf("%s:%d", digest, hour) },
		wrote:  func(record, digest string) bool { return strings.HasPrefix(record, digest+":") },
	},
	{
		name:   "compact",
		marks:  []string{"rf:idempotency-hashes-since", "rf:compact-records-since"},
		record: func(digest string, hour int64) string { return packedRecord(digest, hour) },
		wrote: func(record, digest string) bool {
			return len(record) == 15 && hex.EncodeToString([]byte(record[:12])) == digest
		},
	},
}

// packedRecord is a record as a store writing compact records keeps it: the digest's
// 12 bytes and the hour in 3, big-endian.
func packedRecord(digest string, hour int64) string {
	packed, err := hex.DecodeString(digest)
	if err != nil {
		panic(err)
	}
	return string(packed) + string([]byte{byte(hour >> 16), byte(hour >> 8), byte(hour)})
}

// isShortRecord says a record is short, 11 bytes: digest's first 8 and the hour.
func isShortRecord(record, digest string) bool {
	return len(record) == 11 && hex.EncodeToString([]byte(record[:8])) == digest[:16]
}

func TestRecordsGoShortADayAfterTheUpgradeAndEveryEarlierFormatStillCounts(t *testing.T) {
	for _, before := range versionsBefore {
		t.Run("from "+before.name, func(t *testing.T) {
			forEachEmptyRedis(t, func(t *testing.T, rdb *redis.Client) {
				recordsGoShortAfterADay(t, rdb, before.marks, before.record, before.wrote)
			})
		})
	}
}

func recordsGoShortAfterADay(t *testing.T, rdb *redis.Client, marks []string,
	recordBefore func(string, int64) string, wroteBefore func(record, digest string) bool) {
	ctx := context.Background()
	// What the version before left: its records in the ids hash, in its format, and
	// its marks.
	const fact = "billing.consumption.recorded:c-7"
	hour := upgradedAt.Add(-time.Hour).Unix() / 3600
	ids := redisstore.IDsKeyForTest("acct-k")
	if err := rdb.HSet(ctx, ids, redisstore.EventFieldForTest("evt-before"), recordBefore(digestOf("content-before"), hour),
		redisstore.FactFieldForTest(fact), recordBefore(digestOf("fact-7"), hour)).Err(); err != nil {
		t.Fatal(err)
	}
	for _, mark := range marks {
		if err := rdb.Set(ctx, mark, "0", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	s, c := storeOnAClock(t, rdb)
	older := state.EventRef{AccountID: "acct-k", EventID: "evt-before"}
	version := ""
	// step is an event of acct-k, announcing the fact with factDigest unless fact is "".
	step := func(id, digest, fact, factDigest string) state.Step {
		return state.Step{Event: state.EventRef{AccountID: "acct-k", EventID: id}, ExpectedVersion: version,
			Account: accountWithCash("acct-k", "1"), Digest: digest, Fact: fact, FactDigest: factDigest}
	}
	apply := func(st state.Step) {
		t.Helper()
		if got := commitOne(t, s, st); got != state.Applied {
			t.Fatalf("event %s: %s", st.Event.EventID, got)
		}
		version = st.NextVersion()
	}
	record := func(id string) string { return rdb.HGet(ctx, ids, redisstore.EventFieldForTest(id)).Val() }

	// For a day an instance of the version before may still run, which cannot read
	// short records: records stay in its format.
	apply(step("evt-day-one", digestOf("content-day-one"), "", ""))
	if got := record("evt-day-one"); !wroteBefore(got, digestOf("content-day-one")) {
		t.Fatalf("on the day of the upgrade a record is %q: the version before cannot read it", got)
	}

	// After the day, records are short: the digest's first 8 bytes and the hour in 3.
	c.now = c.now.Add(redisstore.VersionOverlap)
	apply(step("evt-short", digestOf("content-short"), "", ""))
	if got := record("evt-short"); !isShortRecord(got, digestOf("content-short")) {
		t.Fatalf("a day after the upgrade a record is %q, %d bytes: want 11, short", got, len(got))
	}
	short := state.EventRef{AccountID: "acct-k", EventID: "evt-short"}
	if _, seen, err := s.Load(ctx, nil, []state.EventRef{older, short}); err != nil ||
		seen[older] != digestOf("content-before") || seen[short] != digestOf("content-short")[:16] ||
		!events.SameDigest(seen[short], digestOf("content-short")) || events.SameDigest(seen[short], digestOf("content-other")) {
		t.Fatalf("Load found %q and %q (%v): want each event's digest in hex, the short record's first 16 digits", seen[older], seen[short], err)
	}

	// Records of either format tell a redelivery from a reused id.
	const newFact = "billing.consumption.recorded:c-8"
	commitEach(t, s, []expectedOutcome{
		{"an older record's event again", step("evt-before", digestOf("content-before"), "", ""), state.Duplicate},
		{"an older record's id with other content", step("evt-before", digestOf("content-other"), "", ""), state.IDConflict},
		{"an older record's fact under another id", step("evt-again", digestOf("content-again"), fact, digestOf("fact-7")), state.Duplicate},
		{"an older record's fact with other data", step("evt-contrary", digestOf("content-contrary"), fact, digestOf("fact-other")), state.FactConflict},
		{"a short record's event again", step("evt-short", digestOf("content-short"), "", ""), state.Duplicate},
		{"a short record's id with other content", step("evt-short", digestOf("content-other"), "", ""), state.IDConflict},
	})
	apply(step("evt-c8", digestOf("content-c8"), newFact, digestOf("fact-8")))
	if got := rdb.HGet(ctx, ids, redisstore.FactFieldForTest(newFact)).Val(); !isShortRecord(got, digestOf("fact-8")) {
		t.Fatalf("a fact's record is %q: want it short too", got)
	}
	commitEach(t, s, []expectedOutcome{
		{"a short record's fact under another id", step("evt-c8-again", digestOf("content-c8-again"), newFact, digestOf("fact-8")), state.Duplicate},
		{"a short record's fact with other data", step("evt-c8-contrary", digestOf("content-c8-contrary"), newFact, digestOf("fact-other")), state.FactConflict},
	})

	// An instance whose clock has not reached the day's end yet writes the older
	// format, and still tells a short record's redelivery from a reused id: it
	// compares the whole digest it has with the 8 bytes the record keeps.
	lagging := preparedAt(t, rdb, &clock{now: upgradedAt})
	commitEach(t, lagging, []expectedOutcome{
		{"a short record's event again, from a store writing the older format", step("evt-short", digestOf("content-short"), "", ""), state.Duplicate},
		{"a short record's id with other content, from a store writing the older format", step("evt-short", digestOf("content-other"), "", ""), state.IDConflict},
		{"a short record's fact under another id, from a store writing the older format",
			step("evt-c8-lagging", digestOf("content-c8-lagging"), newFact, digestOf("fact-8")), state.Duplicate},
		{"a short record's fact with other data, from a store writing the older format",
			step("evt-c8-lagging-contrary", digestOf("content-c8-lagging-contrary"), newFact, digestOf("fact-other")), state.FactConflict},
	})
	if got := record("evt-c8-lagging"); !wroteBefore(got, digestOf("content-c8-lagging")) {
		t.Fatalf("a store whose clock is before the day's end wrote %q: want the older format", got)
	}

	// A store that starts on an empty database writes short records at once.
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s, _ = storeOnAClock(t, rdb)
	version = ""
	apply(step("evt-fresh", digestOf("content-fresh"), "", ""))
	if got := record("evt-fresh"); !isShortRecord(got, digestOf("content-fresh")) {
		t.Fatalf("on a new database a record is %q: want it short", got)
	}
}
