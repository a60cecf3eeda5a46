package main

import (
	"cmp"
	"slices"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// CaseView is GET /v1/cases/{id}, and one entry of GET /v1/accounts/{id}/cases. The
// destination's account number and payee are masked: the full number goes to the
// payout gateway only.
type CaseView struct {
	CaseID      string             `json:"case_id"`
	Kind        string             `json:"kind"`
	AccountID   string             `json:"account_id"`
	Status      string             `json:"status"`
	Amount      events.Amount      `json:"amount"`
	TopupID     string             `json:"topup_id,omitempty"`
	Route       string             `json:"route,omitempty"`
	Destination *DestinationView   `json:"destination,omitempty"`
	OpenedAt    time.Time          `json:"opened_at"`
	ExpectedBy  *time.Time         `json:"expected_by,omitempty"`
	Overdue     bool               `json:"overdue,omitempty"`
	PayoutID    string             `json:"payout_id,omitempty"`
	History     []CaseHistoryEntry `json:"history"`
}

// DestinationView is a receiving account with its number and payee masked.
type DestinationView struct {
	Kind         string `json:"kind"`
	AccountNo    string `json:"account_no"`
	PayeeName    string `json:"payee_name"`
	Bank         string `json:"bank,omitempty"`
	Branch       string `json:"branch,omitempty"`
	ProvinceCity string `json:"province_city,omitempty"`
}

// CaseHistoryEntry is one status change of a case, or a note on it.
type CaseHistoryEntry struct {
	Status     string    `json:"status"`
	At         time.Time `json:"at"`
	By         string    `json:"by"`
	ReasonCode string    `json:"reason_code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// CasesPage is GET /v1/accounts/{id}/cases: the account's cases, newest first.
type CasesPage struct {
	Cases []CaseView `json:"cases"`
	// NextOffset is where the next page starts; absent on the last page.
	NextOffset *int `json:"next_offset,omitempty"`
}

func caseView(accountID string, c state.Case) CaseView {
	v := CaseView{
		CaseID: c.ID, Kind: c.Kind, AccountID: accountID, Status: c.Status, Amount: amount(c.Amount),
		TopupID: c.TopupID, Route: c.Route, OpenedAt: c.OpenedAt, ExpectedBy: c.ExpectedBy,
		Overdue: c.OverdueReported, PayoutID: c.PayoutID, History: make([]CaseHistoryEntry, 0, len(c.History)),
	}
	if d := c.Destination; d != nil {
		v.Destination = &DestinationView{
			Kind: d.Kind, AccountNo: events.MaskAccountNo(d.AccountNo), PayeeName: events.MaskName(d.PayeeName),
			Bank: d.Bank, Branch: d.Branch, ProvinceCity: d.ProvinceCity,
		}
	}
	for _, h := range c.History {
		v.History = append(v.History, CaseHistoryEntry{Status: h.Status, At: h.At, By: string(h.By), ReasonCode: h.Code, Reason: h.Reason})
	}
	return v
}

// casesPage lists an account's cases, open and ended, newest first (by opening time,
// then id), from offset, at most limit.
func casesPage(accountID string, open map[string]state.Case, ended []state.Case, offset, limit int) CasesPage {
	all := make([]state.Case, 0, len(open)+len(ended))
	for _, c := range ended {
		// An appealed case is open again while its ended copy is kept: show it once.
		if _, reopened := open[c.ID]; !reopened {
			all = append(all, c)
		}
	}
	for _, c := range open {
		all = append(all, c)
	}
	slices.SortFunc(all, func(x, y state.Case) int {
		return cmp.Or(y.OpenedAt.Compare(x.OpenedAt), cmp.Compare(y.ID, x.ID))
	})
	page := CasesPage{Cases: []CaseView{}}
	for i := offset; i < len(all) && i < offset+limit; i++ {
		page.Cases = append(page.Cases, caseView(accountID, all[i]))
	}
	if next := offset + limit; next < len(all) {
		page.NextOffset = &next
	}
	return page
}
