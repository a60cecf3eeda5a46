package state

import (
	"fmt"
	"time"

	"github.com/payinfra/refunds/events"
)

// Source is the CloudEvents source of everything this service publishes.
const Source = "/refunds"

// Apply decides what event ev does to account a. It never mutates a. now is when the
// decision is made; rules that count time use the event's own time instead.
func Apply(a Account, ev events.Event, r Rules, now time.Time) (Decision, error) {
	if ev.Subject != a.ID {
		return Decision{}, fmt.Errorf("event %s is for account %s, not %s", ev.ID, ev.Subject, a.ID)
	}
	next := a.clone()
	d := decider{ev: ev, rules: r, now: now, before: a}
	var err error
	switch p := ev.Payload.(type) {
	case *events.AccountOpenedData:
		err = d.openAccount(&next, p)
	case *events.AccountStatusChangedData:
		err = d.changeStatus(&next, p)
	case *events.TopupReceivedData:
		err = d.receiveTopUp(&next, p)
	case *events.ConsumptionRecordedData:
		err = d.recordConsumption(&next, p)
	default:
		err = refuse("%s is not handled by this version of the engine", ev.Type)
	}
	if err != nil {
		return Decision{}, err
	}
	return Decision{Account: next, Changed: d.changed, Outbound: d.outbound}, nil
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

func (d *decider) publish(t events.Type, p events.Payload) error {
	ev, err := events.New(t, d.ev.Subject, Source, OutboundID(d.ev.ID, len(d.outbound)), d.now, p)
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

// publishBalance tells notifiers the account's cash or withdrawable balance changed.
func (d *decider) publishBalance(a *Account) error {
	before, after := d.before.Ledger(d.rules), a.Ledger(d.rules)
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

// requireOpened makes money events wait for billing.account.opened, because until then
// the account's currency, holder and verification are unknown.
func (d *decider) requireOpened(a *Account) error {
	if !a.Opened {
		return wait("account %s is not opened yet", a.ID)
	}
	return nil
}

func (d *decider) requireCurrency(a *Account, currency string) error {
	if currency != a.Currency {
		return refuse("currency %s differs from the account's %s", currency, a.Currency)
	}
	return nil
}

func (d *decider) openAccount(a *Account, p *events.AccountOpenedData) error {
	if a.Opened {
		// A second opened event for the same account is a correction of nothing we can
		// trust: keep the first, and say so rather than silently overwriting.
		return refuse("account %s is already opened", a.ID)
	}
	a.Opened = true
	a.HolderType, a.HolderName, a.Verified = p.HolderType, p.HolderName, p.Verified
	a.Currency = p.Currency
	if a.Currency == "" {
		a.Currency = d.rules.DefaultCurrency
	}
	d.changed = true
	return nil
}

func (d *decider) changeStatus(a *Account, p *events.AccountStatusChangedData) error {
	if err := d.requireOpened(a); err != nil {
		return err
	}
	if a.Status == p.Status {
		return nil
	}
	a.Status = p.Status
	d.changed = true
	return nil
}

func (d *decider) receiveTopUp(a *Account, p *events.TopupReceivedData) error {
	if err := d.requireOpened(a); err != nil {
		return err
	}
	if err := d.requireCurrency(a, p.Currency); err != nil {
		return err
	}
	if existing, ok := a.topUp(p.TopupID); ok {
		if existing.Amount.Equal(p.Amount.Decimal) {
			return nil // the same top-up announced twice under two event ids
		}
		return refuse("top-up %s already received with amount %s, not %s", p.TopupID, existing.Amount, p.Amount.Decimal)
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
	return d.publishBalance(a)
}

func (d *decider) recordConsumption(a *Account, p *events.ConsumptionRecordedData) error {
	if err := d.requireOpened(a); err != nil {
		return err
	}
	a.Consumed = a.Consumed.Add(p.Amount.Decimal)
	d.changed = true
	return d.publishBalance(a)
}
