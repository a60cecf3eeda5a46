package redisstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// The account's stored form: compact JSON with short names. It is this store's format,
// not the domain's: state.Account has no tags. storedAccount is the whole document of
// the earlier layouts (every collection inside it, top-ups naming their payers by
// index), which the store still reads (testdata/account-written-by-v1.json); in the
// layout of fields.go it is the "c" field, with every collection left out.

type storedAccount struct {
	ID              string                      `json:"id"`
	Opened          bool                        `json:"op,omitempty"`
	HolderType      string                      `json:"ht,omitempty"`
	HolderName      string                      `json:"hn,omitempty"`
	Verified        bool                        `json:"vf,omitempty"`
	Currency        string                      `json:"cur,omitempty"`
	Status          string                      `json:"st,omitempty"`
	Consumed        decimal.Decimal             `json:"cn,omitzero"`
	VouchersGranted decimal.Decimal             `json:"vg,omitzero"`
	VouchersUsed    decimal.Decimal             `json:"vu,omitzero"`
	Transfers       map[string]storedTransfer   `json:"tr,omitempty"`
	Cycles          map[string]storedCycle      `json:"cy,omitempty"`
	Bills           map[string]storedBill       `json:"bl,omitempty"`
	CreditNotes     map[string]storedCreditNote `json:"crn,omitempty"`
	Invoices        map[string]storedInvoice    `json:"iv,omitempty"`
	Resources       map[string]storedResource   `json:"rs,omitempty"`
	LastReleaseAt   *time.Time                  `json:"lr,omitempty"`
	ReserveReleased *time.Time                  `json:"rr,omitempty"`
	Cases           map[string]storedCase       `json:"cs,omitempty"`
	PaidOut         map[string]decimal.Decimal  `json:"po,omitempty"`
	Email           string                      `json:"em,omitempty"`
	TermsViolated   bool                        `json:"tv,omitempty"`
	Packages        map[string]storedPackage    `json:"pk,omitempty"`
	Orders          map[string]storedOrder      `json:"od,omitempty"`
	Discontinuation *storedDiscontinuation      `json:"dc,omitempty"`
	PackageRefunds  []time.Time                 `json:"pr,omitempty"`
	Credited        *decimal.Decimal            `json:"cr,omitempty"`
	TopUps          storedTopUps                `json:"tu,omitempty"`
	Payers          []storedPayer               `json:"py,omitempty"`
}

// The nested types have the fields of their state counterparts in the same order, so
// each converts with a plain type conversion.
//
// An amount that is zero is left out (omitzero), here and in storedAccount's sums:
// most are (nothing recalled, nothing paid yet), and a missing key reads back as zero,
// in this version and in those before, which name the same keys. It keeps the
// account's hash within a smaller allocation: about 9 bytes per zero amount.
type (
	storedTransfer struct {
		Received decimal.Decimal `json:"r,omitzero"`
		Recalled decimal.Decimal `json:"c,omitzero"`
	}
	storedCycle struct {
		Accrued decimal.Decimal  `json:"a,omitzero"`
		Settled *decimal.Decimal `json:"s,omitempty"`
	}
	storedBill struct {
		Amount decimal.Decimal `json:"a,omitzero"`
		Paid   decimal.Decimal `json:"p,omitzero"`
	}
	storedCreditNote struct {
		Amount   decimal.Decimal `json:"a,omitzero"`
		Resolved decimal.Decimal `json:"r,omitzero"`
	}
	storedInvoice struct {
		TopupID  string `json:"t,omitempty"`
		Reversed bool   `json:"x,omitempty"`
	}
	storedResource struct {
		PayAsYouGo bool       `json:"g,omitempty"`
		Created    bool       `json:"c,omitempty"`
		ReleasedAt *time.Time `json:"r,omitempty"`
	}
)

type (
	storedPackage struct {
		Price  decimal.Decimal `json:"p,omitzero"`
		Units  int64           `json:"u"`
		Used   int64           `json:"d,omitempty"`
		Closed bool            `json:"x,omitempty"`
	}
	storedOrder struct {
		Amount        decimal.Decimal `json:"a,omitzero"`
		PaymentMethod string          `json:"m,omitempty"`
		PurchasedAt   time.Time       `json:"at"`
		Used          decimal.Decimal `json:"u,omitzero"`
		ThirdParty    bool            `json:"t,omitempty"`
	}
	storedDiscontinuation struct {
		RequestID   string     `json:"id"`
		RequestedAt time.Time  `json:"at"`
		ReleasedAt  *time.Time `json:"rl,omitempty"`
	}
)

type storedPayer struct {
	Type string `json:"t,omitempty"`
	Name string `json:"n,omitempty"`
}

type storedTopUp struct {
	ID              string          `json:"id"`
	Amount          decimal.Decimal `json:"a"`
	Channel         string          `json:"ch"`
	Banking         string          `json:"bk,omitempty"`
	Bank            string          `json:"b,omitempty"`
	Payer           int             `json:"p"`
	StripePaymentID string          `json:"sp,omitempty"`
	ReceivedAt      time.Time       `json:"at"`
}

type storedCase struct {
	Kind        string              `json:"k"`
	Status      string              `json:"s"`
	Amount      decimal.Decimal     `json:"a"`
	TopupID     string              `json:"t,omitempty"`
	Route       string              `json:"r,omitempty"`
	Destination *events.Destination `json:"d,omitempty"`
	OpenedAt    time.Time           `json:"o"`
	ExpectedBy  *time.Time          `json:"e,omitempty"`
	Overdue     bool                `json:"x,omitempty"`
	PayoutID    string              `json:"p,omitempty"`
	Subject     string              `json:"sb,omitempty"`
	ToBalance   bool                `json:"tb,omitempty"`
	Method      string              `json:"m,omitempty"`
	Appealed    bool                `json:"ap,omitempty"`
	InvoiceID   string              `json:"iv,omitempty"`
	History     []storedCaseEntry   `json:"h,omitempty"`
}

type storedCaseEntry struct {
	Status string      `json:"s"`
	At     time.Time   `json:"at"`
	By     state.Actor `json:"by"`
	Code   string      `json:"c,omitempty"`
	Reason string      `json:"r,omitempty"`
}

// storedTopUpsPart is the "t" field of the earlier layout: top-ups and their payers.
type storedTopUpsPart struct {
	TopUps storedTopUps  `json:"tu,omitempty"`
	Payers []storedPayer `json:"py,omitempty"`
}

// decodeAccountJSON reads an account document: the "c" field, or the "s" field of an
// earlier layout with the "t" field when there is one (nil for a document written before
// top-ups had their own field).
func decodeAccountJSON(core, topUps []byte) (state.Account, error) {
	var s storedAccount
	if err := json.Unmarshal(core, &s); err != nil {
		return state.Account{}, err
	}
	if topUps != nil {
		var part storedTopUpsPart
		if err := json.Unmarshal(topUps, &part); err != nil {
			return state.Account{}, fmt.Errorf("top-ups: %w", err)
		}
		s.TopUps, s.Payers = part.TopUps, part.Payers
	}
	a := state.Account{
		ID: s.ID, Opened: s.Opened, HolderType: s.HolderType, HolderName: s.HolderName, Verified: s.Verified,
		Currency: s.Currency, Status: s.Status,
		Consumed: s.Consumed, VouchersGranted: s.VouchersGranted, VouchersUsed: s.VouchersUsed,
		Transfers:          convertMap(s.Transfers, func(v storedTransfer) state.Transfer { return state.Transfer(v) }),
		Cycles:             convertMap(s.Cycles, func(v storedCycle) state.Cycle { return state.Cycle(v) }),
		Bills:              convertMap(s.Bills, func(v storedBill) state.Bill { return state.Bill(v) }),
		CreditNotes:        convertMap(s.CreditNotes, func(v storedCreditNote) state.CreditNote { return state.CreditNote(v) }),
		Invoices:           convertMap(s.Invoices, func(v storedInvoice) state.Invoice { return state.Invoice(v) }),
		Resources:          convertMap(s.Resources, func(v storedResource) state.Resource { return state.Resource(v) }),
		LastReleaseAt:      s.LastReleaseAt,
		ReserveReleasedFor: s.ReserveReleased,
		PaidOut:            s.PaidOut,
		Email:              s.Email,
		TermsViolated:      s.TermsViolated,
		Packages:           convertMap(s.Packages, func(v storedPackage) state.Package { return state.Package(v) }),
		Orders:             convertMap(s.Orders, func(v storedOrder) state.Order { return state.Order(v) }),
		PackageRefunds:     s.PackageRefunds,
	}
	if s.Discontinuation != nil {
		disc := state.Discontinuation(*s.Discontinuation)
		a.Discontinuation = &disc
	}
	if s.Credited != nil {
		a.Credited = *s.Credited
	}
	if len(s.Cases) > 0 {
		a.Cases = make(map[string]state.Case, len(s.Cases))
		for id, c := range s.Cases {
			a.Cases[id] = loadCase(id, c)
		}
	}
	for _, t := range s.TopUps {
		var p storedPayer
		if t.Payer >= 0 && t.Payer < len(s.Payers) {
			p = s.Payers[t.Payer]
		}
		a.TopUps = append(a.TopUps, state.TopUp{
			ID: t.ID, Amount: t.Amount, Channel: t.Channel, Banking: t.Banking, Bank: t.Bank,
			PayerType: p.Type, PayerName: p.Name, StripePaymentID: t.StripePaymentID, ReceivedAt: t.ReceivedAt,
		})
	}
	return a, nil
}

func storeCase(c state.Case) storedCase {
	s := storedCase{
		Kind: c.Kind, Status: c.Status, Amount: c.Amount, TopupID: c.TopupID, Route: c.Route,
		Destination: c.Destination, OpenedAt: c.OpenedAt, ExpectedBy: c.ExpectedBy, Overdue: c.OverdueReported, PayoutID: c.PayoutID,
		Subject: c.Subject, ToBalance: c.ToBalance, Method: c.PaymentMethod, Appealed: c.Appealed, InvoiceID: c.InvoiceID,
	}
	for _, h := range c.History {
		s.History = append(s.History, storedCaseEntry(h))
	}
	return s
}

func loadCase(id string, s storedCase) state.Case {
	c := state.Case{
		ID: id, Kind: s.Kind, Status: s.Status, Amount: s.Amount, TopupID: s.TopupID, Route: s.Route,
		Destination: s.Destination, OpenedAt: s.OpenedAt, ExpectedBy: s.ExpectedBy, OverdueReported: s.Overdue, PayoutID: s.PayoutID,
		Subject: s.Subject, ToBalance: s.ToBalance, PaymentMethod: s.Method, Appealed: s.Appealed, InvoiceID: s.InvoiceID,
	}
	for _, h := range s.History {
		c.History = append(c.History, state.CaseEntry(h))
	}
	return c
}

// convertMap converts every value of m; nil stays nil, so omitempty keeps omitting.
func convertMap[K comparable, V, W any](m map[K]V, convert func(V) W) map[K]W {
	if m == nil {
		return nil
	}
	out := make(map[K]W, len(m))
	for k, v := range m {
		out[k] = convert(v)
	}
	return out
}

// storedTopUps are the top-ups of the earlier layouts, each naming its payer by index.
type storedTopUps []storedTopUp
