package state_test

import (
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// countingDown is an account whose only pay-as-you-go resource was released at the
// history's last time, with 500 of cash.
func countingDown(t *testing.T) (state.Account, time.Time) {
	h := newHistory(t).topUp("t1", "500.00").resource("ecs-1", "payg").release("ecs-1")
	return h.account(), h.at.Add(24 * time.Hour)
}

func TestAtTheDeadlineWithNoResourceActiveTheReserveIsReleasedOnce(t *testing.T) {
	a, deadline := countingDown(t)
	if got := a.ReserveDeadline(rules); got == nil || !got.Equal(deadline) {
		t.Fatalf("deadline %v, want 24h after the release: %v", got, deadline)
	}
	wantDecimal(t, "withdrawable while counting down", a.Ledger(rules).Withdrawable, dec("400"))

	d, err := state.FireDue(a, rules, deadline)
	if err != nil {
		t.Fatal(err)
	}
	l := d.Account.Ledger(rules)
	if !d.Changed || l.ReserveState != state.ReserveNone {
		t.Fatalf("changed %t, reserve %s: want released", d.Changed, l.ReserveState)
	}
	wantDecimal(t, "withdrawable grows by the reserve", l.Withdrawable, dec("500"))
	if d.NextDeadline() != nil || !d.NextDeadlineChanged {
		t.Errorf("deadline after release %v (changed %t), want none", d.NextDeadline(), d.NextDeadlineChanged)
	}
	unfrozen := outboundOf(t, d, events.ReserveUnfrozen)
	if len(unfrozen) != 1 {
		t.Fatalf("%d unfrozen events, want 1", len(unfrozen))
	}
	data := unfrozen[0].Payload.(*events.ReserveUnfrozenData)
	if !data.Amount.Equal(dec("100")) || data.LastReleaseAt == nil || !data.LastReleaseAt.Equal(deadline.Add(-24*time.Hour)) {
		t.Errorf("unfrozen %+v, want 100 with the last release's time", data)
	}

	again, err := state.FireDue(d.Account, rules, deadline.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed || len(again.Outbound) != 0 {
		t.Fatalf("a second firing changed the account or published: %+v", again)
	}

	t.Run("deciding the same firing twice publishes the same ids", func(t *testing.T) {
		twice, _ := state.FireDue(a, rules, deadline)
		if twice.Outbound[0].ID != d.Outbound[0].ID {
			t.Errorf("ids %s and %s", d.Outbound[0].ID, twice.Outbound[0].ID)
		}
	})
}

func TestAStaleTimerDoesNothing(t *testing.T) {
	a, deadline := countingDown(t)
	later := applyAll(t, a, event(t, events.ResourceReleased, "e-late-release", deadline.Add(-time.Hour), &events.ResourceReleasedData{ResourceID: "ecs-unseen"}))
	later = applyAll(t, later, event(t, events.ResourceCreated, "e-late-create", deadline.Add(-2*time.Hour), &events.ResourceCreatedData{ResourceID: "ecs-unseen", BillingMode: "payg"}))
	recreated := applyAll(t, a, event(t, events.ResourceCreated, "e-new", deadline.Add(-time.Hour), &events.ResourceCreatedData{ResourceID: "ecs-2", BillingMode: "payg"}))
	tests := []struct {
		name string
		a    state.Account
		now  time.Time
	}{
		{"before the deadline", a, deadline.Add(-time.Millisecond)},
		{"after a later release moved the deadline", later, deadline},
		{"after a new pay-as-you-go resource cancelled the countdown", recreated, deadline.Add(time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := state.FireDue(tc.a, rules, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if d.Changed || len(d.Outbound) != 0 {
				t.Fatalf("the timer changed the account or published: %+v", d.Outbound)
			}
			if d.Account.Ledger(rules).ReserveState == state.ReserveNone {
				t.Fatal("the reserve was released")
			}
			if want := tc.a.ReserveDeadline(rules); !sameDeadline(d.NextDeadline(), want) {
				t.Errorf("deadline after the stale timer %v, want the account's %v kept", d.NextDeadline(), want)
			}
		})
	}
}

func TestDecisionsSayWhenTheDeadlineMoves(t *testing.T) {
	base := newHistory(t).resource("ecs-1", "payg").resource("ecs-2", "payg").account()
	at := day0.Add(10 * time.Hour)
	steps := []struct {
		name       string
		ev         events.Event
		changed    bool
		deadlineAt *time.Time
	}{
		{"a release while another resource is active starts nothing", event(t, events.ResourceReleased, "r1", at, &events.ResourceReleasedData{ResourceID: "ecs-1"}), false, nil},
		{"releasing the last resource starts the countdown", event(t, events.ResourceReleased, "r2", at.Add(time.Hour), &events.ResourceReleasedData{ResourceID: "ecs-2"}), true, ptr(at.Add(25 * time.Hour))},
		{"a top-up leaves it alone", event(t, events.TopupReceived, "t", at, topUp("t1", "1.00")), false, ptr(at.Add(25 * time.Hour))},
		{"a new resource cancels it", event(t, events.ResourceCreated, "c3", at.Add(2*time.Hour), &events.ResourceCreatedData{ResourceID: "ecs-3", BillingMode: "payg"}), true, nil},
	}
	a := base
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			d, err := state.Apply(a, st.ev, rules, now)
			if err != nil {
				t.Fatal(err)
			}
			if d.NextDeadlineChanged != st.changed || !sameDeadline(d.NextDeadline(), st.deadlineAt) {
				t.Fatalf("changed %t deadline %v, want %t %v", d.NextDeadlineChanged, d.NextDeadline(), st.changed, st.deadlineAt)
			}
			a = d.Account
		})
	}
}

func TestAfterTheReserveIsReleasedANewResourceFreezesItAgain(t *testing.T) {
	a, deadline := countingDown(t)
	released, err := state.FireDue(a, rules, deadline)
	if err != nil {
		t.Fatal(err)
	}
	d, err := state.Apply(released.Account, event(t, events.ResourceCreated, "e-again", deadline.Add(time.Hour), &events.ResourceCreatedData{ResourceID: "ecs-9", BillingMode: "payg"}), rules, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Account.Ledger(rules).ReserveState != state.ReserveFrozen || len(outboundOf(t, d, events.ReserveFrozen)) != 1 {
		t.Fatal("a new pay-as-you-go resource after the release did not freeze the reserve and say so")
	}
}

func TestTheHoldIsConfiguration(t *testing.T) {
	short := rules
	short.ReserveHold = 3 * time.Second
	h := newHistory(t).topUp("t1", "500.00").resource("ecs-1", "payg").release("ecs-1")
	if got := h.account().ReserveDeadline(short); got == nil || !got.Equal(h.at.Add(3*time.Second)) {
		t.Fatalf("deadline %v with a 3s hold, want %v", got, h.at.Add(3*time.Second))
	}
	parts := h.account().Ledger(short).NonWithdrawable()
	if len(parts) != 1 || parts[0].Part != state.PartReserve || parts[0].Until == nil || !parts[0].Until.Equal(h.at.Add(3*time.Second)) {
		t.Errorf("with a 3s hold: parts %+v, want the reserve until 3s after the release", parts)
	}
}

func outboundOf(t testing.TB, d state.Decision, typ events.Type) []events.Event {
	t.Helper()
	var out []events.Event
	for _, o := range d.Outbound {
		ev, err := onTheWire(o)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func sameDeadline(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func ptr(t time.Time) *time.Time { return &t }
