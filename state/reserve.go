package state

import (
	"time"

	"github.com/payinfra/refunds/events"
)

// createResource records a resource. A pay-as-you-go one freezes the reserve, and
// cancels a countdown that was running [001].
func (d *decider) createResource(a *Account, p *events.ResourceCreatedData) (effect, error) {
	r, known := a.Resources[p.ResourceID]
	if known && r.Created {
		return unchanged, nil
	}
	payg := p.BillingMode == events.BillingPayAsYouGo
	if known && r.ReleasedAt != nil {
		// Its release arrived first: the resource is already gone. Now that its mode
		// is known, its release counts for the countdown if it was pay-as-you-go.
		delete(own(a, sharedResources, &a.Resources), p.ResourceID)
		if payg {
			a.noteRelease(*r.ReleasedAt)
		}
		return changed, nil
	}
	own(a, sharedResources, &a.Resources)[p.ResourceID] = Resource{Created: true, PayAsYouGo: payg}
	a.noteDiscontinuationResources(d.ev.Time.UTC())
	return changed, nil
}

// publishReserveFrozen says the reserve was frozen when a decision took it from none to
// frozen or counting down: a countdown can also start from a release that arrived
// before its create, and notifiers must not see unfrozen without frozen.
func (d *decider) publishReserveFrozen(a *Account) error {
	before, _ := d.before.reserve(d.rules)
	after, _ := a.reserve(d.rules)
	if before != ReserveNone || after == ReserveNone {
		return nil
	}
	return d.publish(events.ReserveFrozen, &events.ReserveFrozenData{Amount: events.Amount{Decimal: d.rules.ReserveAmount}})
}

// releaseResource records a release. Every release of a pay-as-you-go resource resets
// the countdown to its own time, so the latest release time is kept; an older release
// arriving late never shortens it. A release of a resource not yet created is not an
// error: it is kept until its create says whether it was pay-as-you-go.
func (d *decider) releaseResource(a *Account, p *events.ResourceReleasedData) (effect, error) {
	r, known := a.Resources[p.ResourceID]
	at := d.ev.Time.UTC()
	switch {
	case known && r.Created:
		delete(own(a, sharedResources, &a.Resources), p.ResourceID)
		if r.PayAsYouGo {
			a.noteRelease(at)
		}
		a.noteDiscontinuationResources(at)
	case known:
		// Released twice before its create: the later time stands, whatever the order.
		if !at.After(*r.ReleasedAt) {
			return unchanged, nil
		}
		own(a, sharedResources, &a.Resources)[p.ResourceID] = Resource{ReleasedAt: &at}
	default:
		if a.orphanReleases() >= d.rules.MaxOrphanReleases {
			// Not refused: if its create came later, a lost release would leave the
			// resource active for ever. It waits, and is dead-lettered if it waits long.
			return unchanged, wait("release of resource %s: the account already keeps %d releases of resources not yet created", p.ResourceID, d.rules.MaxOrphanReleases)
		}
		own(a, sharedResources, &a.Resources)[p.ResourceID] = Resource{ReleasedAt: &at}
	}
	return changed, nil
}

func (a *Account) orphanReleases() int {
	n := 0
	for _, r := range a.Resources {
		if !r.Created {
			n++
		}
	}
	return n
}

func (a *Account) noteRelease(at time.Time) {
	if a.LastReleaseAt == nil || at.After(*a.LastReleaseAt) {
		a.LastReleaseAt = &at
	}
}

// reserveTimers is the reserve countdown's deadline while one runs.
func reserveTimers(a *Account, r Rules) []Timer {
	if state, at := a.reserve(r); state == ReserveCountingDown {
		return []Timer{{Kind: TimerReserveUnfreeze, At: *at}}
	}
	return nil
}

// unfreezeReserve releases the reserve when its countdown has run out: no
// pay-as-you-go resource is active and the deadline after the last release has come.
// refunds.reserve.unfrozen goes out with the release the countdown ran from. A stale
// timer (a new resource, a later release, a countdown already run out) decides nothing.
func (d *decider) unfreezeReserve(a *Account, _ Timer) (effect, error) {
	state, deadline := a.reserve(d.rules)
	if state != ReserveCountingDown || d.now.Before(*deadline) {
		return unchanged, nil
	}
	released := *a.LastReleaseAt
	a.ReserveReleasedFor = &released
	// The same release always names the same firing, so a firing decided twice
	// publishes the same ids.
	d.cause = cause{ID: "reserve-due/" + a.ID + "/" + released.Format(time.RFC3339Nano), Type: events.ReserveUnfrozen}
	return changed, d.publish(events.ReserveUnfrozen, &events.ReserveUnfrozenData{
		Amount:        events.Amount{Decimal: d.rules.ReserveAmount},
		LastReleaseAt: &released,
	})
}
