package state_test

import (
	"errors"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

func refundOf(id, kind string) *events.RefundRequestedData {
	return &events.RefundRequestedData{RefundID: id, Kind: kind}
}

func packageRefund(id, pkg string) *events.RefundRequestedData {
	p := refundOf(id, events.RefundPackage)
	p.PackageID = pkg
	return p
}

func orderRefund(id, order, reason string) *events.RefundRequestedData {
	p := refundOf(id, events.RefundOrder)
	p.OrderID, p.Reason = order, reason
	return p
}

func (h *history) pkg(id, price string, n int64) *history {
	p := money(price)
	return h.add(events.PackagePurchased, &events.PackageData{PackageID: id, Price: &p, Units: n})
}

func (h *history) usePkg(id string, n int64) *history {
	return h.add(events.PackageConsumed, &events.PackageData{PackageID: id, Units: n})
}

func (h *history) order(id, amount, method string) *history {
	a := money(amount)
	return h.add(events.OrderPurchased, &events.OrderData{OrderID: id, Amount: &a, PaymentMethod: method})
}

// then applies ev after d, as the store would, with its ended cases attached.
func then(t testing.TB, d state.Decision, ev events.Event) state.Decision {
	t.Helper()
	return decide(t, carry(d), ev)
}

func TestAPackageRefundCreditsTheRemainingBalanceAtOnce(t *testing.T) {
	tests := []struct {
		name       string
		used       int64
		price      string
		units      int64
		wantCredit string
	}{
		{"an unused package refunds its full price", 0, "99.00", 10, "99.00"},
		{"a used package refunds what remains, price × remaining / units", 4, "99.00", 10, "59.40"},
		{"the remainder rounds down to the cent", 1, "10.00", 3, "6.66"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(t).topUp("t1", "100.00").pkg("pk1", tc.price, tc.units)
			if tc.used > 0 {
				h.usePkg("pk1", tc.used)
			}
			d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), packageRefund("r1", "pk1")))
			c := caseIn(d, "r1")
			if c.Status != events.StatusCredited || !c.Amount.Equal(dec(tc.wantCredit)) {
				t.Fatalf("case %s %s, want credited %s", c.Status, c.Amount, tc.wantCredit)
			}
			l := d.Account.Ledger(rules)
			wantDecimal(t, "cash", l.Cash, dec("100").Add(dec(tc.wantCredit)))
			wantDecimal(t, "non-top-up funds", l.NonTopUp, dec(tc.wantCredit))
			wantDecimal(t, "the top-up's withdrawable", l.TopUps[0].Withdrawable, dec("100"))
		})
	}
}

func TestARefundedPackageTakesNoMoreConsumption(t *testing.T) {
	h := newHistory(t).topUp("t1", "100.00").pkg("pk1", "50.00", 5)
	d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), packageRefund("r1", "pk1")))
	_, err := state.Apply(carry(d), event(t, events.PackageConsumed, "e-late", h.at.Add(2*time.Hour), &events.PackageData{PackageID: "pk1", Units: 1}), rules, now)
	wantRefusal(t, err)
	again := then(t, d, event(t, events.RefundRequested, "e-ref2", h.at.Add(3*time.Hour), packageRefund("r2", "pk1")))
	if c := caseIn(again, "r2"); c.Status != events.StatusRejected || c.History[0].Code != state.ReasonAlreadyRefunded {
		t.Fatalf("a second refund of the package: %+v", c)
	}
}

func TestAPackageRefundIsRefusedForAnAccountThatViolatedTheTerms(t *testing.T) {
	violated := true
	h := newHistory(t).topUp("t1", "100.00").pkg("pk1", "50.00", 5)
	h.add(events.AccountStatusChanged, &events.AccountStatusChangedData{Status: events.AccountActive, TermsViolated: &violated})
	d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), packageRefund("r1", "pk1")))
	if c := caseIn(d, "r1"); c.Status != events.StatusRejected || c.History[0].Code != state.ReasonTermsViolated {
		t.Fatalf("case %+v, want rejected for the terms violation", c)
	}
	wantDecimal(t, "cash", d.Account.Ledger(rules).Cash, dec("100"))
}

func TestManyPackageRefundsInThirtyDaysGoToReview(t *testing.T) {
	h := newHistory(t).topUp("t1", "100.00")
	for _, id := range []string{"pk1", "pk2", "pk3", "pk4"} {
		h.pkg(id, "10.00", 1)
	}
	d := decide(t, h.account(), event(t, events.RefundRequested, "e-r1", h.at.Add(time.Hour), packageRefund("r1", "pk1")))
	for i, id := range []string{"pk2", "pk3"} {
		d = then(t, d, event(t, events.RefundRequested, "e-r"+id, h.at.Add(time.Duration(2+i)*time.Hour), packageRefund("r-"+id, id)))
	}
	if c := caseIn(d, "r-pk3"); c.Status != events.StatusCredited {
		t.Fatalf("the third refund in 30 days: %s, want credited", c.Status)
	}
	d = then(t, d, event(t, events.RefundRequested, "e-r4", h.at.Add(5*time.Hour), packageRefund("r4", "pk4")))
	if c := caseIn(d, "r4"); c.Status != events.StatusInReview {
		t.Fatalf("the fourth refund in 30 days: %s, want in review", c.Status)
	}
	d = then(t, d, reviewed(t, "r4", events.DecisionApproved, h.at.Add(6*time.Hour)))
	if c := caseIn(d, "r4"); c.Status != events.StatusCredited {
		t.Fatalf("approved: %s, want credited", c.Status)
	}
	wantDecimal(t, "non-top-up funds", d.Account.Ledger(rules).NonTopUp, dec("40"))
}

func TestCreditedMoneyLeavesOnlyThroughAReviewedNonTopUpApplication(t *testing.T) {
	h := newHistory(t).topUp("t1", "100.00").pkg("pk1", "50.00", 5)
	d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), packageRefund("r1", "pk1")))
	byTopUp := then(t, d, requestAt(t, "w1", h.at.Add(2*time.Hour), original("w1", "t1", "150.00")))
	if c := caseIn(byTopUp, "w1"); c.Status != events.StatusRejected {
		t.Fatalf("the credit taken by a top-up order's withdrawal: %s", c.Status)
	}
	application := &events.WithdrawalRequestedData{WithdrawalID: "w2", Amount: money("50.00"), Method: events.MethodDesignated, Destination: bankCard()}
	d = then(t, d, requestAt(t, "w2", h.at.Add(3*time.Hour), application))
	if c := caseIn(d, "w2"); c.Status != events.StatusInReview {
		t.Fatalf("non-top-up application: %s, want in review", c.Status)
	}
	d = then(t, d, reviewed(t, "w2", events.DecisionApproved, h.at.Add(4*time.Hour)))
	d = then(t, d, paid(t, "w2", "po-w2", events.PayoutSucceeded, h.at.Add(5*time.Hour)))
	l := d.Account.Ledger(rules)
	wantDecimal(t, "non-top-up funds after the payout", l.NonTopUp, dec("0"))
	wantDecimal(t, "cash", l.Cash, dec("100"))
}

func TestAnOrderRefundIsCheckedForEligibilityAndGoesToReview(t *testing.T) {
	old := 31 * 24 * time.Hour
	tests := []struct {
		name    string
		history func(*history) *history
		reason  string
		after   time.Duration
		status  string
		code    string
		amount  string
	}{
		{"an eligible order, partly used, is refunded paid − used", func(h *history) *history {
			used := money("30.00")
			return h.add(events.OrderUsed, &events.OrderData{OrderID: "o1", UsedAmount: &used})
		}, "outage over 24 hours", time.Hour, events.StatusInReview, "", "70"},
		{"a purchase over 30 days old is refused", nil, "service defect", old, events.StatusRejected, state.ReasonPurchaseTooOld, "100"},
		{"an unauthorized charge is refunded however old", nil, "unauthorized_charge", old, events.StatusInReview, "", "100"},
		{"a duplicate charge is refunded however old", nil, "duplicate_charge", old, events.StatusInReview, "", "100"},
		{"a fully used service is not refundable", func(h *history) *history {
			used := money("100.00")
			return h.add(events.OrderUsed, &events.OrderData{OrderID: "o1", UsedAmount: &used})
		}, "", time.Hour, events.StatusRejected, state.ReasonFullyUsed, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(t).order("o1", "100.00", "card")
			if tc.history != nil {
				h = tc.history(h)
			}
			d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(tc.after), orderRefund("r1", "o1", tc.reason)))
			c := caseIn(d, "r1")
			if c.Status != tc.status || !c.Amount.Equal(dec(tc.amount)) || (tc.code != "" && c.History[0].Code != tc.code) {
				t.Fatalf("case %s amount %s history %+v, want %s %s %s", c.Status, c.Amount, c.History, tc.status, tc.amount, tc.code)
			}
			if tc.status == events.StatusInReview && (c.ExpectedBy == nil || len(outboundOf(t, d, events.ReviewRequested)) != 1) {
				t.Errorf("in review without an expected time or a review request: %+v", c)
			}
		})
	}
	t.Run("a third-party service is not refundable", func(t *testing.T) {
		h := newHistory(t)
		amount := money("100.00")
		h.add(events.OrderPurchased, &events.OrderData{OrderID: "o1", Amount: &amount, ThirdParty: true})
		d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), orderRefund("r1", "o1", "")))
		if c := caseIn(d, "r1"); c.Status != events.StatusRejected || c.History[0].Code != state.ReasonThirdPartyService {
			t.Fatalf("case %+v", c)
		}
	})
	t.Run("a refund of an order not purchased yet waits", func(t *testing.T) {
		h := newHistory(t)
		_, err := state.Apply(h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), orderRefund("r1", "o9", "")), rules, now)
		var w *state.Waiting
		if !errors.As(err, &w) {
			t.Fatalf("err %v, want it to wait for the order", err)
		}
	})
}

func TestARejectedOrderRefundCanBeAppealedOnce(t *testing.T) {
	h := newHistory(t).order("o1", "100.00", "paypal")
	d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), orderRefund("r1", "o1", "outage")))
	d = then(t, d, reviewed(t, "r1", events.DecisionRejected, h.at.Add(2*time.Hour)))
	appeal := func(id string, at time.Duration) events.Event {
		return event(t, events.RefundAppealed, id, h.at.Add(at), &events.RefundAppealedData{RefundID: "r1", Reason: "the outage lasted 30 hours"})
	}
	d = then(t, d, appeal("e-appeal", 3*time.Hour))
	if c := caseIn(d, "r1"); c.Status != events.StatusInSecondaryReview || len(outboundOf(t, d, events.ReviewRequested)) != 1 {
		t.Fatalf("after the appeal: %+v", c)
	}
	d = then(t, d, event(t, events.CaseDecided, "e-second", h.at.Add(4*time.Hour), &events.CaseDecidedData{CaseID: "r1", Decision: events.DecisionRejected, Reviewer: "lead-2"}))
	if c := caseIn(d, "r1"); c.Status != events.StatusRejected {
		t.Fatalf("after the secondary review: %s", c.Status)
	}
	d = then(t, d, appeal("e-appeal-2", 5*time.Hour))
	c := caseIn(d, "r1")
	if c.Status != events.StatusRejected || len(statusChanges(t, d)) != 0 || c.History[len(c.History)-1].By != state.ByCustomer {
		t.Fatalf("a second appeal: %+v, want ignored with a note", c)
	}
}

func TestAnApprovedOrderRefundGoesBackByItsMethodOrToTheBalance(t *testing.T) {
	t.Run("by the original method, expected within the method's time", func(t *testing.T) {
		h := newHistory(t).order("o1", "100.00", "paypal")
		at := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC) // a Friday
		d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", at, orderRefund("r1", "o1", "outage")))
		d = then(t, d, reviewed(t, "r1", events.DecisionApproved, at))
		c := caseIn(d, "r1")
		want := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC) // PayPal: 2 business days
		if c.Status != events.StatusApprovedPendingTransfer || c.ExpectedBy == nil || !c.ExpectedBy.Equal(want) {
			t.Fatalf("case %+v, want approved, expected by %s", c, want)
		}
		payouts := outboundOf(t, d, events.PayoutRequested)
		if len(payouts) != 1 || payouts[0].Payload.(*events.PayoutRequestedData).OrderID != "o1" {
			t.Fatalf("payout requests %+v, want one for order o1", payouts)
		}
		wantDecimal(t, "the account's cash, untouched", d.Account.Ledger(rules).Cash, dec("0"))
	})
	t.Run("to the balance at once", func(t *testing.T) {
		h := newHistory(t).order("o1", "100.00", "card")
		req := orderRefund("r1", "o1", "outage")
		req.ToBalance = true
		d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), req))
		d = then(t, d, reviewed(t, "r1", events.DecisionApproved, h.at.Add(2*time.Hour)))
		if c := caseIn(d, "r1"); c.Status != events.StatusCredited {
			t.Fatalf("case %s, want credited", c.Status)
		}
		wantDecimal(t, "non-top-up funds", d.Account.Ledger(rules).NonTopUp, dec("100"))
	})
}

// discontinued is an account with an ICBC online-banking recharge t1 of 300.00 (after
// an older t0 of 100.00, fully consumed with 50.00 of t1), vouchers, and one
// pay-as-you-go resource, whose service was discontinued.
func discontinued(t *testing.T, tu *events.TopupReceivedData) (*history, state.Decision) {
	h := newHistory(t).topUp("t0", "100.00")
	h.add(events.TopupReceived, tu)
	h.consume("150.00").resource("ecs-1", "payg")
	h.add(events.VoucherGranted, &events.VoucherGrantedData{VoucherID: "v1", Amount: money("20.00")})
	d := decide(t, h.account(), event(t, events.DiscontinuationRequested, "e-disc", h.at.Add(time.Hour), &events.DiscontinuationRequestedData{RequestID: "disc-1"}))
	return h, d
}

func TestServiceDiscontinuationRefund(t *testing.T) {
	bank := topUp("t1", "300.00")
	t.Run("a refund before the discontinuation is refused", func(t *testing.T) {
		h := newHistory(t).topUp("t1", "300.00")
		d := decide(t, h.account(), event(t, events.RefundRequested, "e-ref", h.at.Add(time.Hour), refundOf("r1", events.RefundDiscontinuation)))
		if c := caseIn(d, "r1"); c.Status != events.StatusRejected || c.History[0].Code != state.ReasonNotDiscontinued {
			t.Fatalf("case %+v", c)
		}
	})
	t.Run("the whole way: release, 3 business days, review, payout of the latest recharge's remainder", func(t *testing.T) {
		h, d := discontinued(t, bank)
		releases := outboundOf(t, d, events.ResourcesReleaseRequested)
		if len(releases) != 1 || len(releases[0].Payload.(*events.ResourcesReleaseRequestedData).ResourceIDs) != 1 {
			t.Fatalf("release requests %+v, want one naming ecs-1", releases)
		}
		d = then(t, d, event(t, events.RefundRequested, "e-ref", h.at.Add(2*time.Hour), refundOf("r1", events.RefundDiscontinuation)))
		c := caseIn(d, "r1")
		if c.Status != events.StatusAwaitingSettlement || c.TopupID != "t1" || !c.Amount.Equal(dec("250")) {
			t.Fatalf("case %+v, want awaiting settlement of t1's 250", c)
		}
		for _, tm := range d.Timers {
			if tm.Kind == state.TimerSettlementEnd {
				t.Fatalf("a settlement timer %+v before every resource is released", tm)
			}
		}
		released := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC) // a Friday
		d = then(t, d, event(t, events.ResourceReleased, "e-rel", released, &events.ResourceReleasedData{ResourceID: "ecs-1"}))
		settled := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC) // 3 business days later: Wednesday
		var settlementEnd *time.Time
		for _, tm := range d.Timers {
			if tm.Kind == state.TimerSettlementEnd && tm.Subject == "r1" {
				settlementEnd = &tm.At
			}
		}
		if settlementEnd == nil || !settlementEnd.Equal(settled) {
			t.Fatalf("timers %+v, want the settlement of r1 to end %v", d.Timers, settled)
		}
		// Delayed billing items arrive during the wait and draw on the recharge.
		d = then(t, d, event(t, events.ConsumptionRecorded, "e-late", released.Add(time.Hour), consumption("c-late", "30.00")))
		fired, err := state.FireDue(carry(d), rules, settled)
		if err != nil {
			t.Fatal(err)
		}
		c = caseIn(fired, "r1")
		if c.Status != events.StatusInReview || !c.Amount.Equal(dec("220")) {
			t.Fatalf("after the settlement: %+v, want in review for 220", c)
		}
		wantDecimal(t, "held", fired.Account.Ledger(rules).Held, dec("220"))
		d = then(t, fired, reviewed(t, "r1", events.DecisionApproved, settled.Add(time.Hour)))
		c = caseIn(d, "r1")
		if want := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC); c.Status != events.StatusApprovedPendingTransfer || !c.ExpectedBy.Equal(want) {
			t.Fatalf("approved: %+v, want expected 3 business days later, %v", c, want)
		}
		d = then(t, d, paid(t, "r1", c.PayoutID, events.PayoutSucceeded, settled.Add(2*time.Hour)))
		l := d.Account.Ledger(rules)
		wantDecimal(t, "cash after the refund", l.Cash, dec("0"))
		wantDecimal(t, "vouchers, never refunded", l.Vouchers, dec("20"))
	})
	t.Run("an invoiced recharge waits for the red-letter reversal", func(t *testing.T) {
		h, d := discontinued(t, bank)
		d = then(t, d, event(t, events.InvoiceIssued, "e-inv", h.at.Add(90*time.Minute), &events.InvoiceData{InvoiceID: "inv-7", TopupID: "t1"}))
		d = then(t, d, event(t, events.RefundRequested, "e-ref", h.at.Add(2*time.Hour), refundOf("r1", events.RefundDiscontinuation)))
		d = then(t, d, event(t, events.ResourceReleased, "e-rel", h.at.Add(3*time.Hour), &events.ResourceReleasedData{ResourceID: "ecs-1"}))
		fired, err := state.FireDue(carry(d), rules, h.at.Add(30*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if c := caseIn(fired, "r1"); c.Status != events.StatusAwaitingInvoiceReversal || c.InvoiceID != "inv-7" || len(outboundOf(t, fired, events.InvoiceReversalRequired)) != 1 {
			t.Fatalf("after the settlement: %+v, want awaiting the reversal of inv-7", c)
		}
		d = then(t, fired, event(t, events.InvoiceReversed, "e-rev", h.at.Add(31*24*time.Hour), &events.InvoiceData{InvoiceID: "inv-7"}))
		if c := caseIn(d, "r1"); c.Status != events.StatusInReview {
			t.Fatalf("after the reversal: %s, want in review", c.Status)
		}
	})
	t.Run("the route follows the recharge's channel", func(t *testing.T) {
		alipay := topUp("t1", "300.00")
		alipay.Channel, alipay.Bank, alipay.Banking = events.ChannelAlipay, "", ""
		stripe := topUp("t1", "300.00")
		stripe.Channel, stripe.Bank, stripe.Banking, stripe.StripePaymentID = events.ChannelStripe, "", "", "pi_latest"
		inPayersName := &events.Destination{Kind: events.DestinationBankCard, AccountNo: "6222020200012341234", PayeeName: "Zhang San", Bank: "ICBC", Branch: "b", ProvinceCity: "Shanghai"}
		inOtherName := *inPayersName
		inOtherName.PayeeName = "Wang Wu"
		toCompany := *inPayersName
		toCompany.PayeeName, toCompany.PayeeType = "Acme Ltd", events.HolderCompany
		tests := []struct {
			name   string
			topup  *events.TopupReceivedData
			mutate func(*events.RefundRequestedData)
			code   string
		}{
			{"Alipay, to a bank account in the payer's name", alipay, func(p *events.RefundRequestedData) { p.Destination = inPayersName }, ""},
			{"Alipay, to a bank account in another name", alipay, func(p *events.RefundRequestedData) { p.Destination = &inOtherName }, state.ReasonRouteNeedsBankAcct},
			{"Alipay, without a bank account", alipay, func(*events.RefundRequestedData) {}, state.ReasonRouteNeedsBankAcct},
			{"Stripe, with the latest paymentId and the account's email", stripe, func(p *events.RefundRequestedData) { p.StripePaymentID, p.Email = "pi_latest", "billing@acme.example" }, ""},
			{"Stripe, with another paymentId", stripe, func(p *events.RefundRequestedData) { p.StripePaymentID, p.Email = "pi_old", "billing@acme.example" }, state.ReasonStripeNeedsPaymentID},
			{"Stripe, without the email", stripe, func(p *events.RefundRequestedData) { p.StripePaymentID = "pi_latest" }, state.ReasonStripeNeedsPaymentID},
			{"a personal recharge to the verified company, with a written statement", bank, func(p *events.RefundRequestedData) { p.Destination, p.WrittenStatement = &toCompany, true }, ""},
			{"a personal recharge to a company without a written statement", bank, func(p *events.RefundRequestedData) { p.Destination = &toCompany }, state.ReasonCompanyNeedsProof},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				h := newHistory(t)
				h.add(events.AccountStatusChanged, &events.AccountStatusChangedData{Status: events.AccountActive, Email: "billing@acme.example"})
				h.add(events.TopupReceived, tc.topup)
				d := decide(t, h.account(), event(t, events.DiscontinuationRequested, "e-disc", h.at.Add(time.Hour), &events.DiscontinuationRequestedData{RequestID: "disc-1"}))
				req := refundOf("r1", events.RefundDiscontinuation)
				tc.mutate(req)
				d = then(t, d, event(t, events.RefundRequested, "e-ref", h.at.Add(2*time.Hour), req))
				c := caseIn(d, "r1")
				if tc.code == "" && c.Status != events.StatusAwaitingSettlement {
					t.Fatalf("case %+v, want accepted", c)
				}
				if tc.code != "" && (c.Status != events.StatusRejected || c.History[0].Code != tc.code) {
					t.Fatalf("case %+v, want rejected with %s", c, tc.code)
				}
			})
		}
	})
}
