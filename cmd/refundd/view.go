package main

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// The read model: what GET /v1/accounts/{id} and /topups answer, in CONTRACT.md's
// names, with seed 001's help texts. The numbers come from state.Ledger; this file
// only shapes them for people and programs reading the API.

// AccountView is GET /v1/accounts/{id}.
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
	Unfunded        events.Amount         `json:"unfunded_consumption"`
	Reserve         ReserveView           `json:"reserve"`
	NonWithdrawable []NonWithdrawableView `json:"non_withdrawable"`
}

// ReserveView is the pay-as-you-go reserve as the read API shows it.
type ReserveView struct {
	Amount     events.Amount `json:"amount"`
	State      string        `json:"state"` // none, frozen, counting_down
	UnfreezeAt *time.Time    `json:"unfreeze_at,omitempty"`
}

// NonWithdrawableView is one reason part of the cash cannot be withdrawn, with the
// resolution seed 001 gives for it. The parts add up to cash − withdrawable.
type NonWithdrawableView struct {
	Part       string        `json:"part"`
	Amount     events.Amount `json:"amount"`
	Resolution string        `json:"resolution"`
	Until      *time.Time    `json:"until,omitempty"`
}

// resolutions, in the words of seed 001's table.
var resolutions = map[string]string{
	state.PartTransferred: "Funds received from another account can only be used for consumption or to offset outstanding payments. To withdraw them, the sending account must first recall them.",
	state.PartHeld:        "Held by withdrawal and refund cases in progress: released if a case is rejected or fails, deducted when it succeeds.",
	state.PartReserve:     "Reserved for pay-as-you-go services. Release all pay-as-you-go resources no longer in use; the reserve unfreezes %s after the last release, and each release resets the countdown.",
	state.PartOverdue:     "Issued but unpaid bills. Pay all outstanding amounts in Billing Management > Overview.",
	state.PartUnsettled:   "Consumption not yet billed in the current cycle. It cannot be withdrawn until the cycle ends and its bill is settled.",
	state.PartCreditNotes: "Invoiced amount above actual consumption after a cancel or downgrade. In Invoice Management > Credit Note Processing, use it for new consumption or return the original invoice to have it reissued.",
}

// accountView is the account as the read API shows it.
func accountView(a state.Account, r state.Rules) AccountView {
	l := a.Ledger(r)
	return AccountView{
		AccountID:       a.ID,
		Currency:        l.Currency,
		Status:          a.Status,
		Cash:            amount(l.Cash),
		Transferred:     amount(l.Transferred),
		Vouchers:        amount(l.Vouchers),
		CreditNotes:     amount(l.CreditNotes),
		Overdue:         amount(l.Overdue),
		Unsettled:       amount(l.Unsettled),
		Held:            amount(l.Held),
		Withdrawable:    amount(l.Withdrawable),
		Unfunded:        amount(l.Unfunded),
		Reserve:         ReserveView{Amount: amount(l.Reserve), State: l.ReserveState, UnfreezeAt: l.ReserveUnfreeze},
		NonWithdrawable: nonWithdrawableViews(l),
	}
}

// nonWithdrawableViews answers seed 001's "why is my withdrawable balance low?".
func nonWithdrawableViews(l state.Ledger) []NonWithdrawableView {
	parts := l.NonWithdrawable()
	views := make([]NonWithdrawableView, 0, len(parts))
	for _, p := range parts {
		resolution := resolutions[p.Part]
		if p.Part == state.PartReserve {
			resolution = fmt.Sprintf(resolution, holdInWords(l.ReserveHold))
		}
		views = append(views, NonWithdrawableView{Part: p.Part, Amount: amount(p.Amount), Resolution: resolution, Until: p.Until})
	}
	return views
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

// topUpViews lists the account's top-up orders, first recharged first.
func topUpViews(a state.Account, r state.Rules) []TopUpView {
	l := a.Ledger(r)
	views := make([]TopUpView, 0, len(l.TopUps))
	for _, t := range l.TopUps {
		until := t.OriginalRouteUntil
		views = append(views, TopUpView{
			TopupID:            t.ID,
			Amount:             amount(t.Amount),
			Remaining:          amount(t.Remaining),
			Held:               amount(t.Held),
			Withdrawable:       amount(t.Withdrawable),
			Channel:            t.Channel,
			OriginalRouteUntil: &until,
		})
	}
	return views
}

func amount(d decimal.Decimal) events.Amount { return events.Amount{Decimal: d} }

// holdInWords says the reserve hold the way seed 001 does ("24 hours") when it is whole
// hours, and as a Go duration otherwise.
func holdInWords(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "1 hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}
