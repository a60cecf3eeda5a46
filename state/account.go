package state

import (
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
)

// Account is everything the engine keeps about one billing account: facts, not
// balances. Balances (cash, withdrawable, each top-up's
// remainder) are derived by Ledger from these facts, which is what makes them
// independent of the order the facts arrived in. Collections are maps (JSON sorts
// their keys) or slices kept sorted, so the same facts also give the same document.
type Account struct {
	ID         string
	Opened     bool
	HolderType string
	HolderName string
	Verified   bool
	// Currency is set by billing.account.opened; money events wait until then.
	Currency string
	Status   string

	// TopUps are the recharges, sorted by (ReceivedAt, ID): first recharged, first
	// consumed. Fully consumed ones are kept: dropping them would change the
	// allocation if an older top-up arrived late.
	TopUps []TopUp
	// Consumed is all cash consumption: recorded consumption, settled cycles and bills
	// paid from the balance. Ledger allocates it.
	Consumed decimal.Decimal
	// VouchersGranted and VouchersUsed are complimentary balance: never cash.
	VouchersGranted decimal.Decimal
	VouchersUsed    decimal.Decimal

	Transfers   map[string]Transfer
	Cycles      map[string]Cycle
	Bills       map[string]Bill
	CreditNotes map[string]CreditNote
	Invoices    map[string]Invoice
	Resources   map[string]Resource
	// LastReleaseAt is the latest release time of a pay-as-you-go resource: the reserve
	// countdown runs from it. A late release with an older time never moves it back.
	LastReleaseAt *time.Time
	// ReserveReleasedFor is the LastReleaseAt whose countdown ran out: the reserve was
	// released for it. A later release starts a new countdown.
	ReserveReleasedFor *time.Time

	// Cases are the account's open withdrawals and refunds: what the rules need, and
	// what they hold. A case that ends leaves the account's document (Decision.
	// ClosedCases): the store keeps it apart, so a long history does not make every
	// event dearer.
	Cases map[string]Case
	// PaidOut is what cases paid out of cash, by the top-up it left from ("" for
	// money that was not a top-up's). It outlives the cases themselves.
	PaidOut map[string]decimal.Decimal

	// closed are ended cases the store loaded for this decision because its event
	// names them (a late payout result, a repeated request), and the ones ended by it.
	// Never stored in the document.
	closed map[string]Case
	// sameHolderOverdue are the accounts, other than this one maybe, whose holder has
	// this account's holder's name and which have an overdue amount: loaded for a
	// withdrawal's risk rule. Never stored.
	sameHolderOverdue []string

	// Email is the account's, which a Stripe refund must name [000].
	Email string
	// TermsViolated: the account violated the terms of service; no package refund [003].
	TermsViolated bool
	Packages      map[string]Package
	Orders        map[string]Order
	// Discontinuation is the customer's discontinuation of service, once requested.
	Discontinuation *Discontinuation
	// PackageRefunds are the times of recent package refunds, for the abuse rule.
	PackageRefunds []time.Time
	// Credited is what refunds credited to the balance: non-top-up funds, withdrawable
	// only by a reviewed application [001].
	Credited decimal.Decimal

	// knownBalances are this account's balances, when a decision already computed them
	// (never stored): the next event of the account in a batch needs them as its
	// "before", and they are the costliest part of a decision.
	knownBalances *knownBalances
	// topUps are sums over TopUps, when known (never stored): replaced, never changed
	// in place, so copies of the account that share them stay right.
	topUps *topUpTotals
	// shared are the maps this account still shares with the one it was cloned from
	// (clone, own).
	shared sharedMaps
}

// topUpTotals are the sums over an account's top-ups that every balance needs. An
// account keeps every top-up it ever had, and each amount is a big.Int behind two
// pointers, so summing them for every event was a twentieth of the intake's CPU.
// addTopUp keeps them up to date; of is the slice they were summed over, so top-ups
// replaced from outside the package (a test, a decoder) are summed again.
type topUpTotals struct {
	of        []TopUp
	recharged decimal.Decimal // Σ amounts
	// anyNegative: an amount below zero, which no valid event carries; balances then
	// take the slow path that handles it.
	anyNegative bool
}

// topUpTotals are a's top-up sums, from what a decision kept when it still holds for
// a.TopUps, else summed now.
func (a Account) topUpTotals() topUpTotals {
	if t := a.topUps; t != nil && len(t.of) == len(a.TopUps) && (len(a.TopUps) == 0 || &t.of[0] == &a.TopUps[0]) {
		return *t
	}
	t := topUpTotals{of: a.TopUps, recharged: sumOfAmounts(a.TopUps)}
	for _, u := range a.TopUps {
		t.anyNegative = t.anyNegative || u.Amount.Sign() < 0
	}
	return t
}

// keepTopUpTotals computes a's top-up sums once, for the decisions that follow on it.
func (a *Account) keepTopUpTotals() {
	t := a.topUpTotals()
	a.topUps = &t
}

// knownBalances are the balances a balance notice compares, computed under the rules
// that shape them. Only these: an account keeps them for every event, and keeping the
// whole Ledger was 7% of the bytes a decision allocates.
type knownBalances struct {
	currency           string
	cash, withdrawable decimal.Decimal
	under              balanceRules
}

// balanceRules are the rules balances depend on.
type balanceRules struct {
	reserve  decimal.Decimal
	hold     time.Duration
	currency string
}

// balanceRulesOf is read twice per event: it keeps the reserve as the rules have it,
// rather than as text, which cost a big.Int's conversion each time.
func balanceRulesOf(r Rules) balanceRules {
	return balanceRules{reserve: r.ReserveAmount, hold: r.ReserveHold, currency: r.DefaultCurrency}
}

// same reports whether balances computed under b hold under o.
func (b balanceRules) same(o balanceRules) bool {
	return b.hold == o.hold && b.currency == o.currency && b.reserve.Equal(o.reserve)
}

// TopUp is one recharge order. What is left of it is derived by Ledger.
type TopUp struct {
	ID              string
	Amount          decimal.Decimal
	Channel         string
	Banking         string
	Bank            string
	PayerType       string
	PayerName       string
	StripePaymentID string
	ReceivedAt      time.Time
}

// Transfer is funds received from another account, and how much the sender recalled.
type Transfer struct {
	Received decimal.Decimal
	Recalled decimal.Decimal
}

// Cycle is a billing cycle's usage: unsettled until the cycle settles, then the
// settled amount is consumption and the cycle holds nothing back. A late accrual to a
// settled cycle therefore changes nothing, whatever the order.
type Cycle struct {
	Accrued decimal.Decimal
	Settled *decimal.Decimal
}

// Bill is an issued bill; what is unpaid is overdue. Fully paid bills are dropped.
type Bill struct {
	Amount decimal.Decimal
	Paid   decimal.Decimal
}

// CreditNote is invoiced amount above actual consumption; what is unresolved is held
// back. Fully resolved credit notes are dropped.
type CreditNote struct {
	Amount   decimal.Decimal
	Resolved decimal.Decimal
}

// Invoice is an issued invoice, possibly for a recharge, and whether its red-letter
// reversal is confirmed (a discontinuation refund waits for it).
type Invoice struct {
	TopupID  string
	Reversed bool
}

// Resource is what is known of one resource. A release may arrive before its create;
// a resource created and released is dropped, since redeliveries of either are
// recognised by their event ids.
type Resource struct {
	PayAsYouGo bool
	Created    bool
	// ReleasedAt is set when the release arrived before the create, which says
	// whether the release counts for the reserve (pay-as-you-go) or not.
	ReleasedAt *time.Time
}

// NewAccount is an account the engine has not heard of yet.
func NewAccount(id string) Account {
	return Account{ID: id, Status: events.AccountActive}
}

// addTopUp inserts t keeping the first-recharged-first order. Ties on time are broken by
// id, so the order never depends on arrival.
//
// It is the only change ever made to the top-ups, and it writes no element that another
// copy of the account can see: it copies them into a new slice.
func (a *Account) addTopUp(t TopUp) {
	i := sort.Search(len(a.TopUps), func(i int) bool { return t.Before(a.TopUps[i]) })
	var totals *topUpTotals
	if a.topUps != nil {
		// Kept by an earlier decision: carried forward by one addition, not summed again.
		before := a.topUpTotals()
		totals = &topUpTotals{recharged: before.recharged.Add(t.Amount), anyNegative: before.anyNegative || t.Amount.Sign() < 0}
	}
	// A new slice of exactly the size needed (not slices.Insert's growth): the next
	// decision clips it again, so spare room would only be copied and never used.
	grown := make([]TopUp, len(a.TopUps)+1)
	copy(grown, a.TopUps[:i])
	grown[i] = t
	copy(grown[i+1:], a.TopUps[i:])
	a.TopUps = grown
	if totals != nil {
		totals.of = grown
		a.topUps = totals
	}
}

// Before reports whether t comes before u in an account's top-ups: first recharged
// first, ties on time broken by id, so the order never depends on arrival. A store
// that keeps top-ups apart reads them back in this order.
func (t TopUp) Before(u TopUp) bool {
	if !t.ReceivedAt.Equal(u.ReceivedAt) {
		return t.ReceivedAt.Before(u.ReceivedAt)
	}
	return t.ID < u.ID
}

func (a *Account) topUp(id string) (TopUp, bool) {
	for _, t := range a.TopUps {
		if t.ID == id {
			return t, true
		}
	}
	return TopUp{}, false
}

// activePayAsYouGo counts pay-as-you-go resources created and not released.
func (a *Account) activePayAsYouGo() int {
	n := 0
	for _, r := range a.Resources {
		if r.PayAsYouGo && r.Created {
			n++
		}
	}
	return n
}

// clone returns a copy that a decision can change without changing a. It shares no
// maps with a. It shares the top-ups, which are never changed in place, only inserted
// (addTopUp, which copies them). Their capacity is clipped too, so not even an append
// could reach a's. Copying them on every decision was a tenth of the intake's
// allocations.
func (a Account) clone() Account {
	a.knownBalances = nil // the clone is about to change
	a.TopUps = slices.Clip(a.TopUps)
	// The maps are shared until written (own): most events change one of them or
	// none, and copying all eleven for every event was about 4% of refundd's CPU.
	a.shared = allShared
	a.PackageRefunds = slices.Clone(a.PackageRefunds)
	if a.Discontinuation != nil {
		disc := *a.Discontinuation
		a.Discontinuation = &disc
	}
	return a
}

// sharedMaps are the maps an account shares with the one it was cloned from, which
// must never change (the store caches accounts and decides on them again).
type sharedMaps uint16

const (
	sharedTransfers sharedMaps = 1 << iota
	sharedCycles
	sharedBills
	sharedCreditNotes
	sharedInvoices
	sharedResources
	sharedCases
	sharedPackages
	sharedOrders
	sharedClosed
	sharedPaidOut
	allShared = 1<<iota - 1
)

// own is *m ready to be written: a's own copy, made now if a still shares it with
// the account it was cloned from, and made at all if nil. Every write to one of an
// account's maps goes through it.
func own[V any](a *Account, which sharedMaps, m *map[string]V) map[string]V {
	if a.shared&which != 0 {
		*m = cloneMap(*m)
		a.shared &^= which
	}
	if *m == nil {
		*m = make(map[string]V)
	}
	return *m
}

func cloneMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// put sets m[k] = v, making the map on first use.
func put[V any](m *map[string]V, k string, v V) {
	if *m == nil {
		*m = make(map[string]V)
	}
	(*m)[k] = v
}

// WithClosedCases is the account with ended cases attached for one decision: the
// store loads those the decided events name (events.Event.CaseRef).
func (a Account) WithClosedCases(cases map[string]Case) Account {
	if len(cases) == 0 {
		return a
	}
	// A copy of its own in any case: a need not be a clone, and may be cached.
	a.shared |= sharedClosed
	closed := own(&a, sharedClosed, &a.closed)
	for id, c := range cases {
		closed[id] = c
	}
	return a
}

// findCase is the case of that id, open or ended (when loaded).
func (a *Account) findCase(id string) (Case, bool) {
	if c, ok := a.Cases[id]; ok {
		return c, true
	}
	c, ok := a.closed[id]
	return c, ok
}

// AllCases are the account's open cases and the ended ones attached to it.
func (a Account) AllCases() []Case {
	out := make([]Case, 0, len(a.Cases)+len(a.closed))
	for _, c := range a.Cases {
		out = append(out, c)
	}
	for id, c := range a.closed {
		if _, open := a.Cases[id]; !open {
			out = append(out, c)
		}
	}
	return out
}

// WithSameHolderOverdue is the account with the accounts of holders of the same name
// that have an overdue amount, for the risk rule of a withdrawal [001].
func (a Account) WithSameHolderOverdue(accountIDs []string) Account {
	a.sameHolderOverdue = accountIDs
	return a
}

// hasOverdue says whether an issued bill is unpaid: fully paid bills are dropped.
func (a Account) hasOverdue() bool { return len(a.Bills) > 0 }

// otherAccountOverdue says whether another account under the same holder name has an
// overdue amount.
func (a Account) otherAccountOverdue() bool {
	for _, id := range a.sameHolderOverdue {
		if id != a.ID {
			return true
		}
	}
	return false
}
