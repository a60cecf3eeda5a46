package events

import (
	"fmt"
	"time"
)

// Payloads of outbound events. New validates them, so a bug in the domain
// that would publish a malformed event fails at the source instead of at
// every downstream consumer.

// CaseStatusChangedData is refunds.case.status_changed, published on every
// status change of a withdrawal or refund case, with the reason.
type CaseStatusChangedData struct {
	CaseID string `json:"case_id"`
	Kind   string `json:"kind"`   // one of the Case constants
	Status string `json:"status"` // one of the Status constants
	// Previous is the status before this change; "" for a case just opened.
	Previous string `json:"previous"`
	Amount   Amount `json:"amount"`
	Reason   string `json:"reason,omitempty"`
	// ReasonCode is ours, not in CONTRACT.md: a machine-readable code for a
	// refusal (e.g. exceeds_account_withdrawable), next to the readable Reason.
	ReasonCode string     `json:"reason_code,omitempty"`
	ExpectedBy *time.Time `json:"expected_by,omitempty"` // when the money should arrive
}

func (d *CaseStatusChangedData) Validate() error {
	return firstError(
		checkID("data.case_id", d.CaseID),
		checkEnum("data.kind", d.Kind, caseKinds),
		checkEnum("data.status", d.Status, caseStatuses),
		checkOptionalEnum("data.previous", d.Previous, caseStatuses),
		checkCaseAmount(d.Status, d.Amount),
		checkOptionalText("data.reason", d.Reason, maxReasonLen),
		checkOptionalText("data.reason_code", d.ReasonCode, maxShortLen),
	)
}

// checkCaseAmount wants a case's amount positive, except for a request refused at
// once because there was nothing to refund: its amount is zero.
func checkCaseAmount(status string, a Amount) error {
	if status == StatusRejected {
		return checkAmount("data.amount", a)
	}
	return checkPositive("data.amount", a)
}

// CaseOverdueData is refunds.case.overdue: a case still open after the time
// it was expected to be done by, published once per case.
type CaseOverdueData struct {
	CaseID     string    `json:"case_id"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	ExpectedBy time.Time `json:"expected_by"`
}

func (d *CaseOverdueData) Validate() error {
	if d.ExpectedBy.IsZero() {
		return invalid("data.expected_by", "is required")
	}
	return firstError(
		checkID("data.case_id", d.CaseID),
		checkEnum("data.kind", d.Kind, caseKinds),
		checkEnum("data.status", d.Status, caseStatuses),
	)
}

// ReviewRequestedData is refunds.review.requested: a case needs a person.
// Reasons says why (designated account, risk flag, ...); there is at least one.
type ReviewRequestedData struct {
	CaseID  string   `json:"case_id"`
	Kind    string   `json:"kind"`
	Amount  Amount   `json:"amount"`
	Reasons []string `json:"reasons"`
}

func (d *ReviewRequestedData) Validate() error {
	if err := firstError(
		checkID("data.case_id", d.CaseID),
		checkEnum("data.kind", d.Kind, caseKinds),
		checkPositive("data.amount", d.Amount),
	); err != nil {
		return err
	}
	if len(d.Reasons) == 0 {
		return invalid("data.reasons", "must list at least one reason")
	}
	for i, r := range d.Reasons {
		if err := checkText(fmt.Sprintf("data.reasons[%d]", i), r, maxReasonLen); err != nil {
			return err
		}
	}
	return nil
}

// PayoutRequestedData is refunds.payout.requested, for the payout gateway.
//
// Destination is where to pay. The contract lists it without "?", but an
// original-route payout has no customer-given account: the gateway reverses
// the top-up named by TopupID instead. So Destination is required for
// RouteDesignated, TopupID for RouteOriginal, and both may be sent.
type PayoutRequestedData struct {
	PayoutID    string       `json:"payout_id"`
	CaseID      string       `json:"case_id"`
	Amount      Amount       `json:"amount"`
	Currency    string       `json:"currency"`
	Route       string       `json:"route"` // RouteOriginal or RouteDesignated
	Destination *Destination `json:"destination,omitempty"`
	TopupID     string       `json:"topup_id,omitempty"`
	// OrderID is the order an order refund pays back by its original method (ours).
	OrderID string `json:"order_id,omitempty"`
}

func (d *PayoutRequestedData) Validate() error {
	if err := firstError(
		checkID("data.payout_id", d.PayoutID),
		checkID("data.case_id", d.CaseID),
		checkPositive("data.amount", d.Amount),
		checkCurrency("data.currency", d.Currency),
		checkEnum("data.route", d.Route, routes),
		checkOptionalID("data.topup_id", d.TopupID),
		checkOptionalID("data.order_id", d.OrderID),
	); err != nil {
		return err
	}
	switch {
	case d.Route == RouteDesignated && d.Destination == nil:
		return invalid("data.destination", "is required when route is %s", RouteDesignated)
	case d.Route == RouteOriginal && d.TopupID == "" && d.OrderID == "" && d.Destination == nil:
		return invalid("data.topup_id", "or data.order_id is required when route is %s and there is no destination", RouteOriginal)
	}
	if d.Destination != nil {
		return d.Destination.validate("data.destination")
	}
	return nil
}

// ResourcesReleaseRequestedData is refunds.resources.release_requested: the
// customer discontinued service, so billing must release every resource of the
// account [000]. ResourceIDs are the ones the engine knows to be active.
type ResourcesReleaseRequestedData struct {
	RequestID   string   `json:"request_id"`
	ResourceIDs []string `json:"resource_ids"`
}

func (d *ResourcesReleaseRequestedData) Validate() error {
	if err := checkID("data.request_id", d.RequestID); err != nil {
		return err
	}
	if d.ResourceIDs == nil {
		return invalid("data.resource_ids", "is required (empty when none is active)")
	}
	for i, id := range d.ResourceIDs {
		if err := checkID(fmt.Sprintf("data.resource_ids[%d]", i), id); err != nil {
			return err
		}
	}
	return nil
}

// InvoiceReversalRequiredData is refunds.invoice.reversal_required: the recharge a
// discontinuation refund pays back was invoiced, so the customer's finance team must
// confirm the red-letter reversal before review [000].
type InvoiceReversalRequiredData struct {
	CaseID    string `json:"case_id"`
	InvoiceID string `json:"invoice_id"`
	TopupID   string `json:"topup_id"`
}

func (d *InvoiceReversalRequiredData) Validate() error {
	return firstError(
		checkID("data.case_id", d.CaseID),
		checkID("data.invoice_id", d.InvoiceID),
		checkID("data.topup_id", d.TopupID),
	)
}

// ReserveFrozenData is refunds.reserve.frozen: a pay-as-you-go resource
// appeared, so Amount of cash is not withdrawable.
type ReserveFrozenData struct {
	Amount        Amount     `json:"amount"`
	LastReleaseAt *time.Time `json:"last_release_at,omitempty"`
}

func (d *ReserveFrozenData) Validate() error {
	return checkPositive("data.amount", d.Amount)
}

// ReserveUnfrozenData is refunds.reserve.unfrozen, published once when the
// countdown after the last release (LastReleaseAt) ends.
type ReserveUnfrozenData struct {
	Amount        Amount     `json:"amount"`
	LastReleaseAt *time.Time `json:"last_release_at,omitempty"`
}

func (d *ReserveUnfrozenData) Validate() error {
	return checkPositive("data.amount", d.Amount)
}

// BalanceChangedData is refunds.account.balance_changed (ours): the account's
// cash or withdrawable balance after the event CauseID of type CauseType.
type BalanceChangedData struct {
	CauseID      string `json:"cause_id"`
	CauseType    Type   `json:"cause_type"`
	Currency     string `json:"currency"`
	Cash         Amount `json:"cash"`
	Withdrawable Amount `json:"withdrawable"`
}

func (d *BalanceChangedData) Validate() error {
	return firstError(
		checkID("data.cause_id", d.CauseID),
		checkText("data.cause_type", string(d.CauseType), maxIDLen),
		checkCurrency("data.currency", d.Currency),
		checkAmount("data.cash", d.Cash),
		checkAmount("data.withdrawable", d.Withdrawable),
	)
}
