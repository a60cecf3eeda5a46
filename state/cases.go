package state

import (
	"fmt"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
)

// Case is one withdrawal or refund: money on its way out of (or into) the account,
// moved from status to status by the rules, reviewers, the payout gateway, the
// customer and timers. Its id is the withdrawal_id or refund_id.
type Case struct {
	ID     string
	Kind   string // events.CaseWithdrawal, CaseDiscontinuation, CaseOrder, CasePackage
	Status string // an events.Status* constant; "" before the case is opened
	Amount decimal.Decimal
	// TopupID is the top-up order the case holds money on, or "" (a non-top-up
	// application, a refund not drawn on a recharge).
	TopupID     string
	Route       string // events.RouteOriginal or events.RouteDesignated
	Destination *events.Destination
	OpenedAt    time.Time
	// ExpectedBy is when the case should be done; a case still open after it is
	// reported overdue, once (OverdueReported).
	ExpectedBy      *time.Time
	OverdueReported bool
	PayoutID        string
	// Subject is what a refund is for: its order or package id.
	Subject string
	// ToBalance: an approved order refund is credited to the balance, not paid out.
	ToBalance bool
	// PaymentMethod is the order's, which an order refund goes back by.
	PaymentMethod string
	// Appealed: the one appeal of an order refund was made.
	Appealed bool
	// InvoiceID is the invoice whose red-letter reversal the case waits for.
	InvoiceID string
	History   []CaseEntry
}

// CaseEntry is one status change of a case, or a note on it (an ignored decision, a
// contradicting payout result) when Status is unchanged.
type CaseEntry struct {
	Status string
	At     time.Time
	By     Actor
	// Code is the machine-readable reason of a refusal (a Reason* constant), or "".
	Code   string
	Reason string
}

// Actor is who moves a case.
type Actor string

const (
	// ByRules is the engine deciding a request by the business rules.
	ByRules Actor = "rules"
	// ByReviewer is finance review's decision.
	ByReviewer Actor = "reviewer"
	// ByPayout is the payout gateway's result.
	ByPayout Actor = "payout"
	// ByCustomer is the customer, appealing a rejection.
	ByCustomer Actor = "customer"
	// ByTimer is a deadline of the case running out.
	ByTimer Actor = "timer"
)

// caseMoney is what a status does with the case's amount.
type caseMoney int

const (
	// moneyFree: the case holds nothing (not yet opened, rejected, failed, reversed).
	moneyFree caseMoney = iota
	// moneyHeld: the amount stays in cash but cannot be withdrawn twice; held on the
	// account and on its top-up.
	moneyHeld
	// moneyPaidOut: the amount left cash.
	moneyPaidOut
	// moneyCredited: the amount came into cash as non-top-up funds.
	moneyCredited
)

// caseEdge is one allowed move of a case.
type caseEdge struct {
	from, to string
	by       Actor
}

// caseMachine is the state machine of one kind of case: the moves it allows, who may
// make each, and what each status does with the money. The four kinds share advance;
// each is a table.
type caseMachine struct {
	edges []caseEdge
	money map[string]caseMoney
}

// reviewToPayout are a review's two outcomes for a case paid out of the account.
var reviewToPayout = []caseEdge{
	{events.StatusInReview, events.StatusApprovedPendingTransfer, ByReviewer},
	{events.StatusInReview, events.StatusRejected, ByReviewer},
}

// payoutEdges are the payout gateway's results: success, failure, and a failure after
// a success (a reversal).
var payoutEdges = []caseEdge{
	{events.StatusApprovedPendingTransfer, events.StatusSucceeded, ByPayout},
	{events.StatusApprovedPendingTransfer, events.StatusFailed, ByPayout},
	{events.StatusSucceeded, events.StatusFailed, ByPayout},
}

// caseMachines are the kinds of case this version runs.
var caseMachines = map[string]caseMachine{
	events.CaseWithdrawal: {
		// Seed 001: refused at once, straight to transfer by the original route, or to
		// review; review approves or rejects; the payout succeeds or fails; a failure
		// reported after a success is a reversal.
		edges: slices.Concat([]caseEdge{
			{"", events.StatusRejected, ByRules},
			{"", events.StatusInReview, ByRules},
			{"", events.StatusApprovedPendingTransfer, ByRules},
		}, reviewToPayout, payoutEdges),
		money: map[string]caseMoney{
			events.StatusInReview:                moneyHeld,
			events.StatusApprovedPendingTransfer: moneyHeld,
			events.StatusSucceeded:               moneyPaidOut,
		},
	},
	events.CaseDiscontinuation: {
		// Seed 000: the request waits for the settlement of delayed billing items, then
		// for the reversal of an invoice of the recharge, then review and payout.
		edges: slices.Concat([]caseEdge{
			{"", events.StatusRejected, ByRules},
			{"", events.StatusAwaitingSettlement, ByRules},
			{events.StatusAwaitingSettlement, events.StatusAwaitingInvoiceReversal, ByTimer},
			{events.StatusAwaitingSettlement, events.StatusInReview, ByTimer},
			{events.StatusAwaitingSettlement, events.StatusRejected, ByTimer},
			{events.StatusAwaitingInvoiceReversal, events.StatusInReview, ByRules},
		}, reviewToPayout, payoutEdges),
		// The recharge's remainder is held from the end of the settlement: before it,
		// delayed billing items must still be able to draw on it.
		money: map[string]caseMoney{
			events.StatusAwaitingInvoiceReversal: moneyHeld,
			events.StatusInReview:                moneyHeld,
			events.StatusApprovedPendingTransfer: moneyHeld,
			events.StatusSucceeded:               moneyPaidOut,
		},
	},
	events.CaseOrder: {
		// Seed 002: review, one appeal to a secondary review whose decision is final,
		// then a refund by the original payment method or a credit to the balance. The
		// money of a payout is the order's, not the account's cash.
		edges: slices.Concat([]caseEdge{
			{"", events.StatusRejected, ByRules},
			{"", events.StatusInReview, ByRules},
			{events.StatusInReview, events.StatusApprovedPendingTransfer, ByReviewer},
			{events.StatusInReview, events.StatusCredited, ByReviewer},
			{events.StatusInReview, events.StatusRejected, ByReviewer},
			{events.StatusRejected, events.StatusInSecondaryReview, ByCustomer},
			{events.StatusInSecondaryReview, events.StatusApprovedPendingTransfer, ByReviewer},
			{events.StatusInSecondaryReview, events.StatusCredited, ByReviewer},
			{events.StatusInSecondaryReview, events.StatusRejected, ByReviewer},
		}, payoutEdges),
		money: map[string]caseMoney{events.StatusCredited: moneyCredited},
	},
	events.CasePackage: {
		// Seed 003: credited to the balance at once, or after review on suspected abuse.
		edges: []caseEdge{
			{"", events.StatusRejected, ByRules},
			{"", events.StatusCredited, ByRules},
			{"", events.StatusInReview, ByRules},
			{events.StatusInReview, events.StatusCredited, ByReviewer},
			{events.StatusInReview, events.StatusRejected, ByReviewer},
		},
		money: map[string]caseMoney{events.StatusCredited: moneyCredited},
	},
}

// IllegalMove is a move the case's machine does not allow: from its status, to that
// status, by that actor.
type IllegalMove struct {
	CaseID, Kind, From, To string
	By                     Actor
}

func (e *IllegalMove) Error() string {
	from := e.From
	if from == "" {
		from = "(new)"
	}
	return fmt.Sprintf("%s case %s cannot move from %s to %s by %s", e.Kind, e.CaseID, from, e.To, e.By)
}

// allows reports whether the machine lets by move a case from one status to another.
func (m caseMachine) allows(from, to string, by Actor) bool {
	for _, e := range m.edges {
		if e.from == from && e.to == to && e.by == by {
			return true
		}
	}
	return false
}

// Final reports whether a case can no longer move by anyone but the payout gateway
// reversing a success: rejected, failed, succeeded, credited.
func (c Case) Final() bool {
	switch c.Status {
	case events.StatusRejected, events.StatusFailed, events.StatusSucceeded, events.StatusCredited:
		return true
	}
	return false
}

// Holds is what the case holds back from the account's withdrawable cash now.
func (c Case) Holds() decimal.Decimal {
	if caseMachines[c.Kind].money[c.Status] == moneyHeld {
		return c.Amount
	}
	return decimal.Zero
}

// happenedAt is when what the decision records happened: the event's own time, or now
// for a timer.
func (d *decider) happenedAt() time.Time {
	if d.ev.Time.IsZero() {
		return d.now
	}
	return d.ev.Time.UTC()
}

// saveCase keeps a case where it belongs: an open case in the account's document, an
// ended one out of it, to be stored apart with the decision (Decision.ClosedCases).
func (d *decider) saveCase(a *Account, c Case) {
	if !c.Final() {
		own(a, sharedCases, &a.Cases)[c.ID] = c
		return
	}
	delete(own(a, sharedCases, &a.Cases), c.ID)
	own(a, sharedClosed, &a.closed)[c.ID] = c
	if d.closed == nil {
		d.closed = make(map[string]bool)
	}
	d.closed[c.ID] = true
}

// advance moves case c of account a to status `to`, as by, for reason: it checks the
// move against the case's machine, records it in the history, keeps the account's
// money right (a hold is placed or released, a payout deducted or, reversed, given
// back), and publishes refunds.case.status_changed. It is the only way a case moves.
func (d *decider) advance(a *Account, c *Case, to string, by Actor, reason string) error {
	return d.advanceWithCode(a, c, to, by, "", reason)
}

// advanceWithCode is advance with a machine-readable reason code.
func (d *decider) advanceWithCode(a *Account, c *Case, to string, by Actor, code, reason string) error {
	m, ok := caseMachines[c.Kind]
	if !ok {
		return fmt.Errorf("case %s: no machine for kind %q", c.ID, c.Kind)
	}
	from := c.Status
	if !m.allows(from, to, by) {
		return &IllegalMove{CaseID: c.ID, Kind: c.Kind, From: from, To: to, By: by}
	}
	if from == "" {
		d.opened = append(d.opened, c.ID)
	}
	before, after := m.money[from], m.money[to]
	switch {
	case before != moneyPaidOut && after == moneyPaidOut:
		own(a, sharedPaidOut, &a.PaidOut)[c.TopupID] = a.PaidOut[c.TopupID].Add(c.Amount)
	case before == moneyPaidOut && after != moneyPaidOut:
		own(a, sharedPaidOut, &a.PaidOut)[c.TopupID] = a.PaidOut[c.TopupID].Sub(c.Amount)
	case before != moneyCredited && after == moneyCredited:
		a.Credited = a.Credited.Add(c.Amount)
	}
	// Cases share their history slice with the account they were loaded from:
	// append to a copy, so the decision never changes its input.
	c.History = append(c.History[:len(c.History):len(c.History)], CaseEntry{Status: to, At: d.happenedAt(), By: by, Code: code, Reason: reason})
	c.Status = to
	d.saveCase(a, *c)
	return d.publish(events.CaseStatusChanged, &events.CaseStatusChangedData{
		CaseID:     c.ID,
		Kind:       c.Kind,
		Status:     to,
		Previous:   from,
		Amount:     events.Amount{Decimal: c.Amount},
		Reason:     reason,
		ReasonCode: code,
		ExpectedBy: c.ExpectedBy,
	})
}
