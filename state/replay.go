package state

import (
	"errors"
	"time"

	"github.com/payinfra/refunds/events"
)

// Replay is an account rebuilt in memory from its events through the engine's rules:
// what the engine should hold for it, to compare with what it does hold.
type Replay struct {
	Account Account
	// Ended are the cases that ended, by id; open ones are in Account.Cases.
	Ended map[string]Case
	// Outbound is every event the decisions published, in the order decided, the
	// events of timers that were due at the end included.
	Outbound []events.Event
	// Applied, Waiting and Refused count the events of the history: decided, still
	// waiting for something that never came, and refused (the engine dead-letters these).
	Applied, Waiting, Refused int
}

// Rebuild applies history to a new account in order, as the intake would: an event
// that waits is tried again after the others, a refused one is skipped, and ended
// cases are kept for the events that name them. Timers due at now fire at the end.
// A repeated event (the same id) changes nothing, as in the engine.
func Rebuild(accountID string, history []events.Event, rules Rules, now time.Time) Replay {
	r := Replay{Account: NewAccount(accountID), Ended: map[string]Case{}}
	seen := map[string]bool{}
	queue := append([]events.Event(nil), history...)
	for stalled := 0; len(queue) > 0 && stalled < len(queue); {
		ev := queue[0]
		queue = queue[1:]
		if seen[ev.ID] {
			stalled = 0
			continue
		}
		given := r.Account
		if c, ok := r.Ended[ev.CaseRef()]; ok {
			given = r.Account.WithClosedCases(map[string]Case{c.ID: c})
		}
		d, err := Apply(given, ev, rules, now)
		var w *Waiting
		switch {
		case errors.As(err, &w):
			queue = append(queue, ev)
			stalled++
			continue
		case err != nil:
			r.Refused++
			stalled = 0
			continue
		}
		stalled = 0
		seen[ev.ID] = true
		r.Applied++
		r.record(d)
	}
	if fired, err := FireDue(r.Account, rules, now); err == nil {
		r.record(fired)
	}
	r.Waiting = len(queue)
	return r
}

func (r *Replay) record(d Decision) {
	for _, c := range d.ClosedCases {
		r.Ended[c.ID] = c
	}
	r.Outbound = append(r.Outbound, d.Outbound...)
	r.Account = d.Account
}
