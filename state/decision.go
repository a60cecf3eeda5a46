package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/payinfra/refunds/events"
)

// Decision is what applying one event (or firing an account's due timers) decided: the
// account afterwards, the events that must be published with it, and the account's
// deadlines. Unchanged decisions are still recorded (the event id is remembered) so
// that a redelivery is recognised.
type Decision struct {
	Account  Account
	Changed  bool
	Outbound []events.Event
	// Timers are the account's deadlines after the decision, by kind, earliest first.
	Timers []Timer
	// NextDeadlineChanged says the earliest of Timers moved, started, stopped or is now
	// of another kind: the
	// store keeps that one deadline per account.
	NextDeadlineChanged bool
	// OpenedCases are the ids of the cases the decision opened: the store indexes them
	// so a case can be found by its id alone.
	OpenedCases []string
	// ClosedCases are the cases that ended (or, ended, changed) with the decision:
	// they are out of the account's document, and the store keeps them apart in the
	// same atomic step.
	ClosedCases []Case
	// HolderOverdue, when set, is the account's entry in the index of holders with an
	// overdue amount, changed by the decision: the risk rule of another account under
	// the same name reads it.
	HolderOverdue *HolderOverdue
}

// HolderOverdue says whether the account of the holder Name has an overdue amount.
type HolderOverdue struct {
	Name    string
	Overdue bool
}

// NextDeadline is the earliest of the decision's timers, or nil when none runs.
func (d Decision) NextDeadline() *time.Time { return earliest(d.Timers) }

// Step is the decision as one atomic write for event, decided on the account at
// expectedVersion. It is the one place a decision becomes a step.
func (d Decision) Step(event EventRef, expectedVersion string) Step {
	st := Step{
		Event:            event,
		ExpectedVersion:  expectedVersion,
		Outbound:         d.Outbound,
		SetNextDeadline:  d.NextDeadlineChanged,
		NextDeadline:     d.NextDeadline(),
		NextDeadlineKind: string(earliestKind(d.Timers)),
		OpenedCases:      d.OpenedCases,
		ClosedCases:      d.ClosedCases,
		HolderOverdue:    d.HolderOverdue,
	}
	if d.Changed || len(d.ClosedCases) > 0 || d.HolderOverdue != nil {
		acct := d.Account
		st.Account = &acct
	}
	return st
}

// Refusal means the event can never be applied: it is parked as a dead letter with
// Reason, and nothing changes.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return "refused: " + r.Reason }

func refuse(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// Waiting means the event refers to something that has not arrived yet (its account, a
// case it answers). It is retried later instead of being applied or refused.
type Waiting struct{ Reason string }

func (w *Waiting) Error() string { return "waiting: " + w.Reason }

func wait(format string, args ...any) error {
	return &Waiting{Reason: fmt.Sprintf(format, args...)}
}

// OutboundID derives the id of the n-th event published for account because of the
// event causeID. It is deterministic so that deciding the same event twice can never
// publish twice under different ids, and it includes the account so that two accounts'
// events never share an id (and a Nats-Msg-Id) when their causes happen to.
func OutboundID(account, causeID string, n int) string {
	sum := sha256.Sum256([]byte(account + "\x00" + causeID))
	return "rf-" + hex.EncodeToString(sum[:12]) + "-" + strconv.Itoa(n)
}
