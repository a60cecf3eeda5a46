package events

// Payloads of inbound events, in the order of CONTRACT.md. Field names and
// JSON names are the contract's; a field is optional exactly when its tag has
// omitempty (Decode and the AsyncAPI test both rely on that). Amounts that
// bring or move money must be greater than zero; where zero is allowed the
// field says why.

// AccountOpenedData is billing.account.opened.
type AccountOpenedData struct {
	HolderType string `json:"holder_type"` // HolderIndividual or HolderCompany
	HolderName string `json:"holder_name"`
	Verified   bool   `json:"verified"`
	// Currency is the account's one currency; absent means the engine's
	// default (state.Rules.DefaultCurrency). It is not filled in on decode,
	// so what was sent stays visible.
	Currency string `json:"currency,omitempty"`
	// Email is the account's email; a Stripe refund must name it [000].
	Email string `json:"email,omitempty"`
}

func (d *AccountOpenedData) Validate() error {
	return firstError(
		checkEmail("data.email", d.Email),
		checkEnum("data.holder_type", d.HolderType, holderTypes),
		checkText("data.holder_name", d.HolderName, maxNameLen),
		checkOptionalCurrency("data.currency", d.Currency),
	)
}

// AccountStatusChangedData is billing.account.status_changed.
type AccountStatusChangedData struct {
	Status string `json:"status"` // AccountActive, AccountFrozen or AccountClosed
	// Email, when given, is the account's new email.
	Email string `json:"email,omitempty"`
	// TermsViolated, when given, flags (true) or clears (false) a violation of the
	// terms of service: a flagged account gets no package refund [003].
	TermsViolated *bool `json:"terms_violated,omitempty"`
}

func (d *AccountStatusChangedData) Validate() error {
	return firstError(
		checkEnum("data.status", d.Status, accountStatuses),
		checkEmail("data.email", d.Email),
	)
}

// TopupReceivedData is billing.topup.received: one recharge.
type TopupReceivedData struct {
	TopupID  string `json:"topup_id"`
	Amount   Amount `json:"amount"`
	Currency string `json:"currency"`
	Channel  string `json:"channel"` // one of the Channel constants
	// Banking (BankingPersonal or BankingCorporate) and Bank pick the
	// original-route window of online banking; absent means the default window.
	Banking string `json:"banking,omitempty"`
	Bank    string `json:"bank,omitempty"` // e.g. CMB; any code is accepted
	// PayerType is free text for now: the contract lists no values for it.
	PayerType       string `json:"payer_type"`
	PayerName       string `json:"payer_name"`
	StripePaymentID string `json:"stripe_payment_id,omitempty"`
}

func (d *TopupReceivedData) Validate() error {
	return firstError(
		checkID("data.topup_id", d.TopupID),
		checkPositive("data.amount", d.Amount),
		checkCurrency("data.currency", d.Currency),
		checkEnum("data.channel", d.Channel, topupChannels),
		checkOptionalEnum("data.banking", d.Banking, bankings),
		checkBank("data.bank", d.Bank),
		checkText("data.payer_type", d.PayerType, maxShortLen),
		checkText("data.payer_name", d.PayerName, maxNameLen),
		checkOptionalID("data.stripe_payment_id", d.StripePaymentID),
	)
}

// ConsumptionRecordedData is billing.consumption.recorded. Amount is the
// cash part and VoucherAmount the part paid by vouchers; either may be zero,
// not both.
type ConsumptionRecordedData struct {
	ConsumptionID string  `json:"consumption_id"`
	Amount        Amount  `json:"amount"`
	VoucherAmount *Amount `json:"voucher_amount,omitempty"`
}

func (d *ConsumptionRecordedData) Validate() error {
	if err := firstError(
		checkID("data.consumption_id", d.ConsumptionID),
		checkAmount("data.amount", d.Amount),
		checkOptionalAmount("data.voucher_amount", d.VoucherAmount),
	); err != nil {
		return err
	}
	if !d.Amount.IsPositive() && (d.VoucherAmount == nil || !d.VoucherAmount.IsPositive()) {
		return invalid("data.amount", "must be greater than zero unless voucher_amount is")
	}
	return nil
}

// VoucherGrantedData is billing.voucher.granted.
type VoucherGrantedData struct {
	VoucherID string `json:"voucher_id"`
	Amount    Amount `json:"amount"`
	// Currency is an addition to the contract, optional: a voucher brings
	// new balance, so a sender may state its currency; absent means the
	// account's.
	Currency string `json:"currency,omitempty"`
}

func (d *VoucherGrantedData) Validate() error {
	return firstError(
		checkID("data.voucher_id", d.VoucherID),
		checkPositive("data.amount", d.Amount),
		checkOptionalCurrency("data.currency", d.Currency),
	)
}

// TransferReceivedData is billing.transfer.received: funds from another account.
type TransferReceivedData struct {
	TransferID string `json:"transfer_id"`
	Amount     Amount `json:"amount"`
	// Currency is an addition to the contract, optional, as for vouchers.
	Currency string `json:"currency,omitempty"`
}

func (d *TransferReceivedData) Validate() error {
	return firstError(
		checkID("data.transfer_id", d.TransferID),
		checkPositive("data.amount", d.Amount),
		checkOptionalCurrency("data.currency", d.Currency),
	)
}

// TransferRecalledData is billing.transfer.recalled: the sender took a transfer back.
type TransferRecalledData struct {
	TransferID string `json:"transfer_id"`
	Amount     Amount `json:"amount"`
}

func (d *TransferRecalledData) Validate() error {
	return firstError(
		checkID("data.transfer_id", d.TransferID),
		checkPositive("data.amount", d.Amount),
	)
}

// UsageAccruedData is billing.usage.accrued: consumption not yet billed.
type UsageAccruedData struct {
	UsageID string `json:"usage_id"`
	Cycle   string `json:"cycle"` // the billing cycle's id, e.g. "2026-11"
	Amount  Amount `json:"amount"`
}

func (d *UsageAccruedData) Validate() error {
	return firstError(
		checkID("data.usage_id", d.UsageID),
		checkText("data.cycle", d.Cycle, maxShortLen),
		checkPositive("data.amount", d.Amount),
	)
}

// CycleSettledData is billing.cycle.settled: Amount moves from unsettled to
// consumed. Zero is allowed: a cycle with no usage still settles.
type CycleSettledData struct {
	Cycle  string `json:"cycle"`
	Amount Amount `json:"amount"`
}

func (d *CycleSettledData) Validate() error {
	return firstError(
		checkText("data.cycle", d.Cycle, maxShortLen),
		checkAmount("data.amount", d.Amount),
	)
}

// BillIssuedData is billing.bill.issued: the amount is overdue until paid.
type BillIssuedData struct {
	BillID string `json:"bill_id"`
	Amount Amount `json:"amount"`
}

func (d *BillIssuedData) Validate() error {
	return firstError(
		checkID("data.bill_id", d.BillID),
		checkPositive("data.amount", d.Amount),
	)
}

// BillPaidData is billing.bill.paid.
type BillPaidData struct {
	BillID string `json:"bill_id"`
	Amount Amount `json:"amount"`
	// FromBalance is true when the bill was paid from the account's cash
	// balance rather than by an outside payment. The contract gives no type;
	// a boolean is our reading of it.
	FromBalance bool `json:"from_balance,omitempty"`
}

func (d *BillPaidData) Validate() error {
	return firstError(
		checkID("data.bill_id", d.BillID),
		checkPositive("data.amount", d.Amount),
	)
}

// CreditNoteData is billing.creditnote.issued and billing.creditnote.resolved.
// Issued, Amount is what the credit note holds back (the engine refuses one
// without it); resolved without Amount, the whole credit note is resolved.
type CreditNoteData struct {
	CreditNoteID string  `json:"credit_note_id"`
	Amount       *Amount `json:"amount,omitempty"`
}

func (d *CreditNoteData) Validate() error {
	return firstError(
		checkID("data.credit_note_id", d.CreditNoteID),
		checkOptionalPositive("data.amount", d.Amount),
	)
}

// InvoiceData is billing.invoice.issued and billing.invoice.reversed (the
// red-letter reversal a discontinuation refund waits for). TopupID is the
// recharge invoiced, when there is one.
type InvoiceData struct {
	InvoiceID string `json:"invoice_id"`
	TopupID   string `json:"topup_id,omitempty"`
}

func (d *InvoiceData) Validate() error {
	return firstError(
		checkID("data.invoice_id", d.InvoiceID),
		checkOptionalID("data.topup_id", d.TopupID),
	)
}

// ResourceCreatedData is billing.resource.created; a pay-as-you-go resource
// freezes the reserve.
type ResourceCreatedData struct {
	ResourceID  string `json:"resource_id"`
	BillingMode string `json:"billing_mode"` // BillingPayAsYouGo or BillingSubscription
}

func (d *ResourceCreatedData) Validate() error {
	return firstError(
		checkID("data.resource_id", d.ResourceID),
		checkEnum("data.billing_mode", d.BillingMode, billingModes),
	)
}

// ResourceReleasedData is billing.resource.released.
type ResourceReleasedData struct {
	ResourceID string `json:"resource_id"`
}

func (d *ResourceReleasedData) Validate() error {
	return checkID("data.resource_id", d.ResourceID)
}

// PackageData is billing.package.purchased and billing.package.consumed.
// Purchased, Units is the size of the package; consumed, how many units this
// event used up. Price may be zero (a free package refunds nothing).
type PackageData struct {
	PackageID string  `json:"package_id"`
	Price     *Amount `json:"price,omitempty"`
	Units     int64   `json:"units"`
}

func (d *PackageData) Validate() error {
	if err := firstError(
		checkID("data.package_id", d.PackageID),
		checkOptionalAmount("data.price", d.Price),
	); err != nil {
		return err
	}
	if d.Units <= 0 {
		return invalid("data.units", "must be greater than zero")
	}
	return nil
}

// OrderData is billing.order.purchased and billing.order.used (recorded
// usage, which makes a refund partial). Amounts may be zero: free orders
// exist, and refund nothing.
type OrderData struct {
	OrderID       string  `json:"order_id"`
	Amount        *Amount `json:"amount,omitempty"`
	PaymentMethod string  `json:"payment_method,omitempty"` // free text, e.g. "card", "paypal"
	// UsedAmount is the order's recorded usage so far (a total, not an increment, so
	// a repeat cannot count it twice).
	UsedAmount *Amount `json:"used_amount,omitempty"`
	// ThirdParty marks a service provided by a third-party partner: not refundable [002].
	ThirdParty bool `json:"third_party,omitempty"`
}

func (d *OrderData) Validate() error {
	return firstError(
		checkID("data.order_id", d.OrderID),
		checkOptionalAmount("data.amount", d.Amount),
		checkOptionalText("data.payment_method", d.PaymentMethod, maxShortLen),
		checkOptionalAmount("data.used_amount", d.UsedAmount),
	)
}

// WithdrawalRequestedData is console.withdrawal.requested. Without TopupID it
// is an application to withdraw non-top-up funds. The case id is WithdrawalID.
type WithdrawalRequestedData struct {
	WithdrawalID string `json:"withdrawal_id"`
	TopupID      string `json:"topup_id,omitempty"`
	Amount       Amount `json:"amount"`
	Method       string `json:"method"` // MethodOriginal or MethodDesignated
	// Destination is required with MethodDesignated: without it there is
	// nowhere to pay, and the console, which collects it, sent a broken request.
	Destination *Destination `json:"destination,omitempty"`
}

func (d *WithdrawalRequestedData) Validate() error {
	if err := firstError(
		checkID("data.withdrawal_id", d.WithdrawalID),
		checkOptionalID("data.topup_id", d.TopupID),
		checkPositive("data.amount", d.Amount),
		checkEnum("data.method", d.Method, methods),
	); err != nil {
		return err
	}
	if d.Destination == nil {
		if d.Method == MethodDesignated {
			return invalid("data.destination", "is required when method is %s", MethodDesignated)
		}
		return nil
	}
	return d.Destination.validate("data.destination")
}

// DiscontinuationRequestedData is console.discontinuation.requested.
type DiscontinuationRequestedData struct {
	RequestID string `json:"request_id"`
}

func (d *DiscontinuationRequestedData) Validate() error {
	return checkID("data.request_id", d.RequestID)
}

// RefundRequestedData is console.refund.requested. The case id is RefundID.
// An order refund must name its order and a package refund its package;
// anything else could not be matched to what is refunded.
type RefundRequestedData struct {
	RefundID        string       `json:"refund_id"`
	Kind            string       `json:"kind"` // RefundDiscontinuation, RefundOrder or RefundPackage
	OrderID         string       `json:"order_id,omitempty"`
	PackageID       string       `json:"package_id,omitempty"`
	Reason          string       `json:"reason,omitempty"`
	Destination     *Destination `json:"destination,omitempty"`
	StripePaymentID string       `json:"stripe_payment_id,omitempty"`
	Email           string       `json:"email,omitempty"`
	// WrittenStatement says the customer provided the written refund statement a
	// personal recharge refunded to a company needs [000].
	WrittenStatement bool `json:"written_statement,omitempty"`
	// ToBalance asks an order refund to be credited to the account balance instead of
	// paid back by the original method [002].
	ToBalance bool `json:"to_balance,omitempty"`
}

func (d *RefundRequestedData) Validate() error {
	if err := firstError(
		checkID("data.refund_id", d.RefundID),
		checkEnum("data.kind", d.Kind, refundKinds),
		checkOptionalID("data.order_id", d.OrderID),
		checkOptionalID("data.package_id", d.PackageID),
		checkOptionalText("data.reason", d.Reason, maxReasonLen),
		checkOptionalID("data.stripe_payment_id", d.StripePaymentID),
		checkEmail("data.email", d.Email),
	); err != nil {
		return err
	}
	switch {
	case d.Kind == RefundOrder && d.OrderID == "":
		return invalid("data.order_id", "is required when kind is %s", RefundOrder)
	case d.Kind == RefundPackage && d.PackageID == "":
		return invalid("data.package_id", "is required when kind is %s", RefundPackage)
	}
	if d.Destination != nil {
		return d.Destination.validate("data.destination")
	}
	return nil
}

// RefundAppealedData is console.refund.appealed: the one appeal of a rejected
// order refund, which sends it to a secondary review [002].
type RefundAppealedData struct {
	RefundID string `json:"refund_id"`
	Reason   string `json:"reason,omitempty"`
}

func (d *RefundAppealedData) Validate() error {
	return firstError(
		checkID("data.refund_id", d.RefundID),
		checkOptionalText("data.reason", d.Reason, maxReasonLen),
	)
}

// CaseDecidedData is review.case.decided.
type CaseDecidedData struct {
	CaseID   string `json:"case_id"`
	Decision string `json:"decision"` // DecisionApproved or DecisionRejected
	Reason   string `json:"reason,omitempty"`
	Reviewer string `json:"reviewer"`
}

func (d *CaseDecidedData) Validate() error {
	return firstError(
		checkID("data.case_id", d.CaseID),
		checkEnum("data.decision", d.Decision, decisions),
		checkOptionalText("data.reason", d.Reason, maxReasonLen),
		checkText("data.reviewer", d.Reviewer, maxNameLen),
	)
}

// PayoutReportedData is payout.result.reported. A payout may be reported
// succeeded and later failed; the domain, not this package, handles that.
type PayoutReportedData struct {
	PayoutID      string `json:"payout_id"`
	CaseID        string `json:"case_id"`
	Status        string `json:"status"` // PayoutSucceeded or PayoutFailed
	FailureReason string `json:"failure_reason,omitempty"`
}

func (d *PayoutReportedData) Validate() error {
	return firstError(
		checkID("data.payout_id", d.PayoutID),
		checkID("data.case_id", d.CaseID),
		checkEnum("data.status", d.Status, payoutStatuses),
		checkOptionalText("data.failure_reason", d.FailureReason, maxReasonLen),
	)
}
