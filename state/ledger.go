package state

import (
	"time"

	"github.com/shopspring/decimal"
)

// Ledger is an account's money, derived from its facts. Every amount is exact.
type Ledger struct {
	Currency string
	// Cash is what the account holds in money: top-up remainders plus transferred funds
	// plus non-top-up funds. Never negative.
	Cash decimal.Decimal
	// Unfunded is consumption no received money covers yet, because it was recorded
	// before the top-up that pays for it; that top-up absorbs it when it arrives.
	Unfunded     decimal.Decimal
	Withdrawable decimal.Decimal
	TopUps       []TopUpBalance
}

// TopUpBalance is one top-up order as the withdrawal rules see it.
type TopUpBalance struct {
	TopUp
	Consumed  decimal.Decimal
	Remaining decimal.Decimal
	// Withdrawable is the order's remainder, never more than the account's withdrawable.
	Withdrawable       decimal.Decimal
	OriginalRouteUntil time.Time
}

// Ledger derives the account's balances. Consumption is allocated to top-ups first
// recharged, first consumed [000]; because it is recomputed from the total each time,
// the allocation cannot depend on the order events arrived in.
func (a Account) Ledger(r Rules) Ledger {
	l := Ledger{Currency: a.currencyOr(r.DefaultCurrency), TopUps: make([]TopUpBalance, len(a.TopUps))}
	toAllocate := a.Consumed
	for i, t := range a.TopUps {
		used := decimal.Min(toAllocate, t.Amount)
		toAllocate = toAllocate.Sub(used)
		remaining := t.Amount.Sub(used)
		l.TopUps[i] = TopUpBalance{
			TopUp:              t,
			Consumed:           used,
			Remaining:          remaining,
			OriginalRouteUntil: t.ReceivedAt.AddDate(0, 0, r.RouteWindows.Days(t.Channel, t.Banking, t.Bank)),
		}
		l.Cash = l.Cash.Add(remaining)
	}
	l.Unfunded = toAllocate
	l.Withdrawable = l.Cash
	for i := range l.TopUps {
		l.TopUps[i].Withdrawable = decimal.Min(l.TopUps[i].Remaining, l.Withdrawable)
	}
	return l
}

func (a Account) currencyOr(fallback string) string {
	if a.Currency != "" {
		return a.Currency
	}
	return fallback
}
