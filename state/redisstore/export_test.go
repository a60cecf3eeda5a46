package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/state"
)

// FlushScriptsForTest empties Redis's script cache, as a Redis restart does.
func (s *Store) FlushScriptsForTest(ctx context.Context) error {
	return s.rdb.ScriptFlush(ctx).Err()
}

// AccountKeyForTest is the Redis key an account is stored under.
func AccountKeyForTest(id string) string { return accountKey(id) }

// ClientForTest is the store's Redis client.
func (s *Store) ClientForTest() redis.UniversalClient { return s.rdb }

// EncodeAccountForTest is the account's hash as a step that replaces it writes it, at
// version "v-test".
func EncodeAccountForTest(a state.Account) (map[string]string, error) {
	w, _, err := writesFor(nil, &a)
	if err != nil {
		return nil, err
	}
	fields := map[string]string{fieldVersion: "v-test"}
	for i := 0; i < len(w.set); i += 2 {
		fields[w.set[i]] = w.set[i+1]
	}
	return fields, nil
}

// ChangedFieldsForTest are the writes of a step from base to next: the fields set, and
// those deleted.
func ChangedFieldsForTest(base, next state.Account) (set map[string]string, deleted []string, err error) {
	baseCore, err := encodeCore(&base)
	if err != nil {
		return nil, nil, err
	}
	w, _, err := writesFor(&onRedis{account: &base, core: string(baseCore)}, &next)
	if err != nil {
		return nil, nil, err
	}
	set = make(map[string]string)
	for i := 0; i < len(w.set); i += 2 {
		set[w.set[i]] = w.set[i+1]
	}
	return set, w.del, nil
}

// DecodeAccountForTest reads an account's hash.
func DecodeAccountForTest(fields map[string]string) (state.Account, error) {
	v, _, err := decodeAccountFields("", fields)
	return v.Account, err
}

// DecodeDocumentForTest reads one document of the first layout (the whole account in
// one field, its top-ups inside).
func DecodeDocumentForTest(b []byte) (state.Account, error) { return decodeAccountJSON(b, nil) }

// StoredFieldsForTest is the account's hash as Redis holds it.
func (s *Store) StoredFieldsForTest(ctx context.Context, id string) (map[string]string, error) {
	return s.rdb.HGetAll(ctx, accountKey(id)).Result()
}

// ClosedCasesKeyForTest is the Redis key of an account's ended cases.
func ClosedCasesKeyForTest(id string) string { return closedCasesKey(id) }

// SetClockForTest makes now the store's clock: when its idempotency records are
// written, and when the older layout's have all expired.
func (s *Store) SetClockForTest(now func() time.Time) { s.now = now }

// RetentionForTest is how long the store remembers an event id.
func (s *Store) RetentionForTest() time.Duration { return s.retention }

// IDsKeyForTest is the hash of an account's idempotency records.
func IDsKeyForTest(accountID string) string { return idsKey(accountID) }

// OlderLayoutKeysForTest are the keys an event's record and a fact's had in the older
// layout, one key per record.
func OlderLayoutKeysForTest(accountID, eventID, factID string) (seen, fact string) {
	return seenKey(accountID, eventID), factKey(accountID, factID)
}

// FactFieldForTest is a fact's field in its account's ids hash.
func FactFieldForTest(factID string) string { return factField(factID) }

// EventFieldForTest is an event's field in its account's ids hash.
func EventFieldForTest(eventID string) string { return eventField(eventID) }

// CaseIndexKeyForTest and OlderCaseIndexKeyForTest are where a case id is indexed now
// and where the version before indexed it.
func CaseIndexKeyForTest(caseID string) string      { return caseIndexKey(caseID) }
func OlderCaseIndexKeyForTest(caseID string) string { return olderCaseIndexKey(caseID) }

// TimerKeysForTest are the keys that keep an account's deadline: pending, claimed, the
// kinds as versions before kept them apart, and the counts by kind.
func TimerKeysForTest(accountID string) (due, claimed, kinds, counts string) {
	p := Partition(accountID)
	return timersDueKey(p), timersClaimedKey(p), timerKindsKey(p), timerCountsKey(p)
}

// StepScriptForTest is the Lua source of one step.
var StepScriptForTest = applyLua

// HolderOverdueKeyForTest is the key of the holder index entry of a holder name.
func HolderOverdueKeyForTest(name string) string { return holderOverdueKey(name) }

// StepWritesForTest works out a step's writes from base, cached field by field, to
// next, as Commit does.
func StepWritesForTest(base, next *state.Account) error {
	_, _, err := writesFor(&onRedis{account: base}, next)
	return err
}

// StepArgsForTest builds a step's arguments to apply.lua into args (emptied first) as
// Commit does once every layout upgrade is done, from base, cached field by field (nil
// for an account not cached), and returns them.
func StepArgsForTest(args []any, st state.Step, base *state.Account) ([]any, error) {
	records := recordsArgs{retention: any("3024000"), now: any("1796601600"), format: shortRecords, endedCasesInAccounts: true}
	var cached *onRedis
	if base != nil {
		cached = &onRedis{account: base}
	}
	args, _, _, err := appendStepArgs(args[:0], st, st.NextVersion(), 0, records, cached)
	return args, err
}
