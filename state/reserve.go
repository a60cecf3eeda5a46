package state

import (
	"time"

	"github.com/payinfra/refunds/events"
)

// createResource records a resource. A pay-as-you-go one freezes the reserve, and
// cancels a countdown that was running [001].
func (d *decider) createResource(a *Account, p *events.ResourceCreatedData) error {
	r, known := a.Resources[p.ResourceID]
	if known && r.Created {
		return nil
	}
	payg := p.BillingMode == events.BillingPayAsYouGo
	d.changed = true
	if known && r.ReleasedAt != nil {
		// Its release arrived first: the resource is already gone. Now that its mode
		// is known, its release counts for the countdown if it was pay-as-you-go.
		delete(a.Resources, p.ResourceID)
		if payg {
			a.noteRelease(*r.ReleasedAt)
		}
		return nil
	}
	put(&a.Resources, p.ResourceID, Resource{Created: true, PayAsYouGo: payg})
	return nil
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
func (d *decider) releaseResource(a *Account, p *events.ResourceReleasedData) error {
	r, known := a.Resources[p.ResourceID]
	at := d.ev.Time.UTC()
	switch {
	case known && r.Created:
		delete(a.Resources, p.ResourceID)
		if r.PayAsYouGo {
			a.noteRelease(at)
		}
	case known:
		// Released twice before its create: the later time stands, whatever the order.
		if !at.After(*r.ReleasedAt) {
			return nil
		}
		put(&a.Resources, p.ResourceID, Resource{ReleasedAt: &at})
	default:
		if a.orphanReleases() >= d.rules.MaxOrphanReleases {
			// Not refused: if its create came later, a lost release would leave the
			// resource active for ever. It waits, and is dead-lettered if it waits long.
			return wait("release of resource %s: the account already keeps %d releases of resources not yet created", p.ResourceID, d.rules.MaxOrphanReleases)
		}
		put(&a.Resources, p.ResourceID, Resource{ReleasedAt: &at})
	}
	d.changed = true
	return nil
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

// ReserveDue decides what the reserve countdown's deadline does to account a at now.
// If a countdown runs, no pay-as-you-go resource is active and its deadline has come,
// the reserve is released and refunds.reserve.unfrozen goes out, with the release the
// countdown ran from. Anything else (a new resource, a later release, a countdown
// already run out, a deadline not yet reached) decides nothing, so a stale or
// repeated timer has no effect.
//
// causeID names the firing in the ids of what it publishes; it must be the same every
// time the same deadline fires, so a firing decided twice publishes the same ids.
func ReserveDue(a Account, r Rules, now time.Time) (Decision, error) {
	d := decider{rules: r, now: now, before: a}
	next := a.clone()
	state, deadline := a.reserve(r)
	if state != ReserveCountingDown || now.Before(*deadline) {
		return d.finish(next)
	}
	released := *a.LastReleaseAt
	next.ReserveReleasedFor = &released
	d.ev = events.Event{Envelope: events.Envelope{
		ID:      "reserve-due/" + a.ID + "/" + released.Format(time.RFC3339Nano),
		Subject: a.ID,
		Type:    events.ReserveUnfrozen,
	}}
	d.changed = true
	if err := d.publish(events.ReserveUnfrozen, &events.ReserveUnfrozenData{
		Amount:        events.Amount{Decimal: r.ReserveAmount},
		LastReleaseAt: &released,
	}); err != nil {
		return Decision{}, err
	}
	return d.finish(next)
}
