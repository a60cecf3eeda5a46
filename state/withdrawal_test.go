package state_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// requestAt is a withdrawal request event at a given time.
func requestAt(t testing.TB, id string, at time.Time, p *events.WithdrawalRequestedData) events.Event {
	t.Helper()
	return event(t, events.WithdrawalRequested, "e-req-"+id+"-"+at.Format("150405"), at, p)
}

func original(id, topup, amount string) *events.WithdrawalRequestedData {
	return &events.WithdrawalRequestedData{WithdrawalID: id, TopupID: topup, Amount: money(amount), Method: events.MethodOriginal}
}

func bankCard() *events.Destination {
	return &events.Destination{Kind: events.DestinationBankCard, AccountNo: "6222020200012341234", PayeeName: "Zhang San",
		Bank: "ICBC", Branch: "Nanjing Road", ProvinceCity: "Shanghai"}
}

func designated(id, topup, amount string) *events.WithdrawalRequestedData {
	return &events.WithdrawalRequestedData{WithdrawalID: id, TopupID: topup, Amount: money(amount), Method: events.MethodDesignated, Destination: bankCard()}
}

// carry is the account after d as the store gives it to the next decision that names
// one of its ended cases: the cases that ended are attached again.
func carry(d state.Decision) state.Account {
	ended := make(map[string]state.Case)
	for _, c := range d.ClosedCases {
		ended[c.ID] = c
	}
	return d.Account.WithClosedCases(ended)
}

// caseIn is the case of that id after d, open or ended.
func caseIn(d state.Decision, id string) state.Case {
	if c, ok := d.Account.Cases[id]; ok {
		return c
	}
	for _, c := range d.ClosedCases {
		if c.ID == id {
			return c
		}
	}
	return state.Case{}
}

// decide applies ev as the engine would at the moment it happened (or at the tests'
// now, whichever is later).
func decide(t testing.TB, a state.Account, ev events.Event) state.Decision {
	t.Helper()
	at := now
	if ev.Time.After(at) {
		at = ev.Time
	}
	d, err := state.Apply(a, ev, rules, at)
	if err != nil {
		t.Fatalf("apply %s: %v", ev.Type, err)
	}
	return d
}

func statusChanges(t testing.TB, d state.Decision) []*events.CaseStatusChangedData {
	t.Helper()
	var out []*events.CaseStatusChangedData
	for _, ev := range outboundOf(t, d, events.CaseStatusChanged) {
		out = append(out, ev.Payload.(*events.CaseStatusChangedData))
	}
	return out
}

func TestAWithdrawalByTheOriginalRouteHoldsItsAmountAndGoesStraightToTransfer(t *testing.T) {
	h := newHistory(t).topUp("t1", "500.00")
	at := h.at.Add(time.Hour)
	d := decide(t, h.account(), requestAt(t, "w1", at, original("w1", "t1", "120.00")))

	c := caseIn(d, "w1")
	if c.Status != events.StatusApprovedPendingTransfer || c.Route != events.RouteOriginal {
		t.Fatalf("case %+v, want approved_pending_transfer by the original route", c)
	}
	l := d.Account.Ledger(rules)
	wantDecimal(t, "held", l.Held, dec("120"))
	wantDecimal(t, "cash", l.Cash, dec("500"))
	wantDecimal(t, "withdrawable", l.Withdrawable, dec("380"))
	wantDecimal(t, "top-up held", l.TopUps[0].Held, dec("120"))
	wantDecimal(t, "top-up withdrawable", l.TopUps[0].Withdrawable, dec("380"))
	if changes := statusChanges(t, d); len(changes) != 1 || changes[0].Previous != "" || changes[0].ExpectedBy == nil || !changes[0].ExpectedBy.Equal(at.Add(time.Hour)) {
		t.Errorf("status changes %+v, want one, expected within 1 hour for online banking", changes)
	}
	payouts := outboundOf(t, d, events.PayoutRequested)
	if len(payouts) != 1 {
		t.Fatalf("published %d payout requests, want 1", len(payouts))
	}
	p := payouts[0].Payload.(*events.PayoutRequestedData)
	if p.CaseID != "w1" || p.TopupID != "t1" || p.Route != events.RouteOriginal || !p.Amount.Equal(dec("120")) || p.Currency != "CNY" || p.PayoutID != c.PayoutID {
		t.Errorf("payout request %+v", p)
	}
}

func TestAWithdrawalIsRefusedAtOnce(t *testing.T) {
	frozen := func(h *history) *history {
		return h.add(events.AccountStatusChanged, &events.AccountStatusChangedData{Status: events.AccountFrozen})
	}
	closed := func(h *history) *history {
		return h.add(events.AccountStatusChanged, &events.AccountStatusChangedData{Status: events.AccountClosed})
	}
	incomplete := designated("w1", "t1", "10.00")
	incomplete.Destination.Branch = ""
	nonTopUpOriginal := &events.WithdrawalRequestedData{WithdrawalID: "w1", Amount: money("10.00"), Method: events.MethodOriginal}
	tests := []struct {
		name    string
		history func(*history) *history
		request *events.WithdrawalRequestedData
		after   time.Duration // after the last event of the history
		code    string
	}{
		{"when the account is frozen", frozen, original("w1", "t1", "10.00"), time.Hour, state.ReasonAccountFrozen},
		{"when the account is closed", closed, original("w1", "t1", "10.00"), time.Hour, state.ReasonAccountClosed},
		{"when the amount exceeds the top-up's remainder", nil, original("w1", "t1", "500.01"), time.Hour, state.ReasonExceedsAccount},
		{"when the amount exceeds what the account may withdraw", func(h *history) *history { return h.bill("b1", "450.00") }, original("w1", "t1", "60.00"), time.Hour, state.ReasonExceedsAccount},
		{"when the original route's window has passed", nil, original("w1", "t1", "10.00"), 31 * 24 * time.Hour, state.ReasonOriginalRouteExpired},
		{"when a designated bank card lacks its branch", nil, incomplete, time.Hour, state.ReasonDestinationIncomplete},
		{"when non-top-up funds are asked back by the original route", nil, nonTopUpOriginal, time.Hour, state.ReasonNonTopUpNeedsADesignee},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(t).topUp("t1", "500.00")
			if tc.history != nil {
				h = tc.history(h)
			}
			d := decide(t, h.account(), requestAt(t, "w1", h.at.Add(tc.after), tc.request))
			changes := statusChanges(t, d)
			if len(changes) != 1 || changes[0].Status != events.StatusRejected || changes[0].ReasonCode != tc.code || changes[0].Reason == "" {
				t.Fatalf("status changes %+v, want rejected with %s and a reason", changes, tc.code)
			}
			wantDecimal(t, "held", d.Account.Ledger(rules).Held, dec("0"))
			if len(outboundOf(t, d, events.PayoutRequested)) != 0 {
				t.Error("a refused withdrawal asked for a payout")
			}
		})
	}
}

func TestAWithdrawalFromATopUpNotYetReceivedWaitsForIt(t *testing.T) {
	h := newHistory(t).topUp("t1", "500.00")
	request := requestAt(t, "w1", h.at.Add(time.Minute), original("w1", "t9", "10.00"))
	_, err := state.Apply(h.account(), request, rules, h.at.Add(time.Hour))
	var waiting *state.Waiting
	if !errors.As(err, &waiting) {
		t.Fatalf("a request for top-up t9, not received yet: %v, want it to wait", err)
	}
	d := decide(t, h.topUp("t9", "50.00").account(), request)
	if got := caseIn(d, "w1").Status; got != events.StatusApprovedPendingTransfer {
		t.Errorf("once t9 is received the request is %s, want %s", got, events.StatusApprovedPendingTransfer)
	}
}

func TestAnUnverifiedAccountCannotWithdraw(t *testing.T) {
	a := applyAll(t, state.NewAccount(account),
		event(t, events.AccountOpened, "e-open", day0, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: false}),
		event(t, events.TopupReceived, "e-t1", day0.Add(time.Hour), topUp("t1", "100.00")))
	d := decide(t, a, requestAt(t, "w1", day0.Add(2*time.Hour), original("w1", "t1", "10.00")))
	if c := statusChanges(t, d); len(c) != 1 || c[0].ReasonCode != state.ReasonAccountUnverified {
		t.Fatalf("status changes %+v, want rejected as unverified", c)
	}
}

func TestATopUpIsWithdrawnInInstallmentsUpToItsRemainder(t *testing.T) {
	h := newHistory(t).topUp("t1", "500.00").topUp("t2", "100.00").consume("120.00")
	a := h.account()
	at := h.at
	for i, step := range []struct {
		id, amount, status string
	}{
		{"w1", "300.00", events.StatusApprovedPendingTransfer},
		{"w2", "80.00", events.StatusApprovedPendingTransfer},
		{"w3", "0.01", events.StatusRejected}, // t1 has 380 left, all of it held
	} {
		at = at.Add(time.Minute)
		d := decide(t, a, requestAt(t, step.id, at, original(step.id, "t1", step.amount)))
		if got := caseIn(d, step.id).Status; got != step.status {
			t.Fatalf("installment %d (%s): status %s, want %s", i+1, step.amount, got, step.status)
		}
		a = carry(d)
	}
	l := a.Ledger(rules)
	wantDecimal(t, "held", l.Held, dec("380"))
	wantDecimal(t, "withdrawable", l.Withdrawable, dec("100"))
}

func TestTheSameWithdrawalIDTwiceIsOneCase(t *testing.T) {
	h := newHistory(t).topUp("t1", "500.00")
	first := decide(t, h.account(), requestAt(t, "w1", h.at.Add(time.Hour), original("w1", "t1", "100.00")))

	again := decide(t, carry(first), event(t, events.WithdrawalRequested, "e-again", h.at.Add(2*time.Hour), original("w1", "t1", "100.00")))
	if again.Changed || len(again.Outbound) != 0 {
		t.Errorf("the same request again changed the account or published %d events", len(again.Outbound))
	}
	_, err := state.Apply(carry(first), event(t, events.WithdrawalRequested, "e-other", h.at.Add(2*time.Hour), original("w1", "t1", "200.00")), rules, now)
	wantRefusal(t, err)
	wantDecimal(t, "held after the conflicting request", first.Account.Ledger(rules).Held, dec("100"))
}

func TestDesignatedAccountsAndNonTopUpApplicationsGoToReview(t *testing.T) {
	tests := []struct {
		name    string
		request *events.WithdrawalRequestedData
		reasons []string
	}{
		{"a designated receiving account", designated("w1", "t1", "50.00"), []string{state.ReviewDesignatedAccount}},
		{"a non-top-up application", &events.WithdrawalRequestedData{WithdrawalID: "w1", Amount: money("50.00"), Method: events.MethodDesignated, Destination: bankCard()},
			[]string{state.ReviewNonTopUpFunds, state.ReviewDesignatedAccount}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(t).topUp("t1", "500.00")
			d := decide(t, h.account(), requestAt(t, "w1", h.at.Add(time.Hour), tc.request))
			if c := caseIn(d, "w1"); c.Status != events.StatusInReview || c.Route != events.RouteDesignated {
				t.Fatalf("case %+v, want in review, designated", c)
			}
			wantDecimal(t, "held in review", d.Account.Ledger(rules).Held, dec("50"))
			reviews := outboundOf(t, d, events.ReviewRequested)
			if len(reviews) != 1 || fmt.Sprint(reviews[0].Payload.(*events.ReviewRequestedData).Reasons) != fmt.Sprint(tc.reasons) {
				t.Fatalf("review requests %+v, want reasons %v", reviews, tc.reasons)
			}
			if len(outboundOf(t, d, events.PayoutRequested)) != 0 {
				t.Error("a case in review asked for a payout")
			}
		})
	}
}

// inReview is an account with 500.00 topped up and withdrawal w1 of 50.00 in review.
func inReview(t *testing.T) (state.Account, time.Time) {
	h := newHistory(t).topUp("t1", "500.00")
	at := h.at.Add(time.Hour)
	return carry(decide(t, h.account(), requestAt(t, "w1", at, designated("w1", "t1", "50.00")))), at
}

func reviewed(t testing.TB, id, decision string, at time.Time) events.Event {
	return event(t, events.CaseDecided, "e-dec-"+id+"-"+decision+at.Format("150405"), at,
		&events.CaseDecidedData{CaseID: id, Decision: decision, Reviewer: "auditor-7", Reason: "documents " + decision})
}

func paid(t testing.TB, caseID, payoutID, status string, at time.Time) events.Event {
	return event(t, events.PayoutReported, "e-pay-"+caseID+"-"+status+at.Format("150405"), at,
		&events.PayoutReportedData{PayoutID: payoutID, CaseID: caseID, Status: status, FailureReason: "account closed at the bank"})
}

func TestReviewMovesACase(t *testing.T) {
	t.Run("an approval asks for the payout to the designated account, expected 15 days later", func(t *testing.T) {
		a, at := inReview(t)
		d := decide(t, a, reviewed(t, "w1", events.DecisionApproved, at.Add(time.Hour)))
		c := caseIn(d, "w1")
		if c.Status != events.StatusApprovedPendingTransfer || c.ExpectedBy == nil || !c.ExpectedBy.Equal(at.Add(time.Hour).Add(15*24*time.Hour)) {
			t.Fatalf("case %+v, want approved, expected 15 days after approval", c)
		}
		payouts := outboundOf(t, d, events.PayoutRequested)
		if len(payouts) != 1 || payouts[0].Payload.(*events.PayoutRequestedData).Destination.AccountNo != "6222020200012341234" {
			t.Fatalf("payout requests %+v, want one to the designated account", payouts)
		}
		wantDecimal(t, "held", d.Account.Ledger(rules).Held, dec("50"))
	})
	t.Run("a rejection releases the hold", func(t *testing.T) {
		a, at := inReview(t)
		d := decide(t, a, reviewed(t, "w1", events.DecisionRejected, at.Add(time.Hour)))
		if changes := statusChanges(t, d); len(changes) != 1 || changes[0].Status != events.StatusRejected || changes[0].Reason != "documents rejected" {
			t.Fatalf("status changes %+v", changes)
		}
		l := d.Account.Ledger(rules)
		wantDecimal(t, "held", l.Held, dec("0"))
		wantDecimal(t, "withdrawable", l.Withdrawable, dec("500"))
	})
	t.Run("a decision for a case already final is ignored, with a note in its history", func(t *testing.T) {
		a, at := inReview(t)
		rejected := carry(decide(t, a, reviewed(t, "w1", events.DecisionRejected, at.Add(time.Hour))))
		d := decide(t, rejected, reviewed(t, "w1", events.DecisionApproved, at.Add(2*time.Hour)))
		c := caseIn(d, "w1")
		if c.Status != events.StatusRejected || len(statusChanges(t, d)) != 0 || len(outboundOf(t, d, events.PayoutRequested)) != 0 {
			t.Fatalf("case %+v after a late approval", c)
		}
		if last := c.History[len(c.History)-1]; last.By != state.ByReviewer || last.Status != events.StatusRejected {
			t.Errorf("last history entry %+v, want the ignored decision noted", last)
		}
	})
	t.Run("a decision that arrives before its case waits", func(t *testing.T) {
		h := newHistory(t).topUp("t1", "500.00")
		_, err := state.Apply(h.account(), reviewed(t, "w1", events.DecisionApproved, h.at), rules, now)
		var waiting *state.Waiting
		if !errors.As(err, &waiting) {
			t.Fatalf("err = %v, want it to wait for its case", err)
		}
	})
}

func TestPayoutResultsSettleACase(t *testing.T) {
	approved := func(t *testing.T) (state.Account, time.Time, string) {
		h := newHistory(t).topUp("t1", "500.00")
		at := h.at.Add(time.Hour)
		a := carry(decide(t, h.account(), requestAt(t, "w1", at, original("w1", "t1", "100.00"))))
		return a, at, a.Cases["w1"].PayoutID
	}
	t.Run("success deducts the held amount from cash", func(t *testing.T) {
		a, at, payout := approved(t)
		d := decide(t, a, paid(t, "w1", payout, events.PayoutSucceeded, at.Add(time.Minute)))
		l := d.Account.Ledger(rules)
		wantDecimal(t, "cash", l.Cash, dec("400"))
		wantDecimal(t, "held", l.Held, dec("0"))
		wantDecimal(t, "withdrawable", l.Withdrawable, dec("400"))
		wantDecimal(t, "top-up remaining", l.TopUps[0].Remaining, dec("400"))
	})
	t.Run("failure releases the hold and publishes the reason", func(t *testing.T) {
		a, at, payout := approved(t)
		d := decide(t, a, paid(t, "w1", payout, events.PayoutFailed, at.Add(time.Minute)))
		wantDecimal(t, "withdrawable", d.Account.Ledger(rules).Withdrawable, dec("500"))
		if c := statusChanges(t, d); len(c) != 1 || c[0].Status != events.StatusFailed || c[0].Reason != "payout failed: account closed at the bank" {
			t.Fatalf("status changes %+v", c)
		}
	})
	t.Run("a failure after a success is a reversal: the money comes back", func(t *testing.T) {
		a, at, payout := approved(t)
		succeeded := carry(decide(t, a, paid(t, "w1", payout, events.PayoutSucceeded, at.Add(time.Minute))))
		d := decide(t, succeeded, paid(t, "w1", payout, events.PayoutFailed, at.Add(time.Hour)))
		l := d.Account.Ledger(rules)
		wantDecimal(t, "cash", l.Cash, dec("500"))
		wantDecimal(t, "withdrawable", l.Withdrawable, dec("500"))
		if c := caseIn(d, "w1"); c.Status != events.StatusFailed || c.History[len(c.History)-1].Reason != "payout reversed after success: account closed at the bank" {
			t.Fatalf("case %+v, want failed with the reversal recorded", c)
		}
	})
	t.Run("a result for an unknown payout id moves no money and is kept in the history", func(t *testing.T) {
		a, at, _ := approved(t)
		d := decide(t, a, paid(t, "w1", "po-forged", events.PayoutSucceeded, at.Add(time.Minute)))
		wantDecimal(t, "cash", d.Account.Ledger(rules).Cash, dec("500"))
		if c := caseIn(d, "w1"); c.Status != events.StatusApprovedPendingTransfer || c.History[len(c.History)-1].By != state.ByPayout {
			t.Fatalf("case %+v", c)
		}
	})
	t.Run("a success after a failure contradicts the case and moves no money", func(t *testing.T) {
		a, at, payout := approved(t)
		failed := carry(decide(t, a, paid(t, "w1", payout, events.PayoutFailed, at.Add(time.Minute))))
		d := decide(t, failed, paid(t, "w1", payout, events.PayoutSucceeded, at.Add(time.Hour)))
		wantDecimal(t, "cash", d.Account.Ledger(rules).Cash, dec("500"))
		if c := caseIn(d, "w1"); c.Status != events.StatusFailed || len(statusChanges(t, d)) != 0 {
			t.Fatalf("case %+v", c)
		}
	})
	t.Run("a result that arrives before its case waits", func(t *testing.T) {
		h := newHistory(t).topUp("t1", "500.00")
		_, err := state.Apply(h.account(), paid(t, "w1", "po-w1", events.PayoutSucceeded, h.at), rules, now)
		var waiting *state.Waiting
		if !errors.As(err, &waiting) {
			t.Fatalf("err = %v, want it to wait for its case", err)
		}
	})
}

func TestOriginalRouteWindowsForEveryBank(t *testing.T) {
	type bankCase struct {
		banking, bank string
		days          int
	}
	cases := []bankCase{{"personal", "ABC", 180}, {"corporate", "ICBC", 180}, {"personal", "CMB", 90}, {"corporate", "CMB", 90}}
	for _, bank := range []string{"JSBANK", "NJCB"} {
		cases = append(cases, bankCase{"corporate", bank, 30})
	}
	for _, bank := range []string{"BOC", "CIB", "ICBC", "SPDB", "NJCB", "HZCB", "GRCB", "JSBANK"} {
		cases = append(cases, bankCase{"personal", bank, 30})
	}
	for _, bc := range cases {
		for _, side := range []struct {
			name   string
			offset time.Duration
			code   string
		}{{"on its last moment", 0, ""}, {"a second after", time.Second, state.ReasonOriginalRouteExpired}} {
			t.Run(fmt.Sprintf("%s %s, %d days, %s", bc.banking, bc.bank, bc.days, side.name), func(t *testing.T) {
				h := newHistory(t)
				tu := topUp("t1", "100.00")
				tu.Banking, tu.Bank = bc.banking, bc.bank
				h.add(events.TopupReceived, tu)
				at := h.at.AddDate(0, 0, bc.days).Add(side.offset)
				d := decide(t, h.account(), requestAt(t, "w1", at, original("w1", "t1", "10.00")))
				c := statusChanges(t, d)
				if len(c) != 1 || c[0].ReasonCode != side.code {
					t.Fatalf("status changes %+v, want reason code %q", c, side.code)
				}
			})
		}
	}
}

func TestABankCardWithdrawalIsExpectedWithinTwoBusinessDays(t *testing.T) {
	h := newHistory(t)
	tu := topUp("t1", "100.00")
	tu.Channel, tu.Banking, tu.Bank = events.ChannelBankCard, "", ""
	h.add(events.TopupReceived, tu)
	friday := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC) // 10:00 in Beijing
	d := decide(t, h.account(), requestAt(t, "w1", friday, original("w1", "t1", "10.00")))
	want := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC) // the Tuesday after
	if got := caseIn(d, "w1").ExpectedBy; got == nil || !got.Equal(want) {
		t.Fatalf("expected by %v, want %v", got, want)
	}
}

func TestACaseOpenPastItsExpectedTimeIsReportedOverdueOnce(t *testing.T) {
	h := newHistory(t).topUp("t1", "500.00")
	at := h.at.Add(time.Hour)
	a := carry(decide(t, h.account(), requestAt(t, "w1", at, original("w1", "t1", "100.00"))))
	expected := *a.Cases["w1"].ExpectedBy
	if next := a.NextDeadline(rules); next == nil || !next.Equal(expected) {
		t.Fatalf("next deadline %v, want the case's expected time %v", next, expected)
	}
	early, err := state.FireDue(a, rules, expected.Add(-time.Second))
	if err != nil || early.Changed {
		t.Fatalf("before its time: changed %t, err %v", early.Changed, err)
	}
	d, err := state.FireDue(a, rules, expected.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	overdue := outboundOf(t, d, events.CaseOverdue)
	if len(overdue) != 1 || overdue[0].Payload.(*events.CaseOverdueData).CaseID != "w1" {
		t.Fatalf("overdue events %+v, want one for w1", overdue)
	}
	if d.NextDeadline() != nil {
		t.Errorf("a deadline is left after the report: %v", d.NextDeadline())
	}
	again, err := state.FireDue(d.Account, rules, expected.Add(time.Hour))
	if err != nil || again.Changed || len(again.Outbound) != 0 {
		t.Fatalf("a second firing changed %t, published %d", again.Changed, len(again.Outbound))
	}
}

func TestAnOverdueAmountOnAnotherAccountUnderTheSameNameSendsAWithdrawalToReview(t *testing.T) {
	tests := []struct {
		name        string
		overdueOn   []string
		wantStatus  string
		wantReasons int
	}{
		{"another account of the holder is overdue", []string{"acct-other", account}, events.StatusInReview, 1},
		{"only this account is in the index", []string{account}, events.StatusApprovedPendingTransfer, 0},
		{"no account of the holder is overdue", nil, events.StatusApprovedPendingTransfer, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(t).topUp("t1", "500.00")
			a := h.account().WithSameHolderOverdue(tc.overdueOn)
			d := decide(t, a, requestAt(t, "w1", h.at.Add(time.Hour), original("w1", "t1", "100.00")))
			if got := caseIn(d, "w1").Status; got != tc.wantStatus {
				t.Fatalf("status %s, want %s", got, tc.wantStatus)
			}
			reviews := outboundOf(t, d, events.ReviewRequested)
			if len(reviews) != tc.wantReasons {
				t.Fatalf("review requests %+v, want %d", reviews, tc.wantReasons)
			}
			if tc.wantReasons > 0 && reviews[0].Payload.(*events.ReviewRequestedData).Reasons[0] != state.ReviewRiskSameHolder {
				t.Errorf("reasons %v, want the risk flag", reviews[0].Payload.(*events.ReviewRequestedData).Reasons)
			}
		})
	}
}

func TestADecisionSaysWhenTheAccountStartsOrStopsBeingOverdue(t *testing.T) {
	h := newHistory(t).topUp("t1", "500.00")
	a := h.account()
	issued := decide(t, a, event(t, events.BillIssued, "e-bill", h.at.Add(time.Hour), &events.BillIssuedData{BillID: "b1", Amount: money("30.00")}))
	if got := issued.HolderOverdue; got == nil || !got.Overdue || got.Name != "Acme Ltd" {
		t.Fatalf("after a bill: %+v, want Acme Ltd overdue", got)
	}
	part := decide(t, issued.Account, event(t, events.BillPaid, "e-part", h.at.Add(2*time.Hour), &events.BillPaidData{BillID: "b1", Amount: money("10.00")}))
	if part.HolderOverdue != nil {
		t.Errorf("a part payment changed the index: %+v", part.HolderOverdue)
	}
	paid := decide(t, part.Account, event(t, events.BillPaid, "e-rest", h.at.Add(3*time.Hour), &events.BillPaidData{BillID: "b1", Amount: money("20.00")}))
	if got := paid.HolderOverdue; got == nil || got.Overdue {
		t.Fatalf("after paying in full: %+v, want not overdue", got)
	}
}
