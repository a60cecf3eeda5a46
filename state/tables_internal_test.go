package state

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
)

func TestEveryInboundTypeHasAHandlerOrIsDeliberatelyNotYetHandled(t *testing.T) {
	for _, spec := range events.Catalog() {
		_, handled := handlers[spec.Type]
		deferred := notYetHandled[spec.Type]
		switch {
		case spec.Direction != events.Inbound:
			if handled || deferred {
				t.Errorf("%s is outbound, yet listed for the intake", spec.Type)
			}
		case handled && deferred:
			t.Errorf("%s has a handler and is listed as not yet handled", spec.Type)
		case !handled && !deferred:
			t.Errorf("%s has no handler and is not listed as not yet handled", spec.Type)
		}
	}
}

func TestAHandlerRefusesAPayloadOfAnotherType(t *testing.T) {
	d := &decider{ev: events.Event{Envelope: events.Envelope{Type: events.TopupReceived}}}
	a := NewAccount("acct-1")
	if _, err := handlers[events.TopupReceived](d, &a, &events.BillIssuedData{}); err == nil {
		t.Fatal("a bill's payload was applied as a top-up")
	}
}

func TestTimerKinds(t *testing.T) {
	rules := DefaultRules()
	release := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	deadline := release.Add(rules.ReserveHold)
	countingDown := NewAccount("acct-1")
	countingDown.Opened = true
	countingDown.LastReleaseAt = &release
	countingDown.TopUps = []TopUp{{ID: "t1", Amount: decimal.NewFromInt(300), ReceivedAt: release.Add(-time.Hour)}}
	frozen := countingDown.clone()
	frozen.Resources = map[string]Resource{"ecs-2": {Created: true, PayAsYouGo: true}}
	runOut := countingDown.clone()
	runOut.ReserveReleasedFor = &release

	tests := []struct {
		name        string
		account     Account
		now         time.Time
		wantTimers  []Timer
		wantChanged bool
		wantOut     []events.Type
	}{
		{"a countdown has a reserve timer at its deadline, which fires at the deadline",
			countingDown, deadline, []Timer{{Kind: TimerReserveUnfreeze, At: deadline}}, true,
			[]events.Type{events.ReserveUnfrozen, events.BalanceChanged}},
		{"a reserve timer before its deadline decides nothing",
			countingDown, deadline.Add(-time.Millisecond), []Timer{{Kind: TimerReserveUnfreeze, At: deadline}}, false, nil},
		{"a frozen reserve has no timer, and a stale firing decides nothing",
			frozen, deadline, nil, false, nil},
		{"a countdown already run out has no timer, and a second firing decides nothing",
			runOut, deadline.Add(time.Hour), nil, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timers := tc.account.Timers(rules)
			if len(timers) != len(tc.wantTimers) {
				t.Fatalf("timers %+v, want %+v", timers, tc.wantTimers)
			}
			for i := range timers {
				if timers[i].Kind != tc.wantTimers[i].Kind || !timers[i].At.Equal(tc.wantTimers[i].At) {
					t.Errorf("timer %d = %+v, want %+v", i, timers[i], tc.wantTimers[i])
				}
			}
			d, err := FireDue(tc.account, rules, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if d.Changed != tc.wantChanged {
				t.Errorf("changed %t, want %t", d.Changed, tc.wantChanged)
			}
			var got []events.Type
			for _, o := range d.Outbound {
				got = append(got, o.Type)
			}
			if len(got) != len(tc.wantOut) {
				t.Fatalf("published %v, want %v", got, tc.wantOut)
			}
			for i := range got {
				if got[i] != tc.wantOut[i] {
					t.Errorf("published %v, want %v", got, tc.wantOut)
				}
			}
			if tc.wantChanged && (len(d.Timers) != 0 || !d.NextDeadlineChanged) {
				t.Errorf("after firing: timers %+v (next deadline changed %t), want none left", d.Timers, d.NextDeadlineChanged)
			}
		})
	}
}

func TestTimersComeEarliestFirstWhateverTheirKind(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	saved := timerKinds
	t.Cleanup(func() { timerKinds = saved })
	later := TimerKind("later")
	timerKinds = append(timerKinds[:len(timerKinds):len(timerKinds)], struct {
		kind TimerKind
		timerKind
	}{later, timerKind{pending: func(*Account, Rules) []Timer {
		return []Timer{{Kind: later, Subject: "b", At: at.Add(2 * time.Hour)}, {Kind: later, Subject: "a", At: at}}
	}}})
	a := NewAccount("acct-1")
	release := at.Add(-DefaultRules().ReserveHold).Add(time.Hour)
	a.LastReleaseAt = &release
	got := a.Timers(DefaultRules())
	want := []string{"later/a", "reserve_unfreeze/", "later/b"}
	if len(got) != len(want) {
		t.Fatalf("timers %+v, want %v", got, want)
	}
	for i, tm := range got {
		if string(tm.Kind)+"/"+tm.Subject != want[i] {
			t.Errorf("timer %d = %s/%s, want %s", i, tm.Kind, tm.Subject, want[i])
		}
	}
}

func TestWithdrawalCaseTransitions(t *testing.T) {
	amount := decimal.RequireFromString("80.00")
	tests := []struct {
		name        string
		from, to    string
		by          Actor
		allowed     bool
		wantHeld    string
		wantPaidOut string
	}{
		{"the rules open a case for review, holding its amount", "", events.StatusInReview, ByRules, true, "80", "0"},
		{"the rules send an original-route case straight to transfer", "", events.StatusApprovedPendingTransfer, ByRules, true, "80", "0"},
		{"the rules refuse a request at once, holding nothing", "", events.StatusRejected, ByRules, true, "0", "0"},
		{"a reviewer approves a case in review", events.StatusInReview, events.StatusApprovedPendingTransfer, ByReviewer, true, "80", "0"},
		{"a reviewer's rejection releases the hold", events.StatusInReview, events.StatusRejected, ByReviewer, true, "0", "0"},
		{"a payout success deducts the held amount", events.StatusApprovedPendingTransfer, events.StatusSucceeded, ByPayout, true, "0", "80"},
		{"a payout failure releases the hold", events.StatusApprovedPendingTransfer, events.StatusFailed, ByPayout, true, "0", "0"},
		{"a failure after a success is a reversal: the money comes back", events.StatusSucceeded, events.StatusFailed, ByPayout, true, "0", "0"},

		{"a reviewer cannot open a case", "", events.StatusInReview, ByReviewer, false, "", ""},
		{"the payout gateway cannot approve a case in review", events.StatusInReview, events.StatusApprovedPendingTransfer, ByPayout, false, "", ""},
		{"a case in review cannot succeed without a payout", events.StatusInReview, events.StatusSucceeded, ByPayout, false, "", ""},
		{"a reviewer cannot move a case already approved", events.StatusApprovedPendingTransfer, events.StatusRejected, ByReviewer, false, "", ""},
		{"a rejected case is final", events.StatusRejected, events.StatusApprovedPendingTransfer, ByReviewer, false, "", ""},
		{"a failed case cannot succeed afterwards", events.StatusFailed, events.StatusSucceeded, ByPayout, false, "", ""},
		{"a succeeded case cannot succeed twice", events.StatusSucceeded, events.StatusSucceeded, ByPayout, false, "", ""},
		{"a withdrawal has no secondary review", events.StatusRejected, events.StatusInSecondaryReview, ByCustomer, false, "", ""},
		{"a withdrawal is never credited", events.StatusApprovedPendingTransfer, events.StatusCredited, ByRules, false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAccount("acct-1")
			c := Case{ID: "w1", Kind: events.CaseWithdrawal, Status: tc.from, Amount: amount, TopupID: "t1"}
			if tc.from == events.StatusSucceeded {
				a.PaidOut = map[string]decimal.Decimal{"t1": amount}
			}
			a.Cases = map[string]Case{"w1": c}
			d := &decider{before: a, now: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), cause: cause{ID: "evt-1"}}
			next := a.clone()
			err := d.advance(&next, &c, tc.to, tc.by, "because")
			var illegal *IllegalMove
			if !tc.allowed {
				if !errors.As(err, &illegal) {
					t.Fatalf("err = %v, want an IllegalMove", err)
				}
				if len(d.outbound) != 0 {
					t.Errorf("an illegal move published %d events", len(d.outbound))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := next.Ledger(DefaultRules())
			if !l.Held.Equal(decimal.RequireFromString(tc.wantHeld)) || !l.PaidOut.Equal(decimal.RequireFromString(tc.wantPaidOut)) {
				t.Errorf("held %s paid out %s, want %s and %s", l.Held, l.PaidOut, tc.wantHeld, tc.wantPaidOut)
			}
			got, _ := next.findCase("w1")
			if got.Status != tc.to || len(got.History) != 1 || got.History[0].By != tc.by || got.History[0].Reason != "because" {
				t.Errorf("case after the move %+v", got)
			}
			if len(d.outbound) != 1 || d.outbound[0].Type != events.CaseStatusChanged {
				t.Fatalf("published %+v, want one refunds.case.status_changed", d.outbound)
			}
			data := d.outbound[0].Payload.(*events.CaseStatusChangedData)
			if data.Status != tc.to || data.Previous != tc.from || !data.Amount.Equal(amount) || data.Reason != "because" {
				t.Errorf("status change %+v", data)
			}
			if a.Cases["w1"].Status != tc.from {
				t.Errorf("the move changed the account it was decided on")
			}
			if _, open := next.Cases["w1"]; open == got.Final() {
				t.Errorf("case %s: in the account's document %t, final %t; an ended case leaves it", got.Status, open, got.Final())
			}
		})
	}
}
