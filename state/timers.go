package state

import (
	"cmp"
	"slices"
	"time"
)

// TimerKind names what a deadline is for.
type TimerKind string

// Timer kinds. A new kind is a constant here and a line in timerKinds.
const (
	// TimerReserveUnfreeze is the end of the reserve countdown: the hold after the
	// last pay-as-you-go release [001].
	TimerReserveUnfreeze TimerKind = "reserve_unfreeze"
	// TimerCaseOverdue is a case's expected completion: still open then, it is
	// reported overdue [001].
	TimerCaseOverdue TimerKind = "case_overdue"
	// TimerSettlementEnd is the end of a discontinuation refund's wait for delayed
	// billing items [000]: the case moves on by itself.
	TimerSettlementEnd TimerKind = "settlement_end"
)

// Timer is one deadline of an account. Subject tells apart several timers of one kind
// on one account (a case id); "" for a timer the account has at most one of.
type Timer struct {
	Kind    TimerKind
	Subject string
	At      time.Time
}

// timerKind is what the engine knows about one kind of deadline.
type timerKind struct {
	// pending lists the timers of this kind the account's state calls for. Timers are
	// derived from the state, never kept beside it, so the two cannot disagree: a
	// decision that cancels a countdown cancels its timer.
	pending func(a *Account, r Rules) []Timer
	// fire decides what a timer does when it is due. It checks the account's state
	// again, so a timer fired late, twice, or after what it waited for changed, decides
	// nothing.
	fire func(d *decider, a *Account, t Timer) (effect, error)
}

// timerKinds lists every kind, in the order their due timers fire when several are
// due at the same moment.
var timerKinds = []struct {
	kind TimerKind
	timerKind
}{
	{TimerReserveUnfreeze, timerKind{pending: reserveTimers, fire: (*decider).unfreezeReserve}},
	{TimerCaseOverdue, timerKind{pending: caseOverdueTimers, fire: (*decider).reportOverdue}},
	{TimerSettlementEnd, timerKind{pending: settlementTimers, fire: (*decider).endSettlement}},
}

// Timers are the account's pending deadlines, every kind, earliest first.
func (a Account) Timers(r Rules) []Timer { return a.pendingTimers(r) }

// pendingTimers is Timers of an account the caller already keeps on the heap: each
// kind's function is called through the table, so the account it is given escapes,
// and a value receiver would be copied there on every call (two per event).
func (a *Account) pendingTimers(r Rules) []Timer {
	var all []Timer
	for _, k := range timerKinds {
		all = append(all, k.pending(a, r)...)
	}
	if len(all) > 1 {
		slices.SortFunc(all, func(x, y Timer) int {
			return cmp.Or(x.At.Compare(y.At), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Subject, y.Subject))
		})
	}
	return all
}

// NextDeadline is the earliest of the account's timers, or nil when none runs: the one
// deadline a store keeps for the account.
func (a Account) NextDeadline(r Rules) *time.Time { return earliest(a.Timers(r)) }

// TimerKinds are every kind of timer, in the order their due timers fire.
func TimerKinds() []TimerKind {
	kinds := make([]TimerKind, len(timerKinds))
	for i, k := range timerKinds {
		kinds[i] = k.kind
	}
	return kinds
}

func earliestKind(timers []Timer) TimerKind {
	if len(timers) == 0 {
		return ""
	}
	return timers[0].Kind
}

func earliest(timers []Timer) *time.Time {
	if len(timers) == 0 {
		return nil
	}
	return &timers[0].At
}

// FireDue decides what the account's timers that are due at now do: each due timer is
// handed to its kind, which decides on the account as the earlier firings left it. The
// store keeps one pending deadline per account (the earliest), and the decision's
// Timers give the next one.
func FireDue(a Account, r Rules, now time.Time) (Decision, error) {
	d := decider{rules: r, now: now, before: a, next: a.clone()}
	for _, t := range a.Timers(r) {
		if t.At.After(now) {
			break
		}
		eff, err := kindOf(t.Kind).fire(&d, &d.next, t)
		if err != nil {
			return Decision{}, err
		}
		d.changed = d.changed || eff == changed
	}
	return d.finish(&d.next)
}

func kindOf(k TimerKind) timerKind {
	for _, tk := range timerKinds {
		if tk.kind == k {
			return tk.timerKind
		}
	}
	panic("state: timer of unknown kind " + string(k)) // Timers only lists known kinds
}
