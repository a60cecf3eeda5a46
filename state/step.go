package state

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/payinfra/refunds/events"
)

// The plain data the intake, the timer runner and the relay exchange with a store. It
// lives here, next to the decisions it carries, so that none of them depends on a
// particular store: each declares the two or three methods it needs, in these terms.

// EventRef names one event of a batch: its account and its CloudEvents id, and the
// case it names (events.Event.CaseRef), which the store loads if it has ended.
type EventRef struct {
	AccountID, EventID string
	CaseID             string
}

// Versioned is an account as loaded, with the version its next step must expect. A
// version names the write that produced it (see Step.NextVersion); "" is an account
// never saved.
type Versioned struct {
	Account Account
	Version string
	// Err says the stored account could not be read. Its events must wait; the other
	// accounts of the batch go on.
	Err error
}

// Step is one decision's atomic write: the account after it, its idempotency record,
// its outbound events and the account's next deadline, saved together or not at all.
type Step struct {
	// Event is the event decided. An empty EventID marks a timer firing, which leaves
	// no idempotency record: its effect is idempotent through the account's own state.
	Event           EventRef
	ExpectedVersion string
	// Account is the state after the event, or nil when the event changed nothing (its
	// id is still remembered).
	Account *Account
	// Outbound are the events to publish with the change; the store encodes them.
	Outbound []events.Event
	// SetNextDeadline makes NextDeadline the account's pending deadline: the earliest
	// of its timers, whatever their kind (nil: none). Unset, the pending one stays.
	SetNextDeadline bool
	NextDeadline    *time.Time
	// NextDeadlineKind is the kind of the timer NextDeadline is for ("" with none),
	// so a store can count pending deadlines by kind.
	NextDeadlineKind string
	// Fired marks the firing of a claimed deadline: the claim is released.
	Fired bool
	// OpenedCases are case ids to index under the account (see Decision.OpenedCases).
	OpenedCases []string
	// ClosedCases are ended cases to keep apart from the account's document.
	ClosedCases []Case
	// HolderOverdue is the account's changed entry in the holder index, or nil.
	HolderOverdue *HolderOverdue
	// Fact is the business fact the event announces (events.Event.FactID), or "", and
	// FactDigest what the event says about it (events.Event.FactDigest). A fact already
	// counted with the same digest makes the step a duplicate, whatever its event id;
	// with another digest, a FactConflict.
	Fact, FactDigest string
	// Digest fingerprints the event's content (the content digest of
	// events.Event.Digests: 24 hex digits, as is FactDigest; "" for none). It is kept as
	// the idempotency record, so the same event id with other content is told apart
	// from a redelivery (IDConflict).
	Digest string
	// TraceParent and TraceState are the W3C trace context (the traceparent and
	// tracestate header values) of what caused the step, saved with its outbound events
	// so that they are published in the same trace; "" for none. They are opaque here.
	TraceParent, TraceState string
}

// NextVersion is the version the account has after the step. It names the write: a
// hash of the version it was decided on and the event, so no other write (another
// instance's, another event's) can produce it. That is what makes a batch's later steps
// for an account fail when an earlier one conflicted, instead of matching a version
// another instance wrote and overwriting its change; a counter could not. 64 bits (16
// hex digits): two writes of one account naming the same version, at odds of 2^-64 a
// pair, are what it guards against. Versions are opaque, so one written by an earlier
// version (24 digits) is expected and chained from like any other.
func (st Step) NextVersion() string {
	if st.Account == nil {
		return st.ExpectedVersion
	}
	// Hashed and encoded in buffers on the stack: a step's next version is asked for
	// on its way by the intake (to chain the batch's next step of the account) and by
	// the store's commit, and the concatenation, its bytes and the hex string were
	// each an allocation.
	var in [128]byte
	b := append(append(append(in[:0], st.ExpectedVersion...), 0), st.Event.EventID...)
	sum := sha256.Sum256(b)
	var out [16]byte
	hex.Encode(out[:], sum[:8])
	return string(out[:])
}

// Outcome is what a store did with one step.
type Outcome int

const (
	// Applied: the step was saved with its outbound events.
	Applied Outcome = iota + 1
	// Duplicate: the event was applied before; nothing changed.
	Duplicate
	// Conflict: the account changed since it was loaded (another instance got there
	// first); nothing changed, and the event must be decided again on fresh state.
	Conflict
	// Failed: the store refused this step (StepResult.Reason says why); nothing
	// changed. The other steps of the batch stand on their own.
	Failed
	// FactConflict: the fact the event announces was counted with other data; nothing
	// changed.
	FactConflict
	// IDConflict: the event's id was applied before with other content; nothing
	// changed.
	IDConflict
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
	case IDConflict:
		return "id conflict"
	}
	return "unknown"
}

// StepResult is the outcome of one step, with the store's reason when it Failed.
type StepResult struct {
	Outcome Outcome
	Reason  string
	// Saved are an Applied step's outbound events as the store's outbox holds them, in
	// order, positions included: what a relay in the same process can publish and
	// remove at once, without reading them back.
	Saved []OutboxEntry
}

// OutboxEntry is an encoded outbound event waiting in a store's outbox. Partition and
// Position say where it is: order holds within a partition, and the store needs both
// to remove it once it is published.
type OutboxEntry struct {
	ID      string // the event's id, also its Nats-Msg-Id
	Subject string
	Body    []byte
	// TraceParent and TraceState are the W3C trace context it is published with
	// (Step.TraceParent); "" for none, as in entries written before they were kept.
	TraceParent, TraceState string
	Partition               int
	Position                string
}
