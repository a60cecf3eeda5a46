package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// The account's stored form: compact JSON with short names, payers listed once and
// referred to by index (an account's recharges mostly come from one or two payers, and
// their names are the longest strings in the document, so an account with 10 top-ups
// stays within 2 KiB). It is this store's format, not the domain's: state.Account has
// no tags, and a document written by an earlier version of the store reads back the
// same (testdata/account-written-by-v1.json).
//
// The field order is the order encoding/json gave the first version (top-ups and
// payers last), so unchanged documents stay byte-for-byte the same.

type storedAccount struct {
	ID              string                      `json:"id"`
	Opened          bool                        `json:"op,omitempty"`
	HolderType      string                      `json:"ht,omitempty"`
	HolderName      string                      `json:"hn,omitempty"`
	Verified        bool                        `json:"vf,omitempty"`
	Currency        string                      `json:"cur,omitempty"`
	Status          string                      `json:"st,omitempty"`
	Consumed        decimal.Decimal             `json:"cn"`
	VouchersGranted decimal.Decimal             `json:"vg"`
	VouchersUsed    decimal.Decimal             `json:"vu"`
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
type (
	storedTransfer struct {
		Received decimal.Decimal `json:"r"`
		Recalled decimal.Decimal `json:"c"`
	}
	storedCycle struct {
		Accrued decimal.Decimal  `json:"a"`
		Settled *decimal.Decimal `json:"s,omitempty"`
	}
	storedBill struct {
		Amount decimal.Decimal `json:"a"`
		Paid   decimal.Decimal `json:"p"`
	}
	storedCreditNote struct {
		Amount   decimal.Decimal `json:"a"`
		Resolved decimal.Decimal `json:"r"`
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
		Price  decimal.Decimal `json:"p"`
		Units  int64           `json:"u"`
		Used   int64           `json:"d,omitempty"`
		Closed bool            `json:"x,omitempty"`
	}
	storedOrder struct {
		Amount        decimal.Decimal `json:"a"`
		PaymentMethod string          `json:"m,omitempty"`
		PurchasedAt   time.Time       `json:"at"`
		Used          decimal.Decimal `json:"u"`
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

// An account is stored in two fields of its hash: "s", everything but its top-ups, and
// "t", its top-ups and payers. Most events change the first and not the second, and the
// top-ups are most of the document: a step writes "t" only when they changed, so Redis
// takes in a fraction of the document per event. A document written before the split
// has its top-ups inside "s" and no "t"; it reads the same, and its next step writes
// both fields.

// storedTopUpsPart is the "t" field.
type storedTopUpsPart struct {
	TopUps storedTopUps  `json:"tu,omitempty"`
	Payers []storedPayer `json:"py,omitempty"`
}

// encodeAccount writes an account's stored form: the "s" field, and the "t" field
// unless withTopUps is false (they did not change), then nil.
func encodeAccount(a *state.Account, withTopUps bool) (core, topUps []byte, err error) {
	s := storedAccount{
		ID: a.ID, Opened: a.Opened, HolderType: a.HolderType, HolderName: a.HolderName, Verified: a.Verified,
		Currency: a.Currency, Status: a.Status,
		Consumed: a.Consumed, VouchersGranted: a.VouchersGranted, VouchersUsed: a.VouchersUsed,
		Transfers:       convertMap(a.Transfers, func(v state.Transfer) storedTransfer { return storedTransfer(v) }),
		Cycles:          convertMap(a.Cycles, func(v state.Cycle) storedCycle { return storedCycle(v) }),
		Bills:           convertMap(a.Bills, func(v state.Bill) storedBill { return storedBill(v) }),
		CreditNotes:     convertMap(a.CreditNotes, func(v state.CreditNote) storedCreditNote { return storedCreditNote(v) }),
		Invoices:        convertMap(a.Invoices, func(v state.Invoice) storedInvoice { return storedInvoice(v) }),
		Resources:       convertMap(a.Resources, func(v state.Resource) storedResource { return storedResource(v) }),
		LastReleaseAt:   a.LastReleaseAt,
		ReserveReleased: a.ReserveReleasedFor,
		Cases:           convertMap(a.Cases, storeCase),
		PaidOut:         a.PaidOut,
		Email:           a.Email,
		TermsViolated:   a.TermsViolated,
		Packages:        convertMap(a.Packages, func(v state.Package) storedPackage { return storedPackage(v) }),
		Orders:          convertMap(a.Orders, func(v state.Order) storedOrder { return storedOrder(v) }),
		PackageRefunds:  a.PackageRefunds,
	}
	if a.Discontinuation != nil {
		disc := storedDiscontinuation(*a.Discontinuation)
		s.Discontinuation = &disc
	}
	if !a.Credited.IsZero() {
		credited := a.Credited
		s.Credited = &credited
	}
	if core, err = json.Marshal(s); err != nil || !withTopUps {
		return core, nil, err
	}
	var part storedTopUpsPart
	index := make(map[storedPayer]int)
	for _, t := range a.TopUps {
		p := storedPayer{Type: t.PayerType, Name: t.PayerName}
		i, ok := index[p]
		if !ok {
			i = len(part.Payers)
			index[p] = i
			part.Payers = append(part.Payers, p)
		}
		part.TopUps = append(part.TopUps, storedTopUp{
			ID: t.ID, Amount: t.Amount, Channel: t.Channel, Banking: t.Banking, Bank: t.Bank,
			Payer: i, StripePaymentID: t.StripePaymentID, ReceivedAt: t.ReceivedAt,
		})
	}
	topUps, err = json.Marshal(part)
	return core, topUps, err
}

// decodeAccountJSON reads an account's stored form: the "s" field, and the "t" field
// when there is one (nil for a document written before the split).
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

func decodeCase(id string, b []byte) (state.Case, error) {
	var s storedCase
	if err := json.Unmarshal(b, &s); err != nil {
		return state.Case{}, fmt.Errorf("case %s: decode: %w", id, err)
	}
	return loadCase(id, s), nil
}

// storedTopUps writes itself: top-ups are most of an account's document, and
// encoding/json spends most of its time there on reflection and on re-validating what
// decimal's and time's own encoders return. The bytes are exactly encoding/json's (the
// document written by the first version reads and writes back the same).
type storedTopUps []storedTopUp

func (ts storedTopUps) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 128*len(ts))
	b = append(b, '[')
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, t.ID)
		b = append(b, `,"a":"`...)
		b = append(b, t.Amount.String()...)
		b = append(b, `","ch":`...)
		b = appendJSONString(b, t.Channel)
		if t.Banking != "" {
			b = append(b, `,"bk":`...)
			b = appendJSONString(b, t.Banking)
		}
		if t.Bank != "" {
			b = append(b, `,"b":`...)
			b = appendJSONString(b, t.Bank)
		}
		b = append(b, `,"p":`...)
		b = strconv.AppendInt(b, int64(t.Payer), 10)
		if t.StripePaymentID != "" {
			b = append(b, `,"sp":`...)
			b = appendJSONString(b, t.StripePaymentID)
		}
		at, err := t.ReceivedAt.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, `,"at":`...)
		b = append(b, at...)
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendJSONString appends s as encoding/json writes it: a string of plain printable
// ASCII as it is, anything else (escapes, HTML-sensitive characters, non-ASCII)
// through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s)
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
