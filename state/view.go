package state

import (
	"time"

	"github.com/payinfra/refunds/events"
)

// AccountView is GET /v1/accounts/{id}, as CONTRACT.md names it.
type AccountView struct {
	AccountID    string        `json:"account_id"`
	Currency     string        `json:"currency"`
	Status       string        `json:"status"`
	Cash         events.Amount `json:"cash"`
	Transferred  events.Amount `json:"transferred"`
	Vouchers     events.Amount `json:"vouchers"`
	CreditNotes  events.Amount `json:"credit_notes"`
	Overdue      events.Amount `json:"overdue"`
	Unsettled    events.Amount `json:"unsettled"`
	Held         events.Amount `json:"held"`
	Withdrawable events.Amount `json:"withdrawable"`
	// Unfunded is consumption recorded before the top-up that pays for it (ours, not
	// in the contract): it is why cash can be zero after a top-up that seems to cover it.
	Unfunded        events.Amount     `json:"unfunded_consumption"`
	Reserve         ReserveView       `json:"reserve"`
	NonWithdrawable []NonWithdrawable `json:"non_withdrawable"`
}

// ReserveView is the pay-as-you-go reserve as the read API shows it.
type ReserveView struct {
	Amount     events.Amount `json:"amount"`
	State      string        `json:"state"` // none, frozen, counting_down
	UnfreezeAt *time.Time    `json:"unfreeze_at,omitempty"`
}

// NonWithdrawable is one reason part of the cash cannot be withdrawn, with the
// resolution seed 001 gives for it. The parts add up to cash − withdrawable.
type NonWithdrawable struct {
	Part       string        `json:"part"`
	Amount     events.Amount `json:"amount"`
	Resolution string        `json:"resolution"`
	Until      *time.Time    `json:"until,omitempty"`
}

// TopUpView is one entry of GET /v1/accounts/{id}/topups.
type TopUpView struct {
	TopupID            string        `json:"topup_id"`
	Amount             events.Amount `json:"amount"`
	Remaining          events.Amount `json:"remaining"`
	Held               events.Amount `json:"held"`
	Withdrawable       events.Amount `json:"withdrawable"`
	Channel            string        `json:"channel"`
	OriginalRouteUntil *time.Time    `json:"original_route_until,omitempty"`
}

// View is the account as the read API shows it.
func (a Account) View(r Rules) AccountView {
	l := a.Ledger(r)
	v := AccountView{
		AccountID:       a.ID,
		Currency:        l.Currency,
		Status:          a.Status,
		Cash:            events.Amount{Decimal: l.Cash},
		Withdrawable:    events.Amount{Decimal: l.Withdrawable},
		Unfunded:        events.Amount{Decimal: l.Unfunded},
		Reserve:         ReserveView{State: "none"},
		NonWithdrawable: []NonWithdrawable{},
	}
	return v
}

// TopUpViews lists the account's top-up orders, first recharged first.
func (a Account) TopUpViews(r Rules) []TopUpView {
	l := a.Ledger(r)
	views := make([]TopUpView, 0, len(l.TopUps))
	for _, t := range l.TopUps {
		until := t.OriginalRouteUntil
		views = append(views, TopUpView{
			TopupID:            t.ID,
			Amount:             events.Amount{Decimal: t.Amount},
			Remaining:          events.Amount{Decimal: t.Remaining},
			Withdrawable:       events.Amount{Decimal: t.Withdrawable},
			Channel:            t.Channel,
			OriginalRouteUntil: &until,
		})
	}
	return views
}
