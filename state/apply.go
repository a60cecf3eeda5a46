package state

import (
	"fmt"
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
	next := a.clone()
	d := decider{ev: ev, rules: r, now: now, before: a}
	if err := d.decide(&next); err != nil {
		return Decision{}, err
	}
	return d.finish(next)
}

// finish publishes what the decision changed for notifiers (the reserve freezing, the
// balance) and notes the countdown's deadline.
func (d *decider) finish(next Account) (Decision, error) {
	if d.changed {
		if err := d.publishReserveFrozen(&next); err != nil {
			return Decision{}, err
		}
		if err := d.publishBalanceChange(&next); err != nil {
			return Decision{}, err
		}
	}
	before, after := d.before.ReserveDeadline(d.rules), next.ReserveDeadline(d.rules)
	return Decision{
		Account:         next,
		Changed:         d.changed,
		Outbound:        d.outbound,
		DeadlineChanged: !sameTime(before, after),
		ReserveDeadline: after,
	}, nil
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// decider carries what one decision needs and collects what it publishes.
type decider struct {
	ev       events.Event
	rules    Rules
	now      time.Time
	before   Account
	changed  bool
	outbound []Outbound
}

func (d *decider) decide(a *Account) error {
	if ahead := d.ev.Time.Sub(d.now); ahead > d.rules.ClockSkew {
		return wait("event time %s is %s ahead of now", d.ev.Time.UTC().Format(time.RFC3339), ahead.Round(time.Second))
	}
	if _, opening := d.ev.Payload.(*events.AccountOpenedData); !opening && !a.Opened {
		// Until billing.account.opened arrives the account's currency, holder and
		// verification are unknown, so nothing can be checked: wait for it.
		return wait("account %s is not opened yet", a.ID)
	}
	switch p := d.ev.Payload.(type) {
	case *events.AccountOpenedData:
		return d.openAccount(a, p)
	case *events.AccountStatusChangedData:
		return d.changeStatus(a, p)
	case *events.TopupReceivedData:
		return d.receiveTopUp(a, p)
	case *events.ConsumptionRecordedData:
		return d.recordConsumption(a, p)
	case *events.VoucherGrantedData:
		return d.grantVoucher(a, p)
	case *events.TransferReceivedData:
		return d.receiveTransfer(a, p)
	case *events.TransferRecalledData:
		return d.recallTransfer(a, p)
	case *events.UsageAccruedData:
		return d.accrueUsage(a, p)
	case *events.CycleSettledData:
		return d.settleCycle(a, p)
	case *events.BillIssuedData:
		return d.issueBill(a, p)
	case *events.BillPaidData:
		return d.payBill(a, p)
	case *events.CreditNoteIssuedData:
		return d.issueCreditNote(a, p)
	case *events.CreditNoteResolvedData:
		return d.resolveCreditNote(a, p)
	case *events.InvoiceIssuedData:
		return d.issueInvoice(a, p)
	case *events.InvoiceReversedData:
		return d.reverseInvoice(a, p)
	case *events.ResourceCreatedData:
		return d.createResource(a, p)
	case *events.ResourceReleasedData:
		return d.releaseResource(a, p)
	default:
		return refuse("%s is not handled by this version of the engine", d.ev.Type)
	}
}

func (d *decider) publish(t events.Type, p events.Payload) error {
	ev, err := events.New(t, d.ev.Subject, Source, OutboundID(d.ev.Subject, d.ev.ID, len(d.outbound)), d.now, p)
	if err != nil {
		return fmt.Errorf("build %s: %w", t, err)
	}
	body, err := ev.Encode()
	if err != nil {
		return fmt.Errorf("encode %s: %w", t, err)
	}
	d.outbound = append(d.outbound, Outbound{ID: ev.ID, Subject: ev.NATSSubject(), Body: body})
	return nil
}

// publishBalanceChange tells notifiers when the account's cash or withdrawable
// balance moved.
func (d *decider) publishBalanceChange(a *Account) error {
	before, after := d.before.balances(d.rules), a.balances(d.rules)
	a.knownBalances = &knownBalances{ledger: after, under: balanceRulesOf(d.rules)}
	if before.Cash.Equal(after.Cash) && before.Withdrawable.Equal(after.Withdrawable) {
		return nil
	}
	return d.publish(events.BalanceChanged, &events.BalanceChangedData{
		CauseID:      d.ev.ID,
		CauseType:    d.ev.Type,
		Currency:     after.Currency,
		Cash:         events.Amount{Decimal: after.Cash},
		Withdrawable: events.Amount{Decimal: after.Withdrawable},
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

func (d *decider) openAccount(a *Account, p *events.AccountOpenedData) error {
	if a.Opened {
		// A second opened event can only be a mistake upstream; keep the first rather
		// than silently change the holder or currency of an account holding money.
		return refuse("account %s is already opened", a.ID)
	}
	a.Opened = true
	a.HolderType, a.HolderName, a.Verified = p.HolderType, p.HolderName, p.Verified
	a.Currency = p.AccountCurrency()
	d.changed = true
	return nil
}

func (d *decider) changeStatus(a *Account, p *events.AccountStatusChangedData) error {
	if a.Status == p.Status {
		return nil
	}
	a.Status = p.Status
	d.changed = true
	return nil
}

func (d *decider) receiveTopUp(a *Account, p *events.TopupReceivedData) error {
	if err := d.requireCurrency(a, p.Currency); err != nil {
		return err
	}
	if existing, ok := a.topUp(p.TopupID); ok {
		return repeat("top-up "+p.TopupID+" already received with amount", existing.Amount, p.Amount.Decimal)
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
	d.changed = true
	return nil
}

// recordConsumption adds the cash part to what Ledger allocates, transferred funds
// first, then top-ups first recharged; the voucher part draws on vouchers only.
// Consumption beyond the money received is kept as unfunded, not refused: the top-up
// that pays for it may simply not have arrived yet.
func (d *decider) recordConsumption(a *Account, p *events.ConsumptionRecordedData) error {
	a.Consumed = a.Consumed.Add(p.Amount.Decimal)
	if p.VoucherAmount != nil {
		a.VouchersUsed = a.VouchersUsed.Add(p.VoucherAmount.Decimal)
	}
	d.changed = true
	return nil
}

func (d *decider) grantVoucher(a *Account, p *events.VoucherGrantedData) error {
	if err := d.requireCurrency(a, p.Currency); err != nil {
		return err
	}
	a.VouchersGranted = a.VouchersGranted.Add(p.Amount.Decimal)
	d.changed = true
	return nil
}

func (d *decider) receiveTransfer(a *Account, p *events.TransferReceivedData) error {
	if err := d.requireCurrency(a, p.Currency); err != nil {
		return err
	}
	if existing, ok := a.Transfers[p.TransferID]; ok {
		return repeat("transfer "+p.TransferID+" already received with amount", existing.Received, p.Amount.Decimal)
	}
	put(&a.Transfers, p.TransferID, Transfer{Received: p.Amount.Decimal})
	d.changed = true
	return nil
}

func (d *decider) recallTransfer(a *Account, p *events.TransferRecalledData) error {
	t, ok := a.Transfers[p.TransferID]
	if !ok {
		return wait("transfer %s is not received yet", p.TransferID)
	}
	recalled, all, err := drawDown(p.Amount.Decimal, t.Received, t.Recalled, func(open decimal.Decimal) error {
		return refuse("recall of %s from transfer %s exceeds the %s not yet recalled", p.Amount.Decimal, p.TransferID, open)
	})
	if err != nil {
		return err
	}
	t.Recalled = recalled
	keepUnlessDone(a.Transfers, p.TransferID, t, all)
	d.changed = true
	return nil
}

func (d *decider) accrueUsage(a *Account, p *events.UsageAccruedData) error {
	c := a.Cycles[p.Cycle]
	if c.Settled != nil {
		// The cycle's settlement already moved its consumption; usage reported late
		// for it is in that settled amount.
		return nil
	}
	c.Accrued = c.Accrued.Add(p.Amount.Decimal)
	put(&a.Cycles, p.Cycle, c)
	d.changed = true
	return nil
}

func (d *decider) settleCycle(a *Account, p *events.CycleSettledData) error {
	c := a.Cycles[p.Cycle]
	if c.Settled != nil {
		return repeat("cycle "+p.Cycle+" already settled at", *c.Settled, p.Amount.Decimal)
	}
	settled := p.Amount.Decimal
	// Only the fact that the cycle settled is kept: its accrued usage no longer
	// holds anything back, so a late accrual cannot either.
	put(&a.Cycles, p.Cycle, Cycle{Settled: &settled})
	a.Consumed = a.Consumed.Add(settled)
	d.changed = true
	return nil
}

func (d *decider) issueBill(a *Account, p *events.BillIssuedData) error {
	if existing, ok := a.Bills[p.BillID]; ok {
		return repeat("bill "+p.BillID+" already issued for", existing.Amount, p.Amount.Decimal)
	}
	put(&a.Bills, p.BillID, Bill{Amount: p.Amount.Decimal})
	d.changed = true
	return nil
}

// payBill reduces what is overdue. Paid from the balance, it is also consumption.
func (d *decider) payBill(a *Account, p *events.BillPaidData) error {
	b, ok := a.Bills[p.BillID]
	if !ok {
		return wait("bill %s is not issued yet (or is already paid in full)", p.BillID)
	}
	paid, all, err := drawDown(p.Amount.Decimal, b.Amount, b.Paid, func(unpaid decimal.Decimal) error {
		return refuse("payment of %s on bill %s exceeds its unpaid %s", p.Amount.Decimal, p.BillID, unpaid)
	})
	if err != nil {
		return err
	}
	b.Paid = paid
	keepUnlessDone(a.Bills, p.BillID, b, all)
	if p.FromBalance {
		a.Consumed = a.Consumed.Add(p.Amount.Decimal)
	}
	d.changed = true
	return nil
}

func (d *decider) issueCreditNote(a *Account, p *events.CreditNoteIssuedData) error {
	if p.Amount == nil {
		return refuse("credit note %s issued without an amount: nothing to hold back", p.CreditNoteID)
	}
	if existing, ok := a.CreditNotes[p.CreditNoteID]; ok {
		return repeat("credit note "+p.CreditNoteID+" already issued for", existing.Amount, p.Amount.Decimal)
	}
	put(&a.CreditNotes, p.CreditNoteID, CreditNote{Amount: p.Amount.Decimal})
	d.changed = true
	return nil
}

// resolveCreditNote releases a credit note, all of it unless an amount is given.
func (d *decider) resolveCreditNote(a *Account, p *events.CreditNoteResolvedData) error {
	n, ok := a.CreditNotes[p.CreditNoteID]
	if !ok {
		return wait("credit note %s is not issued yet (or is already resolved)", p.CreditNoteID)
	}
	amount := n.Amount.Sub(n.Resolved)
	if p.Amount != nil {
		amount = p.Amount.Decimal
	}
	resolved, all, err := drawDown(amount, n.Amount, n.Resolved, func(open decimal.Decimal) error {
		return refuse("resolving %s of credit note %s exceeds its unresolved %s", amount, p.CreditNoteID, open)
	})
	if err != nil {
		return err
	}
	n.Resolved = resolved
	keepUnlessDone(a.CreditNotes, p.CreditNoteID, n, all)
	d.changed = true
	return nil
}

func (d *decider) issueInvoice(a *Account, p *events.InvoiceIssuedData) error {
	if existing, ok := a.Invoices[p.InvoiceID]; ok {
		if existing.TopupID == p.TopupID {
			return nil
		}
		return refuse("invoice %s already issued for top-up %q, not %q", p.InvoiceID, existing.TopupID, p.TopupID)
	}
	put(&a.Invoices, p.InvoiceID, Invoice{TopupID: p.TopupID})
	d.changed = true
	return nil
}

func (d *decider) reverseInvoice(a *Account, p *events.InvoiceReversedData) error {
	inv, ok := a.Invoices[p.InvoiceID]
	if !ok {
		return wait("invoice %s is not issued yet", p.InvoiceID)
	}
	if inv.Reversed {
		return nil
	}
	inv.Reversed = true
	a.Invoices[p.InvoiceID] = inv
	d.changed = true
	return nil
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
