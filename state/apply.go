package state

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
)

// Source is the CloudEvents source of everything this service publishes.
const Source = "/refunds"

// Apply decides what event ev does to account a. It never mutates a. now is when the
// decision is made and stamps the events it publishes; rules that count time use the
// event's own time instead.
func Apply(a Account, ev events.Event, r Rules, now time.Time) (Decision, error) {
	if ev.Subject != a.ID {
		return Decision{}, fmt.Errorf("event %s is for account %s, not %s", ev.ID, ev.Subject, a.ID)
	}
	if ev.Time.Before(r.EarliestEventTime) {
		return Decision{}, refuse("event time %s is before %s, the earliest the engine accepts", ev.Time.UTC().Format(time.RFC3339), r.EarliestEventTime.Format(time.DateOnly))
	}
	switch ahead := ev.Time.Sub(now); {
	case ahead > r.MaxEventAhead:
		return Decision{}, refuse("event time %s is %s ahead of now, more than the %s the engine waits for", ev.Time.UTC().Format(time.RFC3339), ahead.Round(time.Second), r.MaxEventAhead)
	case ahead > r.ClockSkew:
		return Decision{}, wait("event time %s is %s ahead of now", ev.Time.UTC().Format(time.RFC3339), ahead.Round(time.Second))
	}
	if _, opening := ev.Payload.(*events.AccountOpenedData); !opening && !a.Opened {
		// Until billing.account.opened arrives the account's currency, holder and
		// verification are unknown, so nothing can be checked: wait for it.
		return Decision{}, wait("account %s is not opened yet", a.ID)
	}
	handle, ok := handlers[ev.Type]
	if !ok {
		return Decision{}, refuse("%s is not handled by this version of the engine", ev.Type)
	}
	// The handler is called through a table, so its decider, and the account it
	// changes, cannot stay on the stack: one decider is reused, with the account in
	// it, rather than both made per event. Nothing of it outlives the call (the
	// decision copies the account and takes its slices, and it is emptied before it
	// goes back).
	d := deciders.Get().(*decider)
	defer func() {
		*d = decider{}
		deciders.Put(d)
	}()
	*d = decider{ev: ev, cause: cause{ID: ev.ID, Type: ev.Type}, rules: r, now: now, before: a, next: a.clone()}
	eff, err := handle(d, &d.next, ev.Payload)
	if err != nil {
		return Decision{}, err
	}
	d.changed = eff == changed
	return d.finish(&d.next)
}

// handler applies one event type's typed payload to the account, and says whether it
// changed it.
type handler func(d *decider, a *Account, p events.Payload) (effect, error)

// effect is what a handler did to the account. A handler that changed nothing still
// succeeds: its event is remembered, so a redelivery is recognised.
type effect bool

const (
	changed   effect = true
	unchanged effect = false
)

// on adapts a handler of one payload type to the table. Decode guarantees the payload
// is the type's (events.Lookup), so the assertion cannot fail for a decoded event.
func on[P events.Payload](h func(*decider, *Account, P) (effect, error)) handler {
	return func(d *decider, a *Account, p events.Payload) (effect, error) {
		typed, ok := p.(P)
		if !ok {
			return unchanged, fmt.Errorf("%s carries %T, not its payload type", d.ev.Type, p)
		}
		return h(d, a, typed)
	}
}

// handlers is the engine's dispatch: every inbound type it applies, to the rule that
// applies it. A new event type gets its line here and its rule in the file of its
// subject (ledger facts here, the reserve in reserve.go, cases in cases.go).
var handlers = map[events.Type]handler{
	events.AccountOpened:            on((*decider).openAccount),
	events.AccountStatusChanged:     on((*decider).changeStatus),
	events.TopupReceived:            on((*decider).receiveTopUp),
	events.ConsumptionRecorded:      on((*decider).recordConsumption),
	events.VoucherGranted:           on((*decider).grantVoucher),
	events.TransferReceived:         on((*decider).receiveTransfer),
	events.TransferRecalled:         on((*decider).recallTransfer),
	events.UsageAccrued:             on((*decider).accrueUsage),
	events.CycleSettled:             on((*decider).settleCycle),
	events.BillIssued:               on((*decider).issueBill),
	events.BillPaid:                 on((*decider).payBill),
	events.CreditNoteIssued:         on((*decider).issueCreditNote),
	events.CreditNoteResolved:       on((*decider).resolveCreditNote),
	events.InvoiceIssued:            on((*decider).issueInvoice),
	events.InvoiceReversed:          on((*decider).reverseInvoice),
	events.ResourceCreated:          on((*decider).createResource),
	events.ResourceReleased:         on((*decider).releaseResource),
	events.WithdrawalRequested:      on((*decider).requestWithdrawal),
	events.CaseDecided:              on((*decider).decideCase),
	events.PayoutReported:           on((*decider).reportPayout),
	events.PackagePurchased:         on((*decider).purchasePackage),
	events.PackageConsumed:          on((*decider).consumePackage),
	events.OrderPurchased:           on((*decider).purchaseOrder),
	events.OrderUsed:                on((*decider).useOrder),
	events.DiscontinuationRequested: on((*decider).discontinue),
	events.RefundRequested:          on((*decider).requestRefund),
	events.RefundAppealed:           on((*decider).appealRefund),
}

// notYetHandled are the inbound types of the contract this version deliberately does
// not apply yet: they are refused as "not handled by this version", dead-lettered, and
// replayed after an upgrade. A test keeps handlers and this list covering the catalog.
var notYetHandled = map[events.Type]bool{}

// finish publishes what the decision changed for notifiers (the reserve freezing, the
// balance) and notes the account's timers. next is the decided account, which the
// decision takes.
func (d *decider) finish(next *Account) (Decision, error) {
	if d.changed {
		if err := d.publishReserveFrozen(next); err != nil {
			return Decision{}, err
		}
		if err := d.publishBalanceChange(next); err != nil {
			return Decision{}, err
		}
	}
	// Loaded for this decision only: the next one gets it fresh from the store.
	next.sameHolderOverdue = nil
	before, after := d.before.pendingTimers(d.rules), next.pendingTimers(d.rules)
	return Decision{
		Account:             *next,
		Changed:             d.changed,
		Outbound:            d.outbound,
		Timers:              after,
		NextDeadlineChanged: !sameTime(earliest(before), earliest(after)) || earliestKind(before) != earliestKind(after),
		OpenedCases:         d.opened,
		ClosedCases:         d.closedCases(*next),
		HolderOverdue:       holderOverdueChange(d.before, *next),
	}, nil
}

// holderOverdueChange is the account's new entry in the index of holders with an
// overdue amount, when the decision changed whether it has one (or opened it).
func holderOverdueChange(before, after Account) *HolderOverdue {
	if !after.Opened || after.HolderName == "" {
		return nil
	}
	if before.Opened && before.hasOverdue() == after.hasOverdue() {
		return nil
	}
	return &HolderOverdue{Name: after.HolderName, Overdue: after.hasOverdue()}
}

// closedCases are the ended cases the decision wrote, in id order.
func (d *decider) closedCases(a Account) []Case {
	if len(d.closed) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(d.closed))
	out := make([]Case, 0, len(ids))
	for _, id := range ids {
		out = append(out, a.closed[id])
	}
	return out
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// cause is what a decision's outbound events answer: the inbound event, or a timer.
// Its id derives theirs (OutboundID), so deciding the same cause twice publishes the
// same ids.
type cause struct {
	ID   string
	Type events.Type
}

// deciders are the deciders Apply reuses.
var deciders = sync.Pool{New: func() any { return new(decider) }}

// decider carries what one decision needs and collects what it publishes.
type decider struct {
	ev       events.Event // the inbound event; zero for a timer firing
	cause    cause
	rules    Rules
	now      time.Time
	before   Account
	next     Account // what the handler or the timers change; the decision takes a copy
	changed  bool
	outbound []events.Event
	opened   []string        // ids of the cases opened
	closed   map[string]bool // ids of the ended cases the decision wrote
}

func (d *decider) publish(t events.Type, p events.Payload) error {
	id := OutboundID(d.before.ID, d.cause.ID, len(d.outbound))
	ev, err := events.New(t, d.before.ID, Source, id, d.now, p)
	if err != nil {
		return fmt.Errorf("build %s: %w", t, err)
	}
	d.outbound = append(d.outbound, ev)
	return nil
}

// publishBalanceChange tells notifiers when the account's cash or withdrawable
// balance moved.
func (d *decider) publishBalanceChange(a *Account) error {
	a.keepTopUpTotals()
	before, after := d.before.balances(d.rules), a.balances(d.rules)
	a.knownBalances = &after
	if before.cash.Equal(after.cash) && before.withdrawable.Equal(after.withdrawable) {
		return nil
	}
	return d.publish(events.BalanceChanged, &events.BalanceChangedData{
		CauseID:      d.cause.ID,
		CauseType:    d.cause.Type,
		Currency:     after.currency,
		Cash:         events.Amount{Decimal: after.cash},
		Withdrawable: events.Amount{Decimal: after.withdrawable},
	})
}

// requireCurrency refuses new money in another currency than the account's. An event
// that does not name its currency is in the account's.
func (d *decider) requireCurrency(a *Account, currency string) error {
	if currency != "" && currency != a.Currency {
		return refuse("currency %s differs from the account's %s", currency, a.Currency)
	}
	return nil
}

func (d *decider) openAccount(a *Account, p *events.AccountOpenedData) (effect, error) {
	if a.Opened {
		// A second opened event can only be a mistake upstream; keep the first rather
		// than silently change the holder or currency of an account holding money.
		return unchanged, refuse("account %s is already opened", a.ID)
	}
	a.Opened = true
	a.HolderType, a.HolderName, a.Verified = p.HolderType, p.HolderName, p.Verified
	a.Currency = cmp.Or(p.Currency, d.rules.DefaultCurrency)
	a.Email = p.Email
	return changed, nil
}

func (d *decider) changeStatus(a *Account, p *events.AccountStatusChangedData) (effect, error) {
	next := *a
	next.Status = p.Status
	if p.Email != "" {
		next.Email = p.Email
	}
	if p.TermsViolated != nil {
		next.TermsViolated = *p.TermsViolated
	}
	if next.Status == a.Status && next.Email == a.Email && next.TermsViolated == a.TermsViolated {
		return unchanged, nil
	}
	a.Status, a.Email, a.TermsViolated = next.Status, next.Email, next.TermsViolated
	return changed, nil
}

func (d *decider) receiveTopUp(a *Account, p *events.TopupReceivedData) (effect, error) {
	if err := d.requireCurrency(a, p.Currency); err != nil {
		return unchanged, err
	}
	if existing, ok := a.topUp(p.TopupID); ok {
		return unchanged, repeat("top-up "+p.TopupID+" already received with amount", existing.Amount, p.Amount.Decimal)
	}
	a.addTopUp(TopUp{
		ID:              p.TopupID,
		Amount:          p.Amount.Decimal,
		Channel:         p.Channel,
		Banking:         p.Banking,
		Bank:            p.Bank,
		PayerType:       p.PayerType,
		PayerName:       p.PayerName,
		StripePaymentID: p.StripePaymentID,
		ReceivedAt:      d.ev.Time.UTC(),
	})
	return changed, nil
}

// recordConsumption adds the cash part to what Ledger allocates, transferred funds
// first, then top-ups first recharged; the voucher part draws on vouchers only.
// Consumption beyond the money received is kept as unfunded, not refused: the top-up
// that pays for it may simply not have arrived yet.
func (d *decider) recordConsumption(a *Account, p *events.ConsumptionRecordedData) (effect, error) {
	a.Consumed = a.Consumed.Add(p.Amount.Decimal)
	if p.VoucherAmount != nil {
		a.VouchersUsed = a.VouchersUsed.Add(p.VoucherAmount.Decimal)
	}
	return changed, nil
}

func (d *decider) grantVoucher(a *Account, p *events.VoucherGrantedData) (effect, error) {
	if err := d.requireCurrency(a, p.Currency); err != nil {
		return unchanged, err
	}
	a.VouchersGranted = a.VouchersGranted.Add(p.Amount.Decimal)
	return changed, nil
}

func (d *decider) receiveTransfer(a *Account, p *events.TransferReceivedData) (effect, error) {
	if err := d.requireCurrency(a, p.Currency); err != nil {
		return unchanged, err
	}
	if existing, ok := a.Transfers[p.TransferID]; ok {
		return unchanged, repeat("transfer "+p.TransferID+" already received with amount", existing.Received, p.Amount.Decimal)
	}
	own(a, sharedTransfers, &a.Transfers)[p.TransferID] = Transfer{Received: p.Amount.Decimal}
	return changed, nil
}

func (d *decider) recallTransfer(a *Account, p *events.TransferRecalledData) (effect, error) {
	t, ok := a.Transfers[p.TransferID]
	if !ok {
		return unchanged, wait("transfer %s is not received yet", p.TransferID)
	}
	recalled, all, err := drawDown(p.Amount.Decimal, t.Received, t.Recalled, func(open decimal.Decimal) error {
		return refuse("recall of %s from transfer %s exceeds the %s not yet recalled", p.Amount.Decimal, p.TransferID, open)
	})
	if err != nil {
		return unchanged, err
	}
	t.Recalled = recalled
	keepUnlessDone(own(a, sharedTransfers, &a.Transfers), p.TransferID, t, all)
	return changed, nil
}

func (d *decider) accrueUsage(a *Account, p *events.UsageAccruedData) (effect, error) {
	c := a.Cycles[p.Cycle]
	if c.Settled != nil {
		// The cycle's settlement already moved its consumption; usage reported late
		// for it is in that settled amount.
		return unchanged, nil
	}
	c.Accrued = c.Accrued.Add(p.Amount.Decimal)
	own(a, sharedCycles, &a.Cycles)[p.Cycle] = c
	return changed, nil
}

func (d *decider) settleCycle(a *Account, p *events.CycleSettledData) (effect, error) {
	c := a.Cycles[p.Cycle]
	if c.Settled != nil {
		return unchanged, repeat("cycle "+p.Cycle+" already settled at", *c.Settled, p.Amount.Decimal)
	}
	settled := p.Amount.Decimal
	// Only the fact that the cycle settled is kept: its accrued usage no longer
	// holds anything back, so a late accrual cannot either.
	own(a, sharedCycles, &a.Cycles)[p.Cycle] = Cycle{Settled: &settled}
	a.Consumed = a.Consumed.Add(settled)
	return changed, nil
}

func (d *decider) issueBill(a *Account, p *events.BillIssuedData) (effect, error) {
	if existing, ok := a.Bills[p.BillID]; ok {
		return unchanged, repeat("bill "+p.BillID+" already issued for", existing.Amount, p.Amount.Decimal)
	}
	own(a, sharedBills, &a.Bills)[p.BillID] = Bill{Amount: p.Amount.Decimal}
	return changed, nil
}

// payBill reduces what is overdue. Paid from the balance, it is also consumption.
func (d *decider) payBill(a *Account, p *events.BillPaidData) (effect, error) {
	b, ok := a.Bills[p.BillID]
	if !ok {
		return unchanged, wait("bill %s is not issued yet (or is already paid in full)", p.BillID)
	}
	paid, all, err := drawDown(p.Amount.Decimal, b.Amount, b.Paid, func(unpaid decimal.Decimal) error {
		return refuse("payment of %s on bill %s exceeds its unpaid %s", p.Amount.Decimal, p.BillID, unpaid)
	})
	if err != nil {
		return unchanged, err
	}
	b.Paid = paid
	keepUnlessDone(own(a, sharedBills, &a.Bills), p.BillID, b, all)
	if p.FromBalance {
		a.Consumed = a.Consumed.Add(p.Amount.Decimal)
	}
	return changed, nil
}

func (d *decider) issueCreditNote(a *Account, p *events.CreditNoteData) (effect, error) {
	if p.Amount == nil {
		return unchanged, refuse("credit note %s issued without an amount: nothing to hold back", p.CreditNoteID)
	}
	if existing, ok := a.CreditNotes[p.CreditNoteID]; ok {
		return unchanged, repeat("credit note "+p.CreditNoteID+" already issued for", existing.Amount, p.Amount.Decimal)
	}
	own(a, sharedCreditNotes, &a.CreditNotes)[p.CreditNoteID] = CreditNote{Amount: p.Amount.Decimal}
	return changed, nil
}

// resolveCreditNote releases a credit note, all of it unless an amount is given.
func (d *decider) resolveCreditNote(a *Account, p *events.CreditNoteData) (effect, error) {
	n, ok := a.CreditNotes[p.CreditNoteID]
	if !ok {
		return unchanged, wait("credit note %s is not issued yet (or is already resolved)", p.CreditNoteID)
	}
	amount := n.Amount.Sub(n.Resolved)
	if p.Amount != nil {
		amount = p.Amount.Decimal
	}
	resolved, all, err := drawDown(amount, n.Amount, n.Resolved, func(open decimal.Decimal) error {
		return refuse("resolving %s of credit note %s exceeds its unresolved %s", amount, p.CreditNoteID, open)
	})
	if err != nil {
		return unchanged, err
	}
	n.Resolved = resolved
	keepUnlessDone(own(a, sharedCreditNotes, &a.CreditNotes), p.CreditNoteID, n, all)
	return changed, nil
}

func (d *decider) issueInvoice(a *Account, p *events.InvoiceData) (effect, error) {
	if existing, ok := a.Invoices[p.InvoiceID]; ok {
		if existing.TopupID == p.TopupID {
			return unchanged, nil
		}
		return unchanged, refuse("invoice %s already issued for top-up %q, not %q", p.InvoiceID, existing.TopupID, p.TopupID)
	}
	own(a, sharedInvoices, &a.Invoices)[p.InvoiceID] = Invoice{TopupID: p.TopupID}
	return changed, nil
}

func (d *decider) reverseInvoice(a *Account, p *events.InvoiceData) (effect, error) {
	inv, ok := a.Invoices[p.InvoiceID]
	if !ok {
		return unchanged, wait("invoice %s is not issued yet", p.InvoiceID)
	}
	if inv.Reversed {
		return unchanged, nil
	}
	inv.Reversed = true
	own(a, sharedInvoices, &a.Invoices)[p.InvoiceID] = inv
	return changed, d.invoiceReversed(a, p.InvoiceID)
}

// repeat decides a second announcement of something the account already holds: with
// the same amount it is a repeat and changes nothing; with another it is refused,
// since one of the two must be wrong.
func repeat(what string, held, announced decimal.Decimal) error {
	if held.Equal(announced) {
		return nil
	}
	return refuse("%s %s, not %s", what, held, announced)
}

// drawDown takes amount off what is still open of an entry (total less what was drawn
// before), refused by tooMuch when it is more than that. It returns what is drawn now
// and whether nothing is left open.
func drawDown(amount, total, drawn decimal.Decimal, tooMuch func(open decimal.Decimal) error) (decimal.Decimal, bool, error) {
	open := total.Sub(drawn)
	if amount.GreaterThan(open) {
		return drawn, false, tooMuch(open)
	}
	drawn = drawn.Add(amount)
	return drawn, drawn.Equal(total), nil
}

// keepUnlessDone stores an entry back, or drops it once it is fully drawn: it holds
// nothing back any more, and its fact record stops it coming back.
func keepUnlessDone[V any](m map[string]V, id string, v V, done bool) {
	if done {
		delete(m, id)
		return
	}
	m[id] = v
}
