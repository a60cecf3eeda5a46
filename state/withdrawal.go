package state

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
)

// Reason codes of a withdrawal refused at once: machine-readable, published with the
// readable reason in refunds.case.status_changed (reason_code).
const (
	ReasonAccountUnverified      = "account_unverified"
	ReasonAccountFrozen          = "account_frozen"
	ReasonAccountClosed          = "account_closed"
	ReasonAmountNotPositive      = "amount_not_positive"
	ReasonExceedsTopUp           = "exceeds_topup_withdrawable"
	ReasonExceedsAccount         = "exceeds_account_withdrawable"
	ReasonOriginalRouteExpired   = "original_route_expired"
	ReasonDestinationIncomplete  = "destination_incomplete"
	ReasonNonTopUpNeedsADesignee = "non_topup_needs_designated_account"
)

// Reasons a withdrawal goes to review, as refunds.review.requested lists them.
const (
	ReviewDesignatedAccount = "designated receiving account"
	ReviewNonTopUpFunds     = "application for non-top-up funds"
	ReviewRiskSameHolder    = "risk: an account registered under the same name has an overdue amount"
)

// requestWithdrawal opens a withdrawal case [001]. It is refused at once (rejected,
// with a reason) when a rule forbids it; otherwise its amount is held on the account
// and its top-up, and it goes to review (designated account, non-top-up funds) or
// straight to transfer by the original route.
func (d *decider) requestWithdrawal(a *Account, p *events.WithdrawalRequestedData) (effect, error) {
	if existing, ok := a.findCase(p.WithdrawalID); ok {
		if sameWithdrawal(existing, p) {
			return unchanged, nil
		}
		return unchanged, refuse("withdrawal %s was already requested with other content; the first request stands", p.WithdrawalID)
	}
	c := Case{
		ID: p.WithdrawalID, Kind: events.CaseWithdrawal, Amount: p.Amount.Decimal, TopupID: p.TopupID,
		Route: events.RouteOriginal, Destination: p.Destination, OpenedAt: d.ev.Time.UTC(),
	}
	if p.Method == events.MethodDesignated || p.TopupID == "" {
		c.Route = events.RouteDesignated
	}
	if _, known := a.topUp(p.TopupID); p.TopupID != "" && !known {
		// The console offers only top-ups billing reported, so a request for one this
		// engine has not seen yet has overtaken it (another instance holds it, or it is
		// being redelivered): it waits, as a payout result waits for its case, instead
		// of being refused for an order that a moment later exists. One that never
		// comes is dead-lettered with this reason once the intake's wait budget ends.
		return unchanged, wait("top-up %s is not received yet", p.TopupID)
	}
	if code, reason := d.withdrawalRefusal(a, p); code != "" {
		return changed, d.advanceWithCode(a, &c, events.StatusRejected, ByRules, code, reason)
	}
	var review []string
	if p.TopupID == "" {
		review = append(review, ReviewNonTopUpFunds)
	}
	if p.Method == events.MethodDesignated {
		review = append(review, ReviewDesignatedAccount)
	}
	if a.otherAccountOverdue() {
		review = append(review, ReviewRiskSameHolder)
	}
	if len(review) > 0 {
		if err := d.advance(a, &c, events.StatusInReview, ByRules, "review: "+review[0]); err != nil {
			return unchanged, err
		}
		return changed, d.publish(events.ReviewRequested, &events.ReviewRequestedData{
			CaseID: c.ID, Kind: c.Kind, Amount: events.Amount{Decimal: c.Amount}, Reasons: review,
		})
	}
	return changed, d.approve(a, &c, ByRules, "original payment route")
}

// sameWithdrawal reports whether a repeated request says what the case was opened with.
func sameWithdrawal(c Case, p *events.WithdrawalRequestedData) bool {
	if !c.Amount.Equal(p.Amount.Decimal) || c.TopupID != p.TopupID {
		return false
	}
	if (c.Destination == nil) != (p.Destination == nil) {
		return false
	}
	return c.Destination == nil || *c.Destination == *p.Destination
}

// withdrawalRefusal is the first rule of seed 001 the request breaks, as a reason code
// and a readable reason, or "" when it may proceed.
func (d *decider) withdrawalRefusal(a *Account, p *events.WithdrawalRequestedData) (code, reason string) {
	switch {
	case !a.Verified:
		return ReasonAccountUnverified, "the account has not completed real-name verification"
	case a.Status == events.AccountFrozen:
		return ReasonAccountFrozen, "funds cannot be withdrawn from a frozen account"
	case a.Status == events.AccountClosed:
		return ReasonAccountClosed, "funds cannot be withdrawn from a closed account"
	case !p.Amount.IsPositive():
		return ReasonAmountNotPositive, "the amount must be greater than zero"
	}
	if p.Destination != nil {
		if missing := incompleteDestination(p.Destination); missing != "" {
			return ReasonDestinationIncomplete, "the designated receiving account needs " + missing
		}
	}
	l := a.Ledger(d.rules)
	if p.TopupID == "" {
		if p.Method != events.MethodDesignated {
			return ReasonNonTopUpNeedsADesignee, "non-top-up funds are withdrawn only to a designated receiving account"
		}
		return exceedsAccount(p.Amount.Decimal, l.Withdrawable)
	}
	t, _ := l.topUp(p.TopupID) // known: requestWithdrawal waits for it
	if code, reason := exceedsAccount(p.Amount.Decimal, l.Withdrawable); code != "" {
		return code, reason
	}
	if open := t.Remaining.Sub(t.Held); p.Amount.GreaterThan(open) {
		return ReasonExceedsTopUp, fmt.Sprintf("the amount %s exceeds the %s withdrawable from top-up %s", cny(p.Amount.Decimal), cny(decimal.Max(open, decimal.Zero)), p.TopupID)
	}
	if p.Method == events.MethodOriginal && d.ev.Time.After(t.OriginalRouteUntil) {
		return ReasonOriginalRouteExpired, fmt.Sprintf("the original payment route of top-up %s closed on %s; withdraw to a designated receiving account", p.TopupID, t.OriginalRouteUntil.Format(time.RFC3339))
	}
	return "", ""
}

// exceedsAccount refuses an amount above what the account may withdraw.
func exceedsAccount(amount, withdrawable decimal.Decimal) (code, reason string) {
	if amount.GreaterThan(withdrawable) {
		return ReasonExceedsAccount, fmt.Sprintf("the amount %s exceeds the account's withdrawable %s", cny(amount), cny(withdrawable))
	}
	return "", ""
}

// incompleteDestination names what a designated receiving account lacks: seed 001 asks
// Alipay for the account and the payee's name, a bank card also for the bank, its
// province or city and the branch.
func incompleteDestination(dst *events.Destination) string {
	// The account number and the payee's name are required by the contract already.
	switch {
	case dst.Kind == events.DestinationBankCard && dst.Bank == "":
		return "the bank"
	case dst.Kind == events.DestinationBankCard && dst.ProvinceCity == "":
		return "the bank's province or city"
	case dst.Kind == events.DestinationBankCard && dst.Branch == "":
		return "the branch"
	}
	return ""
}

// approve moves a case to approved_pending_transfer with its expected completion, and
// asks the payout gateway to pay it.
func (d *decider) approve(a *Account, c *Case, by Actor, reason string) error {
	expected, err := d.expectedBy(a, c)
	if err != nil {
		return err
	}
	c.ExpectedBy = &expected
	c.PayoutID = "po-" + c.ID
	if err := d.advance(a, c, events.StatusApprovedPendingTransfer, by, reason); err != nil {
		return err
	}
	payout := &events.PayoutRequestedData{
		PayoutID: c.PayoutID, CaseID: c.ID, Amount: events.Amount{Decimal: c.Amount},
		Currency: a.currencyOr(d.rules.DefaultCurrency), Route: c.Route, Destination: c.Destination,
	}
	switch {
	case c.Kind == events.CaseOrder:
		payout.Route, payout.OrderID = events.RouteOriginal, c.Subject
	case c.Route == events.RouteOriginal:
		payout.TopupID = c.TopupID
	}
	return d.publish(events.PayoutRequested, payout)
}

// expectedBy is when an approved withdrawal should arrive [001]: by the original route,
// within 1 hour for Alipay and online banking and 2 business days for a bank card (and
// for other channels, which seed 001 does not name); to a designated account, 15 days
// (the seed's 7–15, at its upper end, so "overdue" means late).
func (d *decider) expectedBy(a *Account, c *Case) (time.Time, error) {
	from := d.happenedAt()
	switch c.Kind {
	case events.CaseDiscontinuation:
		return d.businessDays(from, 3) // arrives within 3 business days of approval [000]
	case events.CaseOrder:
		return d.businessDays(from, orderPayoutDays(c.PaymentMethod))
	}
	if c.Route == events.RouteDesignated {
		return from.Add(d.rules.DesignatedPayoutTime), nil
	}
	t, _ := a.topUp(c.TopupID)
	switch t.Channel {
	case events.ChannelAlipay, events.ChannelOnlineBanking:
		return from.Add(time.Hour), nil
	}
	return d.businessDays(from, 2)
}

// decideCase applies a review decision [001]: approval moves a case in review to
// transfer, rejection releases its hold. A decision for a case that is no longer in
// review changes nothing but the case's history.
func (d *decider) decideCase(a *Account, p *events.CaseDecidedData) (effect, error) {
	c, ok := a.findCase(p.CaseID)
	if !ok {
		return unchanged, wait("case %s is not requested yet", p.CaseID)
	}
	if c.Status != events.StatusInReview && c.Status != events.StatusInSecondaryReview {
		return d.note(a, &c, ByReviewer, fmt.Sprintf("decision %s by %s ignored: the case is %s", p.Decision, p.Reviewer, c.Status))
	}
	reason := p.Reason
	if reason == "" {
		reason = p.Decision + " by " + p.Reviewer
	}
	switch {
	case p.Decision == events.DecisionRejected:
		return changed, d.advance(a, &c, events.StatusRejected, ByReviewer, reason)
	case c.Kind == events.CasePackage, c.Kind == events.CaseOrder && c.ToBalance:
		// Refunds to the balance are done once approved [002][003].
		return changed, d.advance(a, &c, events.StatusCredited, ByReviewer, reason+"; credited to the account balance")
	}
	return changed, d.approve(a, &c, ByReviewer, reason)
}

// reportPayout applies the payout gateway's result [001]: success deducts the held
// amount from cash, failure releases it, and a failure reported after a success is a
// reversal that gives the money back. Anything that contradicts the case (another
// payout id, a success after a failure) changes no money: it is kept in the history.
func (d *decider) reportPayout(a *Account, p *events.PayoutReportedData) (effect, error) {
	c, ok := a.findCase(p.CaseID)
	if !ok {
		return unchanged, wait("case %s is not requested yet", p.CaseID)
	}
	if c.Status == events.StatusInReview {
		// The result can only be for a payout not requested yet: wait for the
		// approval rather than record a contradiction that may just be early.
		return unchanged, wait("case %s is still in review; no payout was requested", p.CaseID)
	}
	if p.PayoutID != c.PayoutID {
		return d.note(a, &c, ByPayout, fmt.Sprintf("result %s for unknown payout %s ignored", p.Status, p.PayoutID))
	}
	reason := p.FailureReason
	switch {
	case c.Status == events.StatusApprovedPendingTransfer && p.Status == events.PayoutSucceeded:
		return changed, d.advance(a, &c, events.StatusSucceeded, ByPayout, "payout succeeded")
	case c.Status == events.StatusApprovedPendingTransfer && p.Status == events.PayoutFailed:
		return changed, d.advance(a, &c, events.StatusFailed, ByPayout, "payout failed: "+orUnknown(reason))
	case c.Status == events.StatusSucceeded && p.Status == events.PayoutFailed:
		return changed, d.advance(a, &c, events.StatusFailed, ByPayout, "payout reversed after success: "+orUnknown(reason))
	case c.Status == p.Status:
		return unchanged, nil // the same result again
	}
	return d.note(a, &c, ByPayout, fmt.Sprintf("result %s contradicts the case's %s; no money moved", p.Status, c.Status))
}

// cny writes an amount as people read it in a reason: two decimals.
func cny(d decimal.Decimal) string { return d.StringFixed(2) }

func orUnknown(reason string) string {
	if reason == "" {
		return "no reason given"
	}
	return reason
}

// note records in a case's history what was received and ignored, so an operator can
// see it; the status and money stay as they are.
func (d *decider) note(a *Account, c *Case, by Actor, reason string) (effect, error) {
	c.History = append(c.History[:len(c.History):len(c.History)], CaseEntry{Status: c.Status, At: d.happenedAt(), By: by, Reason: reason})
	d.saveCase(a, *c)
	return changed, nil
}

// caseOverdueTimers are the expected completion times of open cases not yet reported
// overdue.
func caseOverdueTimers(a *Account, _ Rules) []Timer {
	var timers []Timer
	for id, c := range a.Cases {
		if c.ExpectedBy != nil && !c.Final() && !c.OverdueReported {
			timers = append(timers, Timer{Kind: TimerCaseOverdue, Subject: id, At: *c.ExpectedBy})
		}
	}
	return timers
}

// reportOverdue publishes refunds.case.overdue once for a case still open after its
// expected time [001].
func (d *decider) reportOverdue(a *Account, t Timer) (effect, error) {
	c, ok := a.Cases[t.Subject]
	if !ok || c.Final() || c.OverdueReported || c.ExpectedBy == nil || d.now.Before(*c.ExpectedBy) {
		return unchanged, nil
	}
	c.OverdueReported = true
	d.saveCase(a, c)
	d.cause = cause{ID: "case-overdue/" + c.ID + "/" + c.ExpectedBy.Format(time.RFC3339Nano), Type: events.CaseOverdue}
	return changed, d.publish(events.CaseOverdue, &events.CaseOverdueData{
		CaseID: c.ID, Kind: c.Kind, Status: c.Status, ExpectedBy: *c.ExpectedBy,
	})
}

// topUp is the top-up's balance in the ledger.
func (l Ledger) topUp(id string) (TopUpBalance, bool) {
	for _, t := range l.TopUps {
		if t.ID == id {
			return t, true
		}
	}
	return TopUpBalance{}, false
}
