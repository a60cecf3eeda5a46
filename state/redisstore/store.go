// Package redisstore keeps account state in Redis. Each event is saved in one atomic
// step together with its idempotency record and the events it publishes (the outbox), so
// a change and its notifications are never separated, and a redelivered event changes
// nothing. Steps are sent in pipelines, one Lua call per event, so a batch of events
// costs one round trip to load and one to save.
package redisstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/state"
)

//go:embed apply.lua
var applyLua string

//go:embed claim.lua
var claimLua string

var (
	applyScript = redis.NewScript(applyLua)
	claimScript = redis.NewScript(claimLua)
)

// DefaultIdempotencyRetention is how long an event id is remembered: 35 days. The inbound
// stream keeps events 7 days and JetStream deduplicates for 2 minutes, so a redelivery
// or a republished event can only come from an upstream replay; 35 days covers a full
// billing cycle plus a week of replays. Longer costs memory (≈100 bytes per event).
const DefaultIdempotencyRetention = 35 * 24 * time.Hour

// Store is account state in Redis, standalone or Cluster.
type Store struct {
	rdb         redis.UniversalClient
	retention   time.Duration
	lastFailure atomic.Value
	cache       *accountCache
}

// DefaultCachedAccounts is how many decoded accounts a store keeps: about 2 KiB each.
const DefaultCachedAccounts = 50_000

// New returns a store on rdb, remembering event ids and facts for
// DefaultIdempotencyRetention. It does not take ownership of rdb.
func New(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb, retention: DefaultIdempotencyRetention, cache: newAccountCache(DefaultCachedAccounts)}
}

// Prepare loads the Lua step and creates the outbox consumer groups. Call it on start;
// it is safe to call again.
func (s *Store) Prepare(ctx context.Context) error {
	if err := loadScripts(ctx, s.rdb); err != nil {
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

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Versioned is an account as loaded, with the version its next step must expect.
// A version names the write that produced it (see Step.NextVersion); "" is an account
// never saved.
type Versioned struct {
	Account state.Account
	Version string
	// Err says the stored account could not be read. Its events must wait; the other
	// accounts of the batch go on.
	Err error
}

// EventRef names one event of a batch: its account and its CloudEvents id.
type EventRef struct{ AccountID, EventID string }

// Load reads the batch's accounts and which of its events were already applied, in one
// pipeline. An account Redis has never seen comes back as state.NewAccount, version 0.
func (s *Store) Load(ctx context.Context, accountIDs []string, refs []EventRef) (map[string]Versioned, map[EventRef]bool, error) {
	pipe := s.rdb.Pipeline()
	accountCmds := make([]*redis.SliceCmd, len(accountIDs))
	for i, id := range accountIDs {
		accountCmds[i] = pipe.HMGet(ctx, accountKey(id), "v", "s")
	}
	seenCmds := make([]*redis.IntCmd, len(refs))
	for i, ref := range refs {
		seenCmds[i] = pipe.Exists(ctx, seenKey(ref.AccountID, ref.EventID))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("load batch of %d accounts: %w", len(accountIDs), err)
	}
	accounts := make(map[string]Versioned, len(accountIDs))
	for i, id := range accountIDs {
		vals := accountCmds[i].Val()
		if version, _ := vals[0].(string); version != "" {
			if a, ok := s.cache.get(id, version); ok {
				accounts[id] = Versioned{Account: a, Version: version}
				continue
			}
		}
		v, err := decodeAccount(id, vals)
		if err != nil {
			v = Versioned{Err: err}
		} else if v.Version != "" {
			s.cache.put(id, v.Version, v.Account)
		}
		accounts[id] = v
	}
	seen := make(map[EventRef]bool, len(refs))
	for i, ref := range refs {
		seen[ref] = seenCmds[i].Val() == 1
	}
	return accounts, seen, nil
}

// Account reads one account for the read API. ok is false when it was never seen.
func (s *Store) Account(ctx context.Context, id string) (acct state.Account, ok bool, err error) {
	vals, err := s.rdb.HMGet(ctx, accountKey(id), "v", "s").Result()
	if err != nil {
		return state.Account{}, false, fmt.Errorf("load account %s: %w", id, err)
	}
	v, err := decodeAccount(id, vals)
	if err != nil {
		return state.Account{}, false, err
	}
	return v.Account, v.Version != "", nil
}

func decodeAccount(id string, vals []any) (Versioned, error) {
	version, _ := vals[0].(string)
	body, _ := vals[1].(string)
	if version == "" || body == "" {
		return Versioned{Account: state.NewAccount(id)}, nil
	}
	var acct state.Account
	// Calling the account's own decoder skips encoding/json's validation pass over a
	// document the decoder reads in full anyway: a quarter of the intake's CPU went to
	// decoding accounts.
	if err := acct.UnmarshalJSON([]byte(body)); err != nil {
		return Versioned{}, fmt.Errorf("account %s: decode state: %w", id, err)
	}
	return Versioned{Account: acct, Version: version}, nil
}

// Step is one event's atomic write.
type Step struct {
	// Event is the event decided. An empty EventID marks a reserve deadline firing,
	// which leaves no idempotency record: its effect is idempotent through the
	// account's own state.
	Event           EventRef
	ExpectedVersion string
	// Account is the state after the event, or nil when the event changed nothing (its
	// id is still remembered).
	Account  *state.Account
	Outbound []state.Outbound
	// SetDeadline makes Deadline the account's pending reserve deadline (nil: none).
	SetDeadline bool
	Deadline    *time.Time
	// Fired marks the firing of a claimed deadline: the claim is released.
	Fired bool
	// Fact is the business fact the event announces (events.Event.FactID), or "", and
	// FactDigest what the event says about it (events.Event.FactDigest). A fact already
	// counted with the same digest makes the step a duplicate, whatever its event id;
	// with another digest, a FactConflict.
	Fact, FactDigest string
}

// NextVersion is the version the account has after the step. It names the write: a
// hash of the version it was decided on and the event, so no other write (another
// instance's, another event's) can produce it. That is what makes a batch's later steps
// for an account fail when an earlier one conflicted, instead of matching a version
// another instance wrote and overwriting its change; a counter could not.
func (st Step) NextVersion() string {
	if st.Account == nil {
		return st.ExpectedVersion
	}
	sum := sha256.Sum256([]byte(st.ExpectedVersion + "\x00" + st.Event.EventID))
	return hex.EncodeToString(sum[:12])
}

// Outcome is what Redis did with one step.
type Outcome int

const (
	// Applied: the step was saved with its outbound events.
	Applied Outcome = iota + 1
	// Duplicate: the event was applied before; nothing changed.
	Duplicate
	// Conflict: the account changed since it was loaded (another instance got there
	// first); nothing changed, and the event must be decided again on fresh state.
	Conflict
	// Failed: Redis refused this step (an error reply); nothing changed. The other
	// steps of the pipeline stand on their own.
	Failed
	// FactConflict: the fact the event announces was counted with other data; nothing
	// changed.
	FactConflict
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Conflict:
		return "conflict"
	case Failed:
		return "failed"
	case FactConflict:
		return "fact conflict"
	}
	return "unknown"
}

// Commit saves the steps in one pipeline, each atomically, in order. A step Redis
// refuses is Failed without failing the others. An error means no outcome is known
// (Redis unreachable); the caller retries the batch, which is safe because every step
// is idempotent.
func (s *Store) Commit(ctx context.Context, steps []Step) ([]Outcome, error) {
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

func (s *Store) commit(ctx context.Context, steps []Step) ([]Outcome, error) {
	retention := strconv.FormatInt(int64(s.retention/time.Second), 10)
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(steps))
	for i, st := range steps {
		args, err := stepArgs(st, retention)
		if err != nil {
			return nil, err
		}
		p := Partition(st.Event.AccountID)
		keys := []string{
			accountKey(st.Event.AccountID),
			seenKey(st.Event.AccountID, st.Event.EventID),
			outboxKey(p),
			reserveDueKey(p),
			reserveClaimedKey(p),
			// Without a fact, the seen key stands in: the script does not touch it.
			seenKey(st.Event.AccountID, st.Event.EventID),
		}
		if st.Fact != "" {
			keys[5] = factKey(st.Event.AccountID, st.Fact)
		}
		cmds[i] = applyScript.EvalSha(ctx, pipe, keys, args...)
	}
	_, execErr := pipe.Exec(ctx)
	outcomes := make([]Outcome, len(steps))
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			if isNoScript(err) || !isErrorReply(err) {
				// The script is gone, or Redis did not answer: nothing is known.
				return nil, fmt.Errorf("commit %d steps: %w", len(steps), err)
			}
			s.failed(steps[i], err)
			outcomes[i] = Failed
			continue
		}
		switch cmd.Val() {
		case "APPLIED":
			outcomes[i] = Applied
			if st := steps[i]; st.Account != nil {
				s.cache.put(st.Event.AccountID, st.NextVersion(), *st.Account)
			}
		case "DUPLICATE":
			outcomes[i] = Duplicate
		case "CONFLICT":
			outcomes[i] = Conflict
		case "FACT_CONFLICT":
			outcomes[i] = FactConflict
		default:
			return nil, fmt.Errorf("commit event %s: unexpected reply %v", steps[i].Event.EventID, cmd.Val())
		}
	}
	if execErr != nil && !isErrorReply(execErr) {
		return nil, fmt.Errorf("commit %d steps: %w", len(steps), execErr)
	}
	return outcomes, nil
}

// failed keeps the reason a step was refused, for the caller's logs.
func (s *Store) failed(st Step, err error) {
	s.lastFailure.Store(fmt.Sprintf("account %s event %s: %v", st.Event.AccountID, st.Event.EventID, err))
}

// LastFailure is the reason the most recent Failed step was refused.
func (s *Store) LastFailure() string {
	v, _ := s.lastFailure.Load().(string)
	return v
}

// isErrorReply tells an error Redis replied for one command from a failure to talk to
// Redis at all.
func isErrorReply(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && !errors.Is(err, redis.Nil)
}

func stepArgs(st Step, retention string) ([]any, error) {
	body := ""
	if st.Account != nil {
		// Directly, not through json.Marshal, which would compact the output again.
		b, err := st.Account.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("encode account %s: %w", st.Event.AccountID, err)
		}
		body = string(b)
	}
	if st.Event.EventID == "" {
		retention = "0"
	}
	deadline := ""
	if st.SetDeadline {
		deadline = "-"
		if st.Deadline != nil {
			deadline = strconv.FormatInt(st.Deadline.UnixMilli(), 10)
		}
	}
	fired := "0"
	if st.Fired {
		fired = "1"
	}
	fact := ""
	if st.Fact != "" {
		fact = cmp.Or(st.FactDigest, "-")
	}
	args := make([]any, 0, 8+3*len(st.Outbound))
	args = append(args,
		st.ExpectedVersion,
		st.NextVersion(),
		body,
		retention,
		deadline,
		fired,
		st.Event.AccountID,
		fact,
	)
	for _, out := range st.Outbound {
		args = append(args, out.ID, out.Subject, out.Body)
	}
	return args, nil
}

func loadScripts(ctx context.Context, rdb redis.Scripter) error {
	for name, script := range map[string]*redis.Script{"apply": applyScript, "claim": claimScript} {
		if err := script.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("load %s script: %w", name, err)
		}
	}
	return nil
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }
