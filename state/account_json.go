package state

import (
	"encoding/json"
	"time"

	"github.com/shopspring/decimal"
)

// An account is stored as JSON with its payers listed once: top-ups refer to them by
// index. An account's recharges mostly come from one or two payers, and their names
// are the longest strings in the document, so this keeps an account with 10 top-ups
// within 2 KiB. Only the stored form changes; TopUp keeps its payer fields.

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

// accountFields has Account's fields without its methods, so encoding it does not
// recurse into MarshalJSON.
type accountFields Account

type storedAccount struct {
	accountFields
	// TopUps shadows accountFields.TopUps (the shallower field wins in encoding/json).
	TopUps []storedTopUp `json:"tu,omitempty"`
	Payers []storedPayer `json:"py,omitempty"`
}

// MarshalJSON writes the stored form.
func (a Account) MarshalJSON() ([]byte, error) {
	s := storedAccount{accountFields: accountFields(a)}
	index := make(map[storedPayer]int)
	for _, t := range a.TopUps {
		p := storedPayer{Type: t.PayerType, Name: t.PayerName}
		i, ok := index[p]
		if !ok {
			i = len(s.Payers)
			index[p] = i
			s.Payers = append(s.Payers, p)
		}
		s.TopUps = append(s.TopUps, storedTopUp{
			ID: t.ID, Amount: t.Amount, Channel: t.Channel, Banking: t.Banking, Bank: t.Bank,
			Payer: i, StripePaymentID: t.StripePaymentID, ReceivedAt: t.ReceivedAt,
		})
	}
	return json.Marshal(s)
}

// UnmarshalJSON reads the stored form.
func (a *Account) UnmarshalJSON(b []byte) error {
	var s storedAccount
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*a = Account(s.accountFields)
	a.TopUps = nil
	for _, t := range s.TopUps {
		var p storedPayer
		if t.Payer >= 0 && t.Payer < len(s.Payers) {
			p = s.Payers[t.Payer]
		}
		a.TopUps = append(a.TopUps, TopUp{
			ID: t.ID, Amount: t.Amount, Channel: t.Channel, Banking: t.Banking, Bank: t.Bank,
			PayerType: p.Type, PayerName: p.Name, StripePaymentID: t.StripePaymentID, ReceivedAt: t.ReceivedAt,
		})
	}
	return nil
}
