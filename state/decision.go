package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Decision is what applying one event decided: the account afterwards and the events
// that must be published with it. Unchanged decisions are still recorded (the event id is
// remembered) so that a redelivery is recognised.
type Decision struct {
	Account  Account
	Changed  bool
	Outbound []Outbound
	// DeadlineChanged says the reserve countdown's deadline moved, started or stopped;
	// ReserveDeadline is the deadline after the decision (nil: no countdown runs). The
	// store keeps one pending deadline per account from these.
	DeadlineChanged bool
	ReserveDeadline *time.Time
}

// Outbound is an event to publish, already encoded, with the NATS subject it goes to and
// its CloudEvents id (also its Nats-Msg-Id, so a republish after a crash is deduplicated).
type Outbound struct {
	ID      string
	Subject string
	Body    []byte
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
