// Package redisstore keeps account state in Redis. Each event is saved in one atomic
// step together with its idempotency record and the events it publishes (the outbox), so
// a change and its notifications are never separated, and a redelivered event changes
// nothing. Steps are sent in pipelines, one Lua call per event, so a batch of events
// costs one round trip to load and one to save.
package redisstore

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

//go:embed apply.lua
var applyLua string

//go:embed claim.lua
var claimLua string

// applyBatchLua runs apply.lua's applyStep for several steps of one partition in one call: one
// round of Redis's command loop instead of one per step. KEYS are the partition's six
// keys that apply.lua takes (KEYS[3], [4], [5], [8], [9] and [10] there: the outbox,
// the deadlines, the claims, the deadline kinds and counts, the case counts), once,
// then the three of each step (KEYS[1], [2] and [7] there: the account, its
// idempotency records, its ended cases), followed while the older layout's records may
// exist by the two of those (KEYS[6] and [11] there): the same six keys for every step
// would only be sent and read again. ARGV[1] is the number of steps, ARGV[2] the
// number of keys of each (3 or 5), ARGV[3] to [6] what apply.lua calls BATCH, the same
// for every step (now, the records' layout, and "1" or "0" for kindsApart and
// endedInAccount: recordsArgs.batch), then for each step its count of arguments and
// the arguments. Each step runs as applyStep alone would, in order, so a step decides on
// what the earlier ones wrote (a later step of the same account conflicts when an
// earlier one did not save), and an error in one step is that step's reply: the others
// go on, as they did when each step was its own call.
var applyBatchLua = applyLua + `
local replies = {}
local per = tonumber(ARGV[2])
local now, layout, kindsApart, endedInAccount = tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1', ARGV[6] == '1'
local at = 7
-- One table of keys for every step, its step's keys set in place: applyStep keeps no
-- reference to it, and a table made per step is Lua work Redis's one thread does.
local keys = {false, false, KEYS[1], KEYS[2], KEYS[3], false, false, KEYS[4], KEYS[5], KEYS[6], false}
for s = 1, tonumber(ARGV[1]) do
  local n = number(ARGV[at])
  local k = 6 + (s - 1) * per
  keys[1], keys[2], keys[7] = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  if per == 5 then
    keys[6], keys[11] = KEYS[k + 4], KEYS[k + 5]
  end
  -- The step's arguments are ARGV[at + 1] to ARGV[at + n], read where they are rather
  -- than copied into a table of their own.
  local ok, reply = pcall(applyStep, keys, ARGV, at, n, now, layout, kindsApart, endedInAccount)
  if ok then
    replies[s] = reply
  elseif type(reply) == 'table' and reply.err then
    replies[s] = 'ERR ' .. reply.err
  else
    replies[s] = 'ERR ' .. tostring(reply)
  end
  at = at + 1 + n
end
return replies
`

// unflagLua takes an account out of a holder's overdue index only while the account
// is at the version a batch left it at (KEYS[1] the account, KEYS[2] the holder's
// set; ARGV[1] the version, ARGV[2] the account id): a payment whose step did not
// apply, or an account another step has moved since (perhaps overdue again, and added
// again), keeps its entry. The two keys are in different slots, so only one Redis can
// run it.
const unflagLua = `
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  return redis.call('SREM', KEYS[2], ARGV[2])
end
return 0
`

var (
	applyScript  = redis.NewScript(applyBatchLua)
	claimScript  = redis.NewScript(claimLua)
	unflagScript = redis.NewScript(unflagLua)
)

// DefaultIdempotencyRetention is how long an event id is remembered: 35 days. The inbound
// stream keeps events 7 days and JetStream deduplicates for 2 minutes, so a redelivery
// or a republished event can only come from an upstream replay; 35 days covers a full
// billing cycle plus a week of replays. Longer costs memory: about 30 bytes per event
// and fact remembered, in its account's ids hash.
const DefaultIdempotencyRetention = 35 * 24 * time.Hour

// Store is account state in Redis, standalone or Cluster.
type Store struct {
	rdb       redis.UniversalClient
	log       zerolog.Logger
	retention time.Duration
	cache     *accountCache
	// now is when a step's idempotency records are written.
	now func() time.Time
	// legacyUntil is when the older layout's records (a key per record) are all
	// expired; until then they are read and written too. Until Prepare has found out,
	// it is the far future: a store that does not know reads them.
	legacyUntil time.Time
	// formatFrom is when records begin to be written in each format after text (see
	// apply.lua's newRecord). Until Prepare has found out, it is the far future: text
	// records are what every version reads.
	formatFrom [len(recordFormatMarks)]time.Time
	// kindsInScoresFrom is when the kinds of deadlines are kept in their scores alone
	// (see apply.lua's kindInScore). Until Prepare has found out, it is the far future.
	kindsInScoresFrom time.Time
	// endedCasesInAccountsFrom is when ended cases begin to be kept in their account's
	// own hash (see apply.lua). Until Prepare has found out, it is the far future.
	endedCasesInAccountsFrom time.Time
}

// DefaultCachedAccounts is how many decoded accounts a store keeps. Each costs about
// 15 KiB of refundd's RSS, the garbage collector's headroom included: in task bench at
// 100,000 accounts, a cache of 150,000 took peak RSS from 686 MiB to 1,448 MiB, and
// throughput from 3,068 to 3,592 events/s (a miss reads the account whole).
const DefaultCachedAccounts = 50_000

// New returns a store on rdb, remembering event ids and facts for
// DefaultIdempotencyRetention. It does not take ownership of rdb.
func New(rdb redis.UniversalClient) *Store {
	s := &Store{
		rdb: rdb, log: zerolog.Nop(), retention: DefaultIdempotencyRetention, cache: newAccountCache(DefaultCachedAccounts),
		now: time.Now, legacyUntil: farFuture, kindsInScoresFrom: farFuture, endedCasesInAccountsFrom: farFuture,
	}
	// Every format, however many there are: a zero time would mean "written at once".
	for i := range s.formatFrom {
		s.formatFrom[i] = farFuture
	}
	return s
}

// farFuture is when a store that has not looked yet takes a newer layout to begin:
// until Prepare, it writes what every version reads.
var farFuture = time.Unix(1<<62, 0)

// SetLogger sets where the store reports what it could not write but did not fail a
// batch for. Unless set, nothing is logged.
func (s *Store) SetLogger(log zerolog.Logger) { s.log = log }

// SetCachedAccounts sets how many decoded accounts the store keeps (at least 1;
// DefaultCachedAccounts unless set). Call it before the store is used: it empties the
// cache.
func (s *Store) SetCachedAccounts(n int) { s.cache = newAccountCache(max(1, n)) }

// Prepare loads the Lua step and creates the outbox consumer groups. Call it on start;
// it is safe to call again.
func (s *Store) Prepare(ctx context.Context) error {
	if err := loadScripts(ctx, s.rdb); err != nil {
		return err
	}
	// Before the outbox groups below create keys: an empty database never had the
	// older layouts.
	keys, err := s.rdb.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("count keys: %w", err)
	}
	if err := s.findLegacyRecords(ctx, keys == 0); err != nil {
		return err
	}
	if err := s.markWhenRecordFormatsBegin(ctx, keys == 0); err != nil {
		return err
	}
	if s.kindsInScoresFrom, err = s.overlapEnd(ctx, kindsInScoresSinceKey, keys == 0); err != nil {
		return err
	}
	if s.endedCasesInAccountsFrom, err = s.overlapEnd(ctx, endedCasesInAccountsSinceKey, keys == 0); err != nil {
		return err
	}
	for p := 0; p < Partitions; p++ {
		err := s.rdb.XGroupCreateMkStream(ctx, outboxKey(p), relayGroup, "0").Err()
		if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			return fmt.Errorf("create outbox group %s: %w", outboxKey(p), err)
		}
	}
	return nil
}

// findLegacyRecords sets how long records of the older layout (a key per record) may
// still exist: a retention after this store first kept its records in the ids hashes.
// The first store to prepare an empty database marks it as never having had them;
// one that finds keys there marks the time.
func (s *Store) findLegacyRecords(ctx context.Context, emptyDatabase bool) error {
	unix, err := s.markFirstStart(ctx, idsSinceKey, emptyDatabase)
	if err != nil {
		return err
	}
	if unix > 0 && !s.now().Before(time.Unix(unix, 0).Add(s.retention)) {
		// A retention has passed since the upgrade. An instance of the older version
		// that ran on after it (a long rollout, a rollback and a second upgrade) may
		// have written records since: while any is left, the window starts again.
		left, err := s.olderLayoutRecordsLeft(ctx)
		if err != nil {
			return err
		}
		mark := "0"
		if left {
			unix = s.now().Unix()
			mark = strconv.FormatInt(unix, 10)
		} else {
			unix = 0
		}
		if err := s.rdb.Set(ctx, idsSinceKey, mark, 0).Err(); err != nil {
			return fmt.Errorf("mark the idempotency layout: %w", err)
		}
	}
	s.legacyUntil = time.Time{}
	if unix > 0 {
		s.legacyUntil = time.Unix(unix, 0).Add(s.retention)
	}
	return nil
}

// markFirstStart reads the unix second key records as the first start of a store that
// knows some layout, marking it now when it is missing: "0" on an empty database,
// which never held the layout before.
func (s *Store) markFirstStart(ctx context.Context, key string, emptyDatabase bool) (int64, error) {
	since, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		mark := "0"
		if !emptyDatabase {
			mark = strconv.FormatInt(s.now().Unix(), 10)
		}
		// NX: of two stores preparing at once, the first one's mark stands.
		if err := s.rdb.SetNX(ctx, key, mark, 0).Err(); err != nil {
			return 0, fmt.Errorf("mark the first start in %s: %w", key, err)
		}
		since, err = s.rdb.Get(ctx, key).Result()
	}
	if err != nil {
		return 0, fmt.Errorf("read the first start in %s: %w", key, err)
	}
	unix, err := strconv.ParseInt(since, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read the first start: %s holds %q", key, since)
	}
	return unix, nil
}

// VersionOverlap is how long a store goes on writing what the version before reads
// (its idempotency records' format, the kinds of deadlines apart) after its first start
// on a database that already held keys: an instance of that version may run beside it
// that long (a rolling update). One that read a record it cannot parse would take a
// redelivery for a conflicting event and dead-letter it; it never applies anything
// twice.
const VersionOverlap = 24 * time.Hour

// overlapEnd is when the layout whose first start key marks may be written alone:
// VersionOverlap after that start, or at once (the zero time) on a database that was
// empty then.
func (s *Store) overlapEnd(ctx context.Context, key string, emptyDatabase bool) (time.Time, error) {
	unix, err := s.markFirstStart(ctx, key, emptyDatabase)
	if err != nil || unix == 0 {
		return time.Time{}, err
	}
	return time.Unix(unix, 0).Add(VersionOverlap), nil
}

// recordFormat is how a step writes its idempotency records (apply.lua's newRecord).
// Every version reads the formats before its own, and the store writes a format only
// once no instance of a version that cannot read it may still run.
type recordFormat int

const (
	// textRecords: "<digest in hex>:<unix hour>", 31 bytes; what every version reads.
	textRecords recordFormat = iota
	// compactRecords: the digest packed (12 bytes) and the hour in 3, 15 bytes.
	compactRecords
	// shortRecords: the digest's first 8 bytes and the hour in 3, 11 bytes.
	shortRecords
)

// recordFormatMarks are the formats after text, in order, each with the key marking
// when a store that writes it first started (VersionOverlap later it does).
var recordFormatMarks = [...]struct {
	format recordFormat
	since  string
}{{compactRecords, compactRecordsSinceKey}, {shortRecords, shortRecordsSinceKey}}

// markWhenRecordFormatsBegin sets when records begin to be written in each format
// after text.
func (s *Store) markWhenRecordFormatsBegin(ctx context.Context, emptyDatabase bool) error {
	for i, mark := range recordFormatMarks {
		from, err := s.overlapEnd(ctx, mark.since, emptyDatabase)
		if err != nil {
			return err
		}
		s.formatFrom[i] = from
	}
	return nil
}

// recordLayout is how the steps of a batch committed at now write their records: with
// the older layout's keys too (legacy), and in which format. Text while the older
// layout's records are written, as those are read by a version that knows text alone.
// One reading of the clock decides both, so a batch is never legacy and packed at once.
func (s *Store) recordLayout(now time.Time) (legacy bool, format recordFormat) {
	if s.legacyRecordsMayExist(now) {
		return true, textRecords
	}
	// A format only once every one before it has begun too: marking one again (say,
	// before a rollback) takes the store back to the format before it.
	format = textRecords
	for i, mark := range recordFormatMarks {
		if now.Before(s.formatFrom[i]) {
			break
		}
		format = mark.format
	}
	return false, format
}

// olderLayoutRecordsLeft scans the keyspace (each master of a cluster) for a record of
// the older layout, and stops at the first.
func (s *Store) olderLayoutRecordsLeft(ctx context.Context) (bool, error) {
	errFound := errors.New("found")
	scan := func(ctx context.Context, c *redis.Client) error {
		// [sf][ea][ec][nt] is "seen" or "fact" (and nothing else this store names).
		iter := c.Scan(ctx, 0, keyPrefix+"{p*}:[sf][ea][ec][nt]:*", 1000).Iterator()
		for iter.Next(ctx) {
			if kind := strings.SplitN(iter.Val(), ":", 4); len(kind) == 4 && (kind[2] == "seen" || kind[2] == "fact") {
				return errFound
			}
		}
		return iter.Err()
	}
	ran, err := s.onEachMaster(ctx, scan)
	if !ran {
		return true, nil // cannot tell: keep reading them, which is safe
	}
	if errors.Is(err, errFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look for idempotency records of the older layout: %w", err)
	}
	return false, nil
}

// onEachMaster runs fn on every Redis that holds keys: each master of a cluster, at
// once, or the one server. ran is false, and nothing ran, for a client that is
// neither.
func (s *Store) onEachMaster(ctx context.Context, fn func(context.Context, *redis.Client) error) (ran bool, err error) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return true, c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return true, fn(ctx, c)
	}
	return false, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Load reads the batch's accounts and which of its events were already applied, in one
// pipeline: seen holds each applied event's content digest (see Step.Digest; "1" for
// one recorded before digests were kept), "" for an event not applied. An account Redis has never seen comes back as state.NewAccount, version 0.
func (s *Store) Load(ctx context.Context, accountIDs []string, refs []state.EventRef) (map[string]state.Versioned, map[state.EventRef]string, error) {
	pipe := s.rdb.Pipeline()
	versionCmds := make([]*redis.StringCmd, len(accountIDs))
	wholeCmds := make([]*redis.MapStringStringCmd, len(accountIDs))
	// What the cache held when the read was sent: the entry to compare with the
	// version read, without a second lookup (and a second lock) per account.
	cachedAt := make([]*cached, len(accountIDs))
	for i, id := range accountIDs {
		if cachedAt[i] = s.cache.lookup(id); cachedAt[i] != nil {
			// Most likely the cached version is still the stored one: read only the
			// version, not the whole account again.
			versionCmds[i] = pipe.HGet(ctx, accountKey(id), fieldVersion)
			continue
		}
		wholeCmds[i] = pipe.HGetAll(ctx, accountKey(id))
	}
	// Ended cases the events name: a late result, a repeated request.
	var caseReads map[state.EventRef]endedCaseRead
	for _, ref := range refs {
		if ref.CaseID != "" {
			if caseReads == nil {
				caseReads = make(map[state.EventRef]endedCaseRead)
			}
			caseReads[ref] = readEndedCase(ctx, pipe, ref.AccountID, ref.CaseID)
		}
	}
	// The idempotency records in one HMGET per account; while the older layout's
	// records may exist, those too, in one MGET per partition (the keys of a partition
	// share its hash tag, so one call reads them even on a cluster).
	records := make(map[string]*idsRead)
	var legacy map[int]*idsRead
	if s.legacyRecordsMayExist(s.now()) {
		legacy = make(map[int]*idsRead)
	}
	for i, ref := range refs {
		r := records[ref.AccountID]
		if r == nil {
			r = &idsRead{}
			records[ref.AccountID] = r
		}
		r.refs = append(r.refs, i)
		r.keys = append(r.keys, eventField(ref.EventID))
		if legacy != nil {
			p := Partition(ref.AccountID)
			l := legacy[p]
			if l == nil {
				l = &idsRead{}
				legacy[p] = l
			}
			l.refs = append(l.refs, i)
			l.keys = append(l.keys, seenKey(ref.AccountID, ref.EventID))
		}
	}
	for id, r := range records {
		r.cmd = pipe.HMGet(ctx, idsKey(id), r.keys...)
	}
	for _, l := range legacy {
		l.cmd = pipe.MGet(ctx, l.keys...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("load batch of %d accounts: %w", len(accountIDs), err)
	}
	accounts := make(map[string]state.Versioned, len(accountIDs))
	var stale []string // cached, but another write came since: read them whole
	for i, id := range accountIDs {
		if versionCmds[i] != nil {
			if c := cachedAt[i]; c.Version == versionCmds[i].Val() {
				accounts[id] = state.Versioned{Account: c.Account, Version: c.Version}
			} else {
				stale = append(stale, id)
			}
			continue
		}
		accounts[id] = s.decodeAndCache(id, wholeCmds[i].Val())
	}
	if len(stale) > 0 {
		if err := s.loadWhole(ctx, stale, accounts); err != nil {
			return nil, nil, err
		}
	}
	closed := make(map[string]map[string]state.Case)
	for ref, read := range caseReads {
		body, found, err := read.body()
		if err != nil {
			return nil, nil, fmt.Errorf("load case %s: %w", ref.CaseID, err)
		}
		if !found {
			continue
		}
		c, err := decodeCase(ref.CaseID, []byte(body))
		if err != nil {
			v := accounts[ref.AccountID]
			v.Err = err
			accounts[ref.AccountID] = v
			continue
		}
		if closed[ref.AccountID] == nil {
			closed[ref.AccountID] = make(map[string]state.Case)
		}
		closed[ref.AccountID][ref.CaseID] = c
	}
	for id, cases := range closed {
		v := accounts[id]
		v.Account = v.Account.WithClosedCases(cases)
		accounts[id] = v
	}
	seen := make(map[state.EventRef]string, len(refs))
	for _, r := range legacy {
		if err := r.readInto(seen, refs); err != nil {
			return nil, nil, err
		}
	}
	for _, r := range records {
		if err := r.readInto(seen, refs); err != nil {
			return nil, nil, err
		}
	}
	return accounts, seen, nil
}

// idsRead reads some of a batch's idempotency records: an account's, or the older
// layout's of one partition.
type idsRead struct {
	refs []int // indexes of the events in the batch's refs
	keys []string
	cmd  *redis.SliceCmd
}

// readInto sets the digest of each record found (a nil reply: never seen).
func (r *idsRead) readInto(seen map[state.EventRef]string, refs []state.EventRef) error {
	found := r.cmd.Val()
	if len(found) != len(r.refs) {
		return fmt.Errorf("load idempotency records: %d replies for %d fields", len(found), len(r.refs))
	}
	for j, i := range r.refs {
		if record, ok := found[j].(string); ok {
			seen[refs[i]] = recordDigest(record)
		}
	}
	return nil
}

// legacyRecordsMayExist: at now, the older layout's records are not all expired yet.
func (s *Store) legacyRecordsMayExist(now time.Time) bool { return now.Before(s.legacyUntil) }

// recordDigest is the digest a record keeps, in hex: packed in its first 12 bytes in a
// compact record (15 bytes; see apply.lua's newRecord), its first 8 bytes in a short
// one (11 bytes: 16 hex digits, see events.SameDigest), "<digest>:<unix hour written>"
// in a text one, the digest alone in the older layout.
func recordDigest(record string) string {
	switch len(record) {
	case compactRecordLen:
		return hex.EncodeToString([]byte(record[:packedDigestLen]))
	case shortRecordLen:
		return hex.EncodeToString([]byte(record[:shortDigestLen]))
	}
	if i := strings.LastIndexByte(record, ':'); i >= 0 && isDigits(record[i+1:]) {
		return record[:i]
	}
	return record
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Case finds a case by its id alone, for the read API: the index names its account,
// and the account holds it: open in its document, or ended, in its hash or apart. ok is
// false when no account holds a case of that id.
func (s *Store) Case(ctx context.Context, id string) (c state.Case, accountID string, ok bool, err error) {
	pipe := s.rdb.Pipeline()
	older := pipe.Get(ctx, olderCaseIndexKey(id))
	indexed := pipe.HGet(ctx, caseIndexKey(id), id)
	_, _ = pipe.Exec(ctx) // each reply is checked below: Exec reports only the first error, most often the older index's redis.Nil
	for _, cmd := range []*redis.StringCmd{older, indexed} {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return state.Case{}, "", false, fmt.Errorf("find case %s: %w", id, err)
		}
	}
	// The older index first: its entry was there first, and the first account to
	// use a case id keeps it.
	accountID = cmp.Or(older.Val(), indexed.Val())
	if accountID == "" {
		return state.Case{}, "", false, nil
	}
	acct, found, err := s.Account(ctx, accountID)
	if err != nil || !found {
		return state.Case{}, "", false, err
	}
	if c, ok = acct.Cases[id]; ok {
		return c, accountID, true, nil
	}
	// At once (MULTI): a step moving the case from one place to the other between the
	// two reads would make it seem to be in neither.
	pipe = s.rdb.TxPipeline()
	read := readEndedCase(ctx, pipe, accountID, id)
	_, _ = pipe.Exec(ctx) // each reply is checked by body
	body, found, err := read.body()
	if err != nil || !found {
		return state.Case{}, "", false, err
	}
	c, err = decodeCase(id, []byte(body))
	return c, accountID, err == nil, err
}

// SameHolderOverdue lists, for each holder name, the accounts under that name that
// have an overdue amount, for the withdrawal risk rule. One pipelined read per name.
func (s *Store) SameHolderOverdue(ctx context.Context, holderNames []string) (map[string][]string, error) {
	if len(holderNames) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(holderNames))
	for i, name := range holderNames {
		cmds[i] = pipe.SMembers(ctx, holderOverdueKey(name))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read holder overdue index: %w", err)
	}
	out := make(map[string][]string, len(holderNames))
	for i, name := range holderNames {
		out[name] = cmds[i].Val()
	}
	return out, nil
}

// EndedCases lists an account's ended cases, for the read API: those kept in its hash
// and those kept apart.
func (s *Store) EndedCases(ctx context.Context, accountID string) ([]state.Case, error) {
	pipe := s.rdb.TxPipeline() // at once: see Case
	apartCmd := pipe.HGetAll(ctx, closedCasesKey(accountID))
	accountCmd := pipe.HGetAll(ctx, accountKey(accountID))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("load ended cases of %s: %w", accountID, err)
	}
	bodies := apartCmd.Val()
	for field, body := range accountCmd.Val() {
		if id, ok := strings.CutPrefix(field, endedCasePrefix); ok {
			bodies[id] = body // the account's copy is the later one (apply.lua)
		}
	}
	out := make([]state.Case, 0, len(bodies))
	for id, body := range bodies {
		c, err := decodeCase(id, []byte(body))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// endedCaseRead reads an ended case where a step may have kept it: in its account's
// hash, or apart, where versions before kept every ended case (and this one keeps a
// case too large for the account's hash, and those ended during the day of overlap).
type endedCaseRead struct {
	inAccount, apart *redis.StringCmd
}

func readEndedCase(ctx context.Context, pipe redis.Pipeliner, accountID, caseID string) endedCaseRead {
	return endedCaseRead{
		inAccount: pipe.HGet(ctx, accountKey(accountID), endedCasePrefix+caseID),
		apart:     pipe.HGet(ctx, closedCasesKey(accountID), caseID),
	}
}

// body is the case as stored, found false when neither place holds it. A step that
// keeps a case in one place deletes it from the other in the same atomic step, so one
// place holds it at a time; the account's copy would be the later one.
func (r endedCaseRead) body() (body string, found bool, err error) {
	for _, cmd := range []*redis.StringCmd{r.inAccount, r.apart} {
		body, err := cmd.Result()
		if err == nil {
			return body, true, nil
		}
		if !errors.Is(err, redis.Nil) {
			return "", false, err
		}
	}
	return "", false, nil
}

// loadWhole reads accounts whole into loaded, and caches them.
func (s *Store) loadWhole(ctx context.Context, ids []string, loaded map[string]state.Versioned) error {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, accountKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("load %d changed accounts: %w", len(ids), err)
	}
	for i, id := range ids {
		loaded[id] = s.decodeAndCache(id, cmds[i].Val())
	}
	return nil
}

// decodeAndCache decodes an account's hash, and caches it when it was ever saved. An
// account that cannot be read comes back with its Err set.
func (s *Store) decodeAndCache(id string, fields map[string]string) state.Versioned {
	v, fieldByField, err := decodeAccountFields(id, fields)
	if err != nil {
		return state.Versioned{Err: err}
	}
	if v.Version != "" {
		s.cache.put(id, v.Version, v.Account, fieldByField, fields[fieldCore])
	}
	return v
}

// Account reads one account for the read API. ok is false when it was never seen.
func (s *Store) Account(ctx context.Context, id string) (acct state.Account, ok bool, err error) {
	fields, err := s.rdb.HGetAll(ctx, accountKey(id)).Result()
	if err != nil {
		return state.Account{}, false, fmt.Errorf("load account %s: %w", id, err)
	}
	v, _, err := decodeAccountFields(id, fields)
	if err != nil {
		return state.Account{}, false, err
	}
	return v.Account, v.Version != "", nil
}

// Commit saves the steps in one pipeline, each atomically, in order. A step Redis
// refuses is Failed, with Redis's reply as its reason, without failing the others. An error means no outcome is known
// (Redis unreachable); the caller retries the batch, which is safe because every step
// is idempotent. The case index and the holder index, kept apart from the steps, are
// written before them, and a holder's removal after them: on one Redis in the same
// pipeline (the removal by a script that checks the account's version), on a cluster
// each in a round trip of its own (the removal once its step is known to be applied).
func (s *Store) Commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	outcomes, err := s.commit(ctx, steps)
	if err != nil && isNoScript(err) {
		// Redis restarted or flushed its script cache since Prepare: load it and retry.
		// Steps that ran before the error are remembered and come back as duplicates
		// (or, for firings, as conflicts decided again on fresh state).
		if err := loadScripts(ctx, s.rdb); err != nil {
			return nil, err
		}
		return s.commit(ctx, steps)
	}
	return outcomes, err
}

func (s *Store) commit(ctx context.Context, steps []state.Step) ([]state.StepResult, error) {
	now := s.now()
	records := recordsArgs{
		retention: any(strconv.FormatInt(int64(s.retention/time.Second), 10)),
		now:       any(strconv.FormatInt(now.Unix(), 10)),
	}
	records.legacy, records.format = s.recordLayout(now)
	records.kindsApart = now.Before(s.kindsInScoresFrom)
	// While the older layout's records are kept, ended cases are JSON, for a version
	// that reads no account holding them either.
	records.endedCasesInAccounts = !records.legacy && !now.Before(s.endedCasesInAccountsFrom)
	keysPerStep := 3
	if records.legacy {
		keysPerStep = 5
	}
	batchArgs := records.batch()
	idx := indexWritesOf(steps)
	pipe := s.rdb.Pipeline()
	// The case index and the holder's additions go before every step, so a crash in
	// between leaves an index entry without its case (a reader finds no case there)
	// or an account flagged without its overdue bill (a withdrawal of the same holder
	// goes to review), never a case that cannot be found or an overdue account that
	// is not flagged. NX: the first account to use a case id keeps it.
	var before []indexWrite
	for _, e := range idx.cases {
		before = append(before, indexWrite{cmd: pipe.HSetNX(ctx, caseIndexKey(e.caseID), e.caseID, e.account), account: e.account, index: "case"})
	}
	for _, h := range idx.holdersAdded {
		before = append(before, indexWrite{cmd: pipe.SAdd(ctx, holderOverdueKey(h.name), h.account), account: h.account, index: "holder"})
	}
	_, cluster := s.rdb.(*redis.ClusterClient)
	if cluster && len(before) > 0 {
		// go-redis sends each node's share of a cluster pipeline at the same time, so
		// "before" holds across nodes only as a round trip of its own.
		_, _ = pipe.Exec(ctx) // each reply is checked by indexWritesDone
		if err := s.indexWritesDone(before); err != nil {
			return nil, fmt.Errorf("commit %d steps: index entries before them: %w", len(steps), err)
		}
	}
	// The account each step's fields are written over: Redis holds it once the
	// batch's earlier steps of the account are saved. A step after a failed one
	// conflicts (its expected version is never stored), so assuming the earlier ones
	// saved is safe.
	inBatch := make(map[string]*onRedis)
	// Each step's account as it is saved, to cache once the reply says so.
	saved := make([]savedAccount, len(steps))
	// Each step's outbound events as the outbox holds them, but for their positions,
	// which only the reply tells.
	outbound := make([][]state.OutboxEntry, len(steps))
	// One call per partition: the steps of an account are all in its partition, so
	// they keep their order.
	type call struct {
		steps []int
		keys  []string
		args  []any
		cmd   *redis.Cmd
	}
	var calls [Partitions]*call
	for i, st := range steps {
		p := Partition(st.Event.AccountID)
		keys := [5]string{accountKey(st.Event.AccountID), idsKey(st.Event.AccountID), closedCasesKey(st.Event.AccountID)}
		if records.legacy {
			keys[3] = seenKey(st.Event.AccountID, st.Event.EventID)
			keys[4] = keys[3] // without a fact, the seen key stands in: the script does not touch it
			if st.Fact != "" {
				keys[4] = factKey(st.Event.AccountID, st.Fact)
			}
		}
		c := calls[p]
		if c == nil {
			c = &call{args: append(append(callArgs.get(), 0, keysPerStep), batchArgs[:]...), keys: append(callKeys.get(),
				outboxKey(p), timersDueKey(p), timersClaimedKey(p), timerKindsKey(p), timerCountsKey(p), caseCountsKey(p),
			)}
			calls[p] = c
		}
		var base *onRedis
		if st.Account != nil {
			base = inBatch[st.Event.AccountID]
			if base == nil {
				base = s.cache.storedFieldByField(st.Event.AccountID, st.ExpectedVersion)
			}
		}
		// The step's arguments, after their count. Its next version is hashed once here,
		// for the script and for the cache.
		count := len(c.args)
		saved[i].version = st.NextVersion()
		var err error
		if c.args, saved[i].core, outbound[i], err = appendStepArgs(append(c.args, 0), st, saved[i].version, p, records, base); err != nil {
			return nil, err
		}
		c.args[count] = len(c.args) - count - 1
		if st.Account != nil {
			inBatch[st.Event.AccountID] = &onRedis{account: st.Account, core: saved[i].core}
		}
		c.steps = append(c.steps, i)
		c.keys = append(c.keys, keys[:keysPerStep]...)
	}
	var sent []*call
	for _, c := range calls {
		if c == nil {
			continue
		}
		c.args[0] = len(c.steps)
		c.cmd = applyScript.EvalSha(ctx, pipe, c.keys, c.args...)
		// The call copied its keys and arguments: their slices go back for the next
		// call to fill.
		callArgs.put(c.args)
		callKeys.put(c.keys)
		c.args, c.keys = nil, nil
		sent = append(sent, c)
	}
	var unflags []indexWrite
	if !cluster {
		// Right behind the steps, on the same connection, so they run first; the
		// script removes an entry only if the account is still where the batch left it.
		for _, h := range idx.holdersRemoved {
			cmd := unflagScript.EvalSha(ctx, pipe, []string{accountKey(h.account), holderOverdueKey(h.name)}, h.version, h.account)
			unflags = append(unflags, indexWrite{cmd: cmd, account: h.account, index: "holder"})
		}
	}
	_, execErr := pipe.Exec(ctx)
	if !cluster {
		if err := s.indexWritesDone(before); err != nil {
			return nil, fmt.Errorf("commit %d steps: %w", len(steps), err)
		}
		s.logRemovalsNotDone(unflags)
	}
	results := make([]state.StepResult, len(steps))
	for _, c := range sent {
		cmd := c.cmd
		if err := cmd.Err(); err != nil {
			if isNoScript(err) || !isErrorReply(err) {
				// The script is gone, or Redis did not answer: nothing is known.
				return nil, fmt.Errorf("commit %d steps: %w", len(steps), err)
			}
			for _, i := range c.steps {
				results[i] = state.StepResult{Outcome: state.Failed, Reason: fmt.Sprintf("account %s event %s: %v", steps[i].Event.AccountID, steps[i].Event.EventID, err)}
			}
			continue
		}
		replies, err := cmd.StringSlice()
		if err != nil || len(replies) != len(c.steps) {
			return nil, fmt.Errorf("commit %d steps: unexpected reply %v (%v)", len(c.steps), cmd.Val(), err)
		}
		for k, i := range c.steps {
			if err := s.settleStep(steps[i], saved[i], outbound[i], replies[k], &results[i]); err != nil {
				return nil, err
			}
		}
	}
	if execErr != nil && !isErrorReply(execErr) {
		return nil, fmt.Errorf("commit %d steps: %w", len(steps), execErr)
	}
	if cluster {
		s.removeHoldersPaid(ctx, idx.holdersRemoved, results)
	}
	return results, nil
}

// logRemovalsNotDone logs each removal from the holder index that Redis refused or did
// not answer: the account stays flagged while paid, which only sends a withdrawal of
// the same holder to review, until its next bill change. The log names the account,
// never the holder.
func (s *Store) logRemovalsNotDone(removals []indexWrite) {
	for _, r := range removals {
		if err := r.cmd.Err(); err != nil {
			s.log.Warn().Err(err).Str("account_id", r.account).
				Msg("holder index: paid account not removed; it stays flagged for the same-holder risk rule until its next bill change")
		}
	}
}

// removeHoldersPaid is the holder index's removals on a cluster, where the account and
// the holder's set live on different masters, so no script can check one and change
// the other at once. It runs after the steps' replies, in a round trip of its own, and
// only for a step that was applied: one that conflicted or failed paid nothing.
// Another instance that makes the account overdue again and adds it in between this
// round trip's read of the replies and its removal loses that entry; one Redis has no
// such window (unflagLua).
func (s *Store) removeHoldersPaid(ctx context.Context, removed []holderEntry, results []state.StepResult) {
	pipe := s.rdb.Pipeline()
	var removals []indexWrite
	for _, h := range removed {
		if results[h.step].Outcome == state.Applied {
			removals = append(removals, indexWrite{cmd: pipe.SRem(ctx, holderOverdueKey(h.name), h.account), account: h.account, index: "holder"})
		}
	}
	if len(removals) == 0 {
		return
	}
	_, _ = pipe.Exec(ctx) // each reply is checked by logRemovalsNotDone
	s.logRemovalsNotDone(removals)
}

// indexWrite is one write to the case index or the holder index, with the account it
// is for, so its reply can be checked and reported on its own.
type indexWrite struct {
	cmd     redis.Cmder
	account string
	index   string // "case" or "holder"
}

// indexWritesDone checks the index entries written before a batch's steps. One that
// Redis did not answer is an error: the steps must not go without it. One that Redis
// refused (a key of another type, put there by hand) is logged, and the steps go on:
// failing them would fail every batch its event joins, on every retry. The log names
// the account, never the holder.
func (s *Store) indexWritesDone(writes []indexWrite) error {
	for _, w := range writes {
		err := w.cmd.Err()
		if err == nil {
			continue
		}
		if !isErrorReply(err) {
			return err
		}
		s.log.Error().Err(err).Str("index", w.index).Str("account_id", w.account).
			Msg("index entry refused by Redis; the step is saved without it (a case not found by its id, or a holder not flagged for the risk rule): repair the key")
	}
	return nil
}

// indexWrites are what a batch writes outside its steps' slots: the case index and the
// index of accounts with an overdue amount by holder name.
type indexWrites struct {
	cases          []caseEntry
	holdersAdded   []holderEntry
	holdersRemoved []holderEntry
}

type caseEntry struct{ caseID, account string }

// holderEntry is an account under a holder name. For a removal, step is the batch's
// last step that changed the entry, and version the account's version after the
// batch's last step of the account.
type holderEntry struct {
	name, account string
	step          int
	version       string
}

// indexWritesOf gathers a batch's index writes. Each account's holder entry is
// written once: added before the batch's steps when any of them makes it overdue (an
// earlier step that paid only makes the flag early, which is safe), and removed after
// them when the last of them paid. So the index ends as the batch's last step of the
// account left it, whatever order the writes land in across the nodes of a cluster.
func indexWritesOf(steps []state.Step) indexWrites {
	var w indexWrites
	type holderKey struct{ name, account string }
	type holder struct {
		entry          holderEntry
		overdue, added bool
	}
	var holders []holder
	var at map[holderKey]int // index in holders; made by the batch's first holder change
	for i, st := range steps {
		for _, id := range st.OpenedCases {
			w.cases = append(w.cases, caseEntry{caseID: id, account: st.Event.AccountID})
		}
		h := st.HolderOverdue
		if h == nil {
			continue
		}
		key := holderKey{name: h.Name, account: st.Event.AccountID}
		k, seen := at[key]
		if !seen {
			if at == nil {
				at = make(map[holderKey]int)
			}
			k = len(holders)
			at[key] = k
			holders = append(holders, holder{entry: holderEntry{name: h.Name, account: st.Event.AccountID}})
		}
		holders[k].entry.step, holders[k].overdue = i, h.Overdue
		if h.Overdue && !holders[k].added {
			holders[k].added = true
			w.holdersAdded = append(w.holdersAdded, holders[k].entry)
		}
	}
	for _, h := range holders {
		if !h.overdue {
			w.holdersRemoved = append(w.holdersRemoved, h.entry)
		}
	}
	if len(w.holdersRemoved) == 0 {
		return w
	}
	// Each removal's account version after the batch's last step of the account.
	last := make(map[string]int, len(w.holdersRemoved))
	for i, st := range steps {
		last[st.Event.AccountID] = i
	}
	for i := range w.holdersRemoved {
		w.holdersRemoved[i].version = steps[last[w.holdersRemoved[i].account]].NextVersion()
	}
	return w
}

// savedAccount is a step's account as the commit saves it: its next version
// (Step.NextVersion) and its "c" field.
type savedAccount struct{ version, core string }

// settleStep reads one step's reply into its result, and caches the account it saved.
// An applied step's reply is "APPLIED" and the outbox position of each of its outbound
// events, in order; outbound are those events, for the result.
func (s *Store) settleStep(st state.Step, saved savedAccount, outbound []state.OutboxEntry, reply string, result *state.StepResult) error {
	if reply == "APPLIED" || strings.HasPrefix(reply, "APPLIED ") {
		result.Outcome = state.Applied
		if at := strings.Fields(reply[len("APPLIED"):]); len(at) == len(outbound) {
			for k := range outbound {
				outbound[k].Position = at[k]
			}
			result.Saved = outbound
		} else {
			// Saved all the same: the events are in the outbox, and the relay reads
			// them from there (the intake sees Saved short and says so).
			s.log.Error().Str("account_id", st.Event.AccountID).Str("event_id", st.Event.EventID).Int("positions", len(at)).Int("outbound", len(outbound)).
				Msg("the step script's reply names another number of outbox positions than the step has outbound events")
		}
		if st.Account != nil {
			s.cache.put(st.Event.AccountID, saved.version, *st.Account, true, saved.core)
		}
		return nil
	}
	switch reply {
	case "DUPLICATE":
		result.Outcome = state.Duplicate
	case "CONFLICT":
		result.Outcome = state.Conflict
	case "FACT_CONFLICT":
		result.Outcome = state.FactConflict
	case "ID_CONFLICT":
		result.Outcome = state.IDConflict
	default:
		if strings.HasPrefix(reply, "ERR ") {
			*result = state.StepResult{Outcome: state.Failed, Reason: fmt.Sprintf("account %s event %s: %s", st.Event.AccountID, st.Event.EventID, reply)}
			return nil
		}
		return fmt.Errorf("commit event %s: unexpected reply %q", st.Event.EventID, reply)
	}
	return nil
}

// isErrorReply tells an error Redis replied for one command from a failure to talk to
// Redis at all.
func isErrorReply(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && !errors.Is(err, redis.Nil)
}

// recordsArgs are how a batch's steps write their idempotency records (apply.lua's
// ARGV[4] and BATCH now and layout), and which compatibility writes they make.
type recordsArgs struct {
	// retention (seconds) and now (unix seconds) are strings, held as apply.lua's
	// arguments: boxed once per commit, not once per step.
	retention any
	now       any
	legacy    bool // the older layout's records may exist: read and write them too
	format    recordFormat
	// kindsApart: the kinds of deadlines are kept in their hash too, which an instance
	// of the version before, reading no kind from a score, may still read.
	kindsApart bool
	// endedCasesInAccounts: an ended case may be kept in its account's own hash, which
	// no instance of the version before, unable to read such an account, may still
	// read.
	endedCasesInAccounts bool
}

// batch is apply.lua's BATCH, the batch call's ARGV[3] to [6]: now, the records'
// layout, kindsApart and endedInAccount.
func (r recordsArgs) batch() [4]any {
	var layout any = ""
	switch {
	case r.legacy:
		layout = "1"
	case r.format == compactRecords:
		layout = "c"
	case r.format == shortRecords:
		layout = "s"
	}
	var kindsApart, endedCasesInAccounts any = "0", "0"
	if r.kindsApart {
		kindsApart = "1"
	}
	if r.endedCasesInAccounts {
		endedCasesInAccounts = "1"
	}
	return [4]any{r.now, layout, kindsApart, endedCasesInAccounts}
}

// digestLen and packedDigestLen are a digest's length in hex (events.Event.Digests)
// and packed; a compact record is a packed digest and 3 bytes of hour, a short one the
// digest's first shortDigestLen bytes and the hour.
const (
	digestLen        = 24
	packedDigestLen  = digestLen / 2
	compactRecordLen = packedDigestLen + 3
	shortDigestLen   = 8
	shortRecordLen   = shortDigestLen + 3
)

// recordedDigest is a step's digest as apply.lua takes it in format: missing is what
// stands for none ("1" for content, "-" for a fact); packed (whole, or its first
// shortDigestLen bytes) unless records are text. A digest is 24 hex digits, so a text
// one never passes for a packed one.
func recordedDigest(digest, missing string, format recordFormat) (string, error) {
	if digest == "" {
		return missing, nil
	}
	if len(digest) != digestLen {
		return "", fmt.Errorf("digest %q is not %d hex digits", digest, digestLen)
	}
	packed, err := hex.DecodeString(digest)
	if err != nil {
		return "", fmt.Errorf("digest %q is not %d hex digits", digest, digestLen)
	}
	switch format {
	case compactRecords:
		return string(packed), nil
	case shortRecords:
		return string(packed[:shortDigestLen]), nil
	}
	return digest, nil
}

// appendStepArgs appends apply.lua's arguments for a step to args, and returns the "c"
// field of the account after it and its outbound events as the outbox of partition
// will hold them (but for their positions); next is st.NextVersion(), and base is the
// account Redis holds at the step's expected version when it is known field by field,
// else nil.
func appendStepArgs(args []any, st state.Step, next string, partition int, records recordsArgs, base *onRedis) (_ []any, core string, outbound []state.OutboxEntry, err error) {
	// The flags are held as any from the start: a constant string so held costs no
	// allocation, while a string variable is boxed anew for every step it is passed in.
	var mode any = ""
	var writes accountWrites
	if st.Account != nil {
		if writes, core, err = writesFor(base, st.Account); err != nil {
			return nil, "", nil, fmt.Errorf("encode account %s: %w", st.Event.AccountID, err)
		}
		mode = "="
		if writes.replace {
			mode = "!"
		}
	}
	retention := records.retention
	if st.Event.EventID == "" {
		if st.Fact != "" {
			// Its record would be kept for no time at all: the fact could count twice.
			return nil, "", nil, fmt.Errorf("account %s: a step with fact %s has no event id", st.Event.AccountID, st.Fact)
		}
		retention = "0"
	}
	digest, err := recordedDigest(st.Digest, "1", records.format)
	if err != nil {
		return nil, "", nil, fmt.Errorf("account %s event %s: %w", st.Event.AccountID, st.Event.EventID, err)
	}
	deadline := ""
	if st.SetNextDeadline {
		deadline = "-"
		if st.NextDeadline != nil {
			deadline = strconv.FormatInt(st.NextDeadline.UnixMilli(), 10) + ":" + st.NextDeadlineKind
		}
	}
	var fired any = "0"
	if st.Fired {
		fired = "1"
	}
	fact := ""
	if st.Fact != "" {
		if fact, err = recordedDigest(st.FactDigest, "-", records.format); err != nil {
			return nil, "", nil, fmt.Errorf("account %s fact %s: %w", st.Event.AccountID, st.Fact, err)
		}
	}
	var moves []string
	for _, ev := range st.Outbound {
		if c, ok := ev.Payload.(*events.CaseStatusChangedData); ok && c.Status != c.Previous {
			moves = append(moves, c.Kind+"/"+c.Previous+">"+c.Kind+"/"+c.Status)
		}
	}
	args = append(args,
		st.ExpectedVersion,
		next,
		mode,
		retention,
		deadline,
		fired,
		st.Event.AccountID,
		fact,
		digest,
		len(writes.set)/2,
		st.TraceParent,
		st.TraceState,
		strings.Join(moves, " "),
		len(st.ClosedCases),
		len(writes.del),
		eventField(st.Event.EventID),
		factField(st.Fact),
	)
	for _, c := range st.ClosedCases {
		encoded, err := encodeEndedCase(c, !records.legacy)
		if err != nil {
			return nil, "", nil, err
		}
		args = append(args, c.ID, encoded)
	}
	for _, f := range writes.set {
		args = append(args, f)
	}
	for _, f := range writes.del {
		args = append(args, f)
	}
	if len(st.Outbound) > 0 {
		outbound = make([]state.OutboxEntry, len(st.Outbound))
	}
	for k, ev := range st.Outbound {
		encoded, err := ev.Encode()
		if err != nil {
			return nil, "", nil, fmt.Errorf("encode %s for account %s: %w", ev.Type, st.Event.AccountID, err)
		}
		subject := ev.NATSSubject()
		args = append(args, ev.ID, subject, encoded)
		outbound[k] = state.OutboxEntry{ID: ev.ID, Subject: subject, Body: encoded, TraceParent: st.TraceParent, TraceState: st.TraceState, Partition: partition}
	}
	return args, core, outbound, nil
}

func loadScripts(ctx context.Context, rdb redis.Scripter) error {
	for name, script := range map[string]*redis.Script{"apply": applyScript, "claim": claimScript, "unflag": unflagScript} {
		if err := script.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("load %s script: %w", name, err)
		}
	}
	return nil
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// Durability is what Redis says about keeping acknowledged writes.
type Durability struct {
	// Known is false when Redis does not let the store ask (CONFIG is disabled, as on
	// some managed services, or not implemented, as in the dev server).
	Known bool
	// AppendOnly: the append-only file is on.
	AppendOnly bool
	// FsyncPolicy is appendfsync: always, everysec or no.
	FsyncPolicy string
}

// Durability asks Redis whether it persists what the store writes.
func (s *Store) Durability(ctx context.Context) (Durability, error) {
	aof, err := s.rdb.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		if isErrorReply(err) {
			return Durability{}, nil // not allowed or not implemented: unknown
		}
		return Durability{}, fmt.Errorf("ask Redis about persistence: %w", err)
	}
	fsync, err := s.rdb.ConfigGet(ctx, "appendfsync").Result()
	if err != nil && !isErrorReply(err) {
		return Durability{}, fmt.Errorf("ask Redis about persistence: %w", err)
	}
	return Durability{Known: len(aof) > 0, AppendOnly: aof["appendonly"] == "yes", FsyncPolicy: fsync["appendfsync"]}, nil
}

// slicePool keeps the slices a commit gathers one Redis call's keys or arguments in:
// the call copies them, so they are filled again by the next, rather than grown anew
// for every call (they were the largest source of garbage per event).
type slicePool[T any] struct{ pool sync.Pool }

func (p *slicePool[T]) get() []T {
	if s, ok := p.pool.Get().(*[]T); ok {
		return *s
	}
	return nil
}

// put keeps s for another call, emptied so it holds on to nothing.
func (p *slicePool[T]) put(s []T) {
	clear(s)
	s = s[:0]
	p.pool.Put(&s)
}

var (
	callArgs slicePool[any]
	callKeys slicePool[string]
)
