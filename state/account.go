package state

import (
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Account statuses, from billing.account.status_changed.
const (
	StatusActive = "active"
	StatusFrozen = "frozen"
	StatusClosed = "closed"
)

// Account is everything the engine keeps about one billing account. It is stored as one
// compact JSON document, so field names on the wire are short; the Go names say what
// they mean. Quantities that can be derived (cash, withdrawable, each top-up's remainder)
// are not stored: they are computed by Ledger from the facts below, which is what makes
// the result independent of the order in which the facts arrived.
type Account struct {
	ID         string `json:"id"`
	Opened     bool   `json:"op,omitempty"`
	HolderType string `json:"ht,omitempty"`
	HolderName string `json:"hn,omitempty"`
	Verified   bool   `json:"vf,omitempty"`
	// Currency is fixed by the first event that brings money or by billing.account.opened.
	Currency string `json:"cur,omitempty"`
	Status   string `json:"st,omitempty"`

	// TopUps are the recharges, kept sorted by (ReceivedAt, ID): first recharged, first consumed.
	TopUps []TopUp `json:"tu,omitempty"`
	// Consumed is the cash part of all consumption recorded, however it was allocated.
	Consumed decimal.Decimal `json:"cn"`
}

// TopUp is one recharge order. What is left of it is derived by Ledger.
type TopUp struct {
	ID              string          `json:"id"`
	Amount          decimal.Decimal `json:"a"`
	Channel         string          `json:"ch"`
	Banking         string          `json:"bk,omitempty"`
	Bank            string          `json:"b,omitempty"`
	PayerType       string          `json:"pt,omitempty"`
	PayerName       string          `json:"pn,omitempty"`
	StripePaymentID string          `json:"sp,omitempty"`
	ReceivedAt      time.Time       `json:"at"`
}

// NewAccount is an account the engine has not heard of yet. Events may arrive before
// billing.account.opened; they are kept, and the account is completed when it arrives.
func NewAccount(id string) Account {
	return Account{ID: id, Status: StatusActive}
}

// addTopUp inserts t keeping the first-recharged-first order. Ties on time are broken by
// id, so the order never depends on arrival.
func (a *Account) addTopUp(t TopUp) {
	i := sort.Search(len(a.TopUps), func(i int) bool { return topUpBefore(t, a.TopUps[i]) })
	a.TopUps = append(a.TopUps, TopUp{})
	copy(a.TopUps[i+1:], a.TopUps[i:])
	a.TopUps[i] = t
}

func topUpBefore(x, y TopUp) bool {
	if !x.ReceivedAt.Equal(y.ReceivedAt) {
		return x.ReceivedAt.Before(y.ReceivedAt)
	}
	return x.ID < y.ID
}

func (a *Account) topUp(id string) (TopUp, bool) {
	for _, t := range a.TopUps {
		if t.ID == id {
			return t, true
		}
	}
	return TopUp{}, false
}

// clone returns a copy that shares no slices or maps with a, so a decision never
// mutates the state it was given.
func (a Account) clone() Account {
	a.TopUps = append([]TopUp(nil), a.TopUps...)
	return a
}
