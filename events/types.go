package events

import (
	"slices"
	"strings"
)

// Type is a CloudEvents type, e.g. "billing.topup.received". It is also the
// NATS subject prefix: the subject is "<type>.<account id>".
type Type string

// Inbound types: facts and requests other systems publish and this service consumes.
const (
	AccountOpened            Type = "billing.account.opened"
	AccountStatusChanged     Type = "billing.account.status_changed"
	TopupReceived            Type = "billing.topup.received"
	ConsumptionRecorded      Type = "billing.consumption.recorded"
	VoucherGranted           Type = "billing.voucher.granted"
	TransferReceived         Type = "billing.transfer.received"
	TransferRecalled         Type = "billing.transfer.recalled"
	UsageAccrued             Type = "billing.usage.accrued"
	CycleSettled             Type = "billing.cycle.settled"
	BillIssued               Type = "billing.bill.issued"
	BillPaid                 Type = "billing.bill.paid"
	CreditNoteIssued         Type = "billing.creditnote.issued"
	CreditNoteResolved       Type = "billing.creditnote.resolved"
	InvoiceIssued            Type = "billing.invoice.issued"
	InvoiceReversed          Type = "billing.invoice.reversed"
	ResourceCreated          Type = "billing.resource.created"
	ResourceReleased         Type = "billing.resource.released"
	PackagePurchased         Type = "billing.package.purchased"
	PackageConsumed          Type = "billing.package.consumed"
	OrderPurchased           Type = "billing.order.purchased"
	OrderUsed                Type = "billing.order.used"
	WithdrawalRequested      Type = "console.withdrawal.requested"
	DiscontinuationRequested Type = "console.discontinuation.requested"
	RefundRequested          Type = "console.refund.requested"
	RefundAppealed           Type = "console.refund.appealed"
	CaseDecided              Type = "review.case.decided"
	PayoutReported           Type = "payout.result.reported"
)

// Outbound types: what this service publishes.
const (
	CaseStatusChanged Type = "refunds.case.status_changed"
	CaseOverdue       Type = "refunds.case.overdue"
	// ResourcesReleaseRequested and InvoiceReversalRequired are ours, not in
	// CONTRACT.md: the steps of a service-discontinuation refund [000].
	ResourcesReleaseRequested Type = "refunds.resources.release_requested"
	InvoiceReversalRequired   Type = "refunds.invoice.reversal_required"
	ReviewRequested           Type = "refunds.review.requested"
	PayoutRequested           Type = "refunds.payout.requested"
	ReserveFrozen             Type = "refunds.reserve.frozen"
	ReserveUnfrozen           Type = "refunds.reserve.unfrozen"
	// BalanceChanged is ours, not in CONTRACT.md (which allows adding events):
	// an account's cash or withdrawable balance moved.
	BalanceChanged Type = "refunds.account.balance_changed"
)

// Direction says who publishes a type, seen from this service.
type Direction int

const (
	// Inbound types are published by others and received by this service.
	Inbound Direction = iota + 1
	// Outbound types are published by this service.
	Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "inbound"
	case Outbound:
		return "outbound"
	default:
		return "unknown"
	}
}

// Spec describes one event type.
type Spec struct {
	Type      Type
	Direction Direction
	// NewPayload returns a new, empty payload for the type, as a pointer
	// (e.g. *TopupReceivedData); Decode fills it.
	NewPayload func() Payload
}

// catalog lists every type once; Lookup and Catalog read it, nothing writes it.
var catalog = buildCatalog([]Spec{
	{AccountOpened, Inbound, func() Payload { return new(AccountOpenedData) }},
	{AccountStatusChanged, Inbound, func() Payload { return new(AccountStatusChangedData) }},
	{TopupReceived, Inbound, func() Payload { return new(TopupReceivedData) }},
	{ConsumptionRecorded, Inbound, func() Payload { return new(ConsumptionRecordedData) }},
	{VoucherGranted, Inbound, func() Payload { return new(VoucherGrantedData) }},
	{TransferReceived, Inbound, func() Payload { return new(TransferReceivedData) }},
	{TransferRecalled, Inbound, func() Payload { return new(TransferRecalledData) }},
	{UsageAccrued, Inbound, func() Payload { return new(UsageAccruedData) }},
	{CycleSettled, Inbound, func() Payload { return new(CycleSettledData) }},
	{BillIssued, Inbound, func() Payload { return new(BillIssuedData) }},
	{BillPaid, Inbound, func() Payload { return new(BillPaidData) }},
	{CreditNoteIssued, Inbound, func() Payload { return new(CreditNoteData) }},
	{CreditNoteResolved, Inbound, func() Payload { return new(CreditNoteData) }},
	{InvoiceIssued, Inbound, func() Payload { return new(InvoiceData) }},
	{InvoiceReversed, Inbound, func() Payload { return new(InvoiceData) }},
	{ResourceCreated, Inbound, func() Payload { return new(ResourceCreatedData) }},
	{ResourceReleased, Inbound, func() Payload { return new(ResourceReleasedData) }},
	{PackagePurchased, Inbound, func() Payload { return new(PackageData) }},
	{PackageConsumed, Inbound, func() Payload { return new(PackageData) }},
	{OrderPurchased, Inbound, func() Payload { return new(OrderData) }},
	{OrderUsed, Inbound, func() Payload { return new(OrderData) }},
	{WithdrawalRequested, Inbound, func() Payload { return new(WithdrawalRequestedData) }},
	{DiscontinuationRequested, Inbound, func() Payload { return new(DiscontinuationRequestedData) }},
	{RefundRequested, Inbound, func() Payload { return new(RefundRequestedData) }},
	{RefundAppealed, Inbound, func() Payload { return new(RefundAppealedData) }},
	{CaseDecided, Inbound, func() Payload { return new(CaseDecidedData) }},
	{PayoutReported, Inbound, func() Payload { return new(PayoutReportedData) }},

	{CaseStatusChanged, Outbound, func() Payload { return new(CaseStatusChangedData) }},
	{CaseOverdue, Outbound, func() Payload { return new(CaseOverdueData) }},
	{ResourcesReleaseRequested, Outbound, func() Payload { return new(ResourcesReleaseRequestedData) }},
	{InvoiceReversalRequired, Outbound, func() Payload { return new(InvoiceReversalRequiredData) }},
	{ReviewRequested, Outbound, func() Payload { return new(ReviewRequestedData) }},
	{PayoutRequested, Outbound, func() Payload { return new(PayoutRequestedData) }},
	{ReserveFrozen, Outbound, func() Payload { return new(ReserveFrozenData) }},
	{ReserveUnfrozen, Outbound, func() Payload { return new(ReserveUnfrozenData) }},
	{BalanceChanged, Outbound, func() Payload { return new(BalanceChangedData) }},
})

var specsByType = func() map[Type]Spec {
	m := make(map[Type]Spec, len(catalog))
	for _, s := range catalog {
		if _, dup := m[s.Type]; dup {
			panic("events: type listed twice in the catalog: " + string(s.Type))
		}
		m[s.Type] = s
	}
	return m
}()

func buildCatalog(specs []Spec) []Spec {
	slices.SortFunc(specs, func(a, b Spec) int { return strings.Compare(string(a.Type), string(b.Type)) })
	return specs
}

// Lookup returns the spec of t; false means t is not a type of the contract.
func Lookup(t Type) (Spec, bool) {
	s, ok := specsByType[t]
	return s, ok
}

// Catalog returns every type, inbound and outbound, sorted by Type. The slice
// is a copy the caller may keep or change.
func Catalog() []Spec {
	return slices.Clone(catalog)
}
