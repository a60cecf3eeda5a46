package redisstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/internal/decimaltext"
	"github.com/payinfra/refunds/internal/jsonappend"
	"github.com/payinfra/refunds/state"
)

// An account is stored as one hash with a field per fact: "v" its version, "c" the
// account's own scalars (holder, status, consumption, vouchers, reserve times...), and
// one field per entry of each collection, named by the collection's prefix and the
// entry's id: "tu:<top-up id>", "cs:<case id>", "rs:<resource id>"... An event changes
// one or two facts, so a step writes only the fields that changed and deletes the
// entries that left: Redis takes in a few hundred bytes per event, not the account.
//
// Earlier versions kept the whole account in "s" (and, later, its top-ups in "t"). Such
// an account reads the same; its next step replaces the hash with this layout. An
// instance of an earlier version finds no "s" in an account written this way and
// cannot decide on it (its write conflicts), so it never misreads one.
const (
	fieldVersion = "v"
	fieldCore    = "c"
	// fieldLegacyDoc and fieldLegacyTopUps are the fields of the earlier layouts.
	fieldLegacyDoc    = "s"
	fieldLegacyTopUps = "t"
	// endedCasePrefix names an ended case kept in its account's hash: "ce:<case id>",
	// encoded as encodeEndedCase deflates it. It is not part of the document a step
	// decides on: decoding skips it, no step's writes name it, and replacing the hash
	// keeps it (apply.lua). The ended cases an event names are read apart (Load).
	endedCasePrefix = "ce:"
)

// accountWrites are the hash writes of one step.
type accountWrites struct {
	// replace: the hash is deleted before the fields are set, because what it holds is
	// not known field by field (a new account, an earlier layout, an account not
	// cached at the version the step was decided on).
	replace bool
	// set are field, value pairs; del are fields to delete.
	set []string
	del []string
}

// onRedis is an account as Redis holds it field by field, and its "c" field exactly.
type onRedis struct {
	account *state.Account
	core    string
}

// writesFor are the writes that turn the stored account base into next, and next's "c"
// field. base is nil when what Redis holds is not known field by field: then every
// field is written.
func writesFor(base *onRedis, next *state.Account) (accountWrites, string, error) {
	w := accountWrites{replace: base == nil}
	encoded, err := encodeCore(next)
	if err != nil {
		return accountWrites{}, "", err
	}
	core := string(encoded)
	var baseAccount *state.Account
	if base != nil {
		baseAccount = base.account
	}
	if base == nil || base.core != core {
		w.set = append(w.set, fieldCore, core)
	}
	for _, c := range collections {
		if err := c.diff(baseAccount, next, &w); err != nil {
			return accountWrites{}, "", err
		}
	}
	return w, core, nil
}

// encodeCore is the "c" field: the account without its collections.
func encodeCore(a *state.Account) ([]byte, error) {
	if core, ok := appendCore(make([]byte, 0, 256), a); ok {
		return core, nil
	}
	return marshalCore(a)
}

// appendCore appends the "c" field exactly as marshalCore writes it, without
// reflection: every step encodes its account's, and json.Marshal's reflection over
// storedAccount's 29 fields was about a twentieth of the intake's CPU. false, for text
// or a time it cannot write byte for byte (see jsonappend), leaves it to marshalCore.
// The order and the omissions are storedAccount's; a fuzz test holds the two to the
// same bytes.
func appendCore(dst []byte, a *state.Account) ([]byte, bool) {
	ok := true
	str := func(key, value string) {
		if ok {
			dst, ok = jsonappend.String(append(dst, key...), value)
		}
	}
	at := func(key string, t time.Time) {
		if ok {
			dst, ok = jsonappend.Time(append(dst, key...), t)
		}
	}
	// The omitempty and omitzero fields: nothing when empty or zero.
	text := func(key, value string) {
		if value != "" {
			str(key, value)
		}
	}
	flag := func(keyAndTrue string, on bool) {
		if on {
			dst = append(dst, keyAndTrue...)
		}
	}
	amount := func(key string, d decimal.Decimal) {
		if !d.IsZero() {
			dst = appendDecimal(append(dst, key...), d)
		}
	}
	optionalAt := func(key string, t *time.Time) {
		if t != nil {
			at(key, *t)
		}
	}
	str(`{"id":`, a.ID)
	flag(`,"op":true`, a.Opened)
	text(`,"ht":`, a.HolderType)
	text(`,"hn":`, a.HolderName)
	flag(`,"vf":true`, a.Verified)
	text(`,"cur":`, a.Currency)
	text(`,"st":`, a.Status)
	amount(`,"cn":`, a.Consumed)
	amount(`,"vg":`, a.VouchersGranted)
	amount(`,"vu":`, a.VouchersUsed)
	optionalAt(`,"lr":`, a.LastReleaseAt)
	optionalAt(`,"rr":`, a.ReserveReleasedFor)
	text(`,"em":`, a.Email)
	flag(`,"tv":true`, a.TermsViolated)
	if d := a.Discontinuation; d != nil {
		str(`,"dc":{"id":`, d.RequestID)
		at(`,"at":`, d.RequestedAt)
		optionalAt(`,"rl":`, d.ReleasedAt)
		dst = append(dst, '}')
	}
	for i, t := range a.PackageRefunds {
		separator := `,`
		if i == 0 {
			separator = `,"pr":[`
		}
		at(separator, t)
	}
	if len(a.PackageRefunds) > 0 {
		dst = append(dst, ']')
	}
	amount(`,"cr":`, a.Credited)
	return append(dst, '}'), ok
}

// appendDecimal appends d as decimal.Decimal's MarshalJSON writes it.
func appendDecimal(dst []byte, d decimal.Decimal) []byte {
	if decimal.MarshalJSONWithoutQuotes {
		return decimaltext.AppendString(dst, d)
	}
	dst = append(dst, '"')
	dst = decimaltext.AppendString(dst, d)
	return append(dst, '"')
}

// marshalCore is the "c" field as encoding/json writes it.
func marshalCore(a *state.Account) ([]byte, error) {
	s := storedAccount{
		ID: a.ID, Opened: a.Opened, HolderType: a.HolderType, HolderName: a.HolderName, Verified: a.Verified,
		Currency: a.Currency, Status: a.Status,
		Consumed: a.Consumed, VouchersGranted: a.VouchersGranted, VouchersUsed: a.VouchersUsed,
		LastReleaseAt: a.LastReleaseAt, ReserveReleased: a.ReserveReleasedFor,
		Email: a.Email, TermsViolated: a.TermsViolated, PackageRefunds: a.PackageRefunds,
	}
	if a.Discontinuation != nil {
		disc := storedDiscontinuation(*a.Discontinuation)
		s.Discontinuation = &disc
	}
	if !a.Credited.IsZero() {
		credited := a.Credited
		s.Credited = &credited
	}
	return json.Marshal(s)
}

// decodeAccountFields reads an account's hash (HGETALL), in this layout or an earlier
// one. fieldByField says it is in this layout, so a step may write only what changed.
// A field this version does not know is an error: a later version wrote the account,
// and deciding on what this one can read of it could move money wrongly.
func decodeAccountFields(id string, fields map[string]string) (v state.Versioned, fieldByField bool, err error) {
	version := fields[fieldVersion]
	if version == "" {
		return state.Versioned{Account: state.NewAccount(id)}, false, nil
	}
	if doc, ok := fields[fieldLegacyDoc]; ok {
		var topUps []byte
		if t, ok := fields[fieldLegacyTopUps]; ok {
			topUps = []byte(t)
		}
		a, err := decodeAccountJSON([]byte(doc), topUps)
		if err != nil {
			return state.Versioned{}, false, fmt.Errorf("account %s: decode state: %w", id, err)
		}
		return state.Versioned{Account: a, Version: version}, false, nil
	}
	core, ok := fields[fieldCore]
	if !ok {
		return state.Versioned{}, false, fmt.Errorf("account %s: version %s without its fields", id, version)
	}
	a, err := decodeAccountJSON([]byte(core), nil)
	if err != nil {
		return state.Versioned{}, false, fmt.Errorf("account %s: decode state: %w", id, err)
	}
	for field, value := range fields {
		if field == fieldVersion || field == fieldCore || strings.HasPrefix(field, endedCasePrefix) {
			continue
		}
		if err := decodeEntry(&a, field, value); err != nil {
			return state.Versioned{}, false, fmt.Errorf("account %s: %w", id, err)
		}
	}
	slices.SortFunc(a.TopUps, func(x, y state.TopUp) int {
		switch {
		case x.Before(y):
			return -1
		case y.Before(x):
			return 1
		}
		return 0
	})
	return state.Versioned{Account: a, Version: version}, true, nil
}

func decodeEntry(a *state.Account, field, value string) error {
	prefix, key, ok := strings.Cut(field, ":")
	if ok {
		for _, c := range collections {
			if c.prefix() == prefix {
				if err := c.decode(a, key, []byte(value)); err != nil {
					return fmt.Errorf("field %s: %w", field, err)
				}
				return nil
			}
		}
	}
	return fmt.Errorf("field %q is not one this version knows", field)
}

// sameMap says a and b are the very same map (or both nil). A decision shares each
// map of the account it was given until it writes it, and never changes a shared one
// (state's own), so a map the event did not write is this one, and has no writes.
func sameMap[V any](a, b map[string]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// collection is one kind of entry an account keeps by id.
type collection interface {
	prefix() string
	// diff adds the writes that turn base's entries into next's (every entry of next
	// when base is nil).
	diff(base, next *state.Account, w *accountWrites) error
	decode(a *state.Account, key string, value []byte) error
}

// collections are every collection of an account. A collection added to state.Account
// must be added here, or it is not stored: TestEveryFactOfAnAccountIsStored checks.
var collections = []collection{
	topUpEntries{},
	entries[state.Transfer, storedTransfer]{"tr", func(a *state.Account) *map[string]state.Transfer { return &a.Transfers }},
	entries[state.Cycle, storedCycle]{"cy", func(a *state.Account) *map[string]state.Cycle { return &a.Cycles }},
	entries[state.Bill, storedBill]{"bl", func(a *state.Account) *map[string]state.Bill { return &a.Bills }},
	entries[state.CreditNote, storedCreditNote]{"crn", func(a *state.Account) *map[string]state.CreditNote { return &a.CreditNotes }},
	entries[state.Invoice, storedInvoice]{"iv", func(a *state.Account) *map[string]state.Invoice { return &a.Invoices }},
	entries[state.Resource, storedResource]{"rs", func(a *state.Account) *map[string]state.Resource { return &a.Resources }},
	entries[state.Package, storedPackage]{"pk", func(a *state.Account) *map[string]state.Package { return &a.Packages }},
	entries[state.Order, storedOrder]{"od", func(a *state.Account) *map[string]state.Order { return &a.Orders }},
	entries[decimal.Decimal, decimal.Decimal]{"po", func(a *state.Account) *map[string]decimal.Decimal { return &a.PaidOut }},
	caseEntries{},
}

// entries is a collection kept as a map of plain values, stored as S (the same fields,
// with the store's JSON names, so each converts with a type conversion). An entry is
// unchanged when it is == to the stored one: a decision copies the entries it does not
// touch, sharing their amounts' and times' pointers, and a changed amount is a new
// pointer. An entry equal in value but not in pointers is written again, which costs
// only bytes.
type entries[V comparable, S any] struct {
	name string
	of   func(*state.Account) *map[string]V
}

func (e entries[V, S]) prefix() string { return e.name }

func (e entries[V, S]) diff(base, next *state.Account, w *accountWrites) error {
	var old map[string]V
	if base != nil {
		old = *e.of(base)
		if sameMap(old, *e.of(next)) {
			return nil
		}
	}
	for key, v := range *e.of(next) {
		if was, ok := old[key]; ok && was == v {
			continue
		}
		value, err := json.Marshal(convert[V, S](v))
		if err != nil {
			return fmt.Errorf("encode %s:%s: %w", e.name, key, err)
		}
		w.set = append(w.set, e.name+":"+key, string(value))
	}
	for key := range old {
		if _, ok := (*e.of(next))[key]; !ok {
			w.del = append(w.del, e.name+":"+key)
		}
	}
	return nil
}

func (e entries[V, S]) decode(a *state.Account, key string, value []byte) error {
	var s S
	if err := json.Unmarshal(value, &s); err != nil {
		return err
	}
	m := e.of(a)
	if *m == nil {
		*m = make(map[string]V)
	}
	(*m)[key] = convert[S, V](s)
	return nil
}

// convert is the type conversion between a state type and its stored form, which have
// the same fields (reflect does what a generic conversion cannot express).
func convert[From, To any](v From) To {
	var to To
	reflect.ValueOf(&to).Elem().Set(reflect.ValueOf(v).Convert(reflect.TypeFor[To]()))
	return to
}

// A top-up's field holds its facts as a JSON array of strings, in this order: amount,
// channel, online banking kind, bank, payer type, payer name, Stripe payment id, time
// received (RFC 3339). Its id is the field's name. Top-ups are most of an account and
// never change, so they are kept without key names: an account with 10 top-ups stays
// within 2 KiB.
const topUpFacts = 8

// topUpEntries are the account's top-ups, a list kept in order in state and stored by
// id: the order is restored on reading.
type topUpEntries struct{}

func (topUpEntries) prefix() string { return "tu" }

func (topUpEntries) diff(base, next *state.Account, w *accountWrites) error {
	var old []state.TopUp
	if base != nil {
		old = base.TopUps
	}
	if len(old) == len(next.TopUps) && (len(old) == 0 || &old[0] == &next.TopUps[0]) {
		// The very same top-ups: a decision shares them with the account it was given
		// and never changes one in place, so an event that added none wrote none.
		return nil
	}
	// Both lists are in state's order (first recharged first, ties by id), so one walk
	// over both finds what was added, changed and removed, without a map per event.
	i, j := 0, 0
	for i < len(old) || j < len(next.TopUps) {
		switch {
		case j == len(next.TopUps) || (i < len(old) && old[i].Before(next.TopUps[j])):
			w.del = append(w.del, "tu:"+old[i].ID)
			i++
		case i == len(old) || next.TopUps[j].Before(old[i]):
			if err := setTopUp(next.TopUps[j], w); err != nil {
				return err
			}
			j++
		default: // the same top-up, by time and id
			if old[i] != next.TopUps[j] {
				if err := setTopUp(next.TopUps[j], w); err != nil {
					return err
				}
			}
			i++
			j++
		}
	}
	return nil
}

func setTopUp(t state.TopUp, w *accountWrites) error {
	value, err := json.Marshal([topUpFacts]string{
		t.Amount.String(), t.Channel, t.Banking, t.Bank, t.PayerType, t.PayerName, t.StripePaymentID,
		t.ReceivedAt.Format(time.RFC3339Nano),
	})
	if err != nil {
		return fmt.Errorf("encode top-up %s: %w", t.ID, err)
	}
	w.set = append(w.set, "tu:"+t.ID, string(value))
	return nil
}

func (topUpEntries) decode(a *state.Account, key string, value []byte) error {
	var facts []string
	if err := json.Unmarshal(value, &facts); err != nil {
		return err
	}
	if len(facts) != topUpFacts {
		return fmt.Errorf("a top-up has %d facts, want %d", len(facts), topUpFacts)
	}
	amount, err := decimal.NewFromString(facts[0])
	if err != nil {
		return fmt.Errorf("amount: %w", err)
	}
	at, err := time.Parse(time.RFC3339Nano, facts[7])
	if err != nil {
		return fmt.Errorf("time received: %w", err)
	}
	a.TopUps = append(a.TopUps, state.TopUp{
		ID: key, Amount: amount, Channel: facts[1], Banking: facts[2], Bank: facts[3], PayerType: facts[4],
		PayerName: facts[5], StripePaymentID: facts[6], ReceivedAt: at,
	})
	return nil
}

// caseEntries are the account's open cases. A case holds a history and pointers, so
// it is compared deeply: an unchanged case is not written again.
type caseEntries struct{}

func (caseEntries) prefix() string { return "cs" }

func (caseEntries) diff(base, next *state.Account, w *accountWrites) error {
	var old map[string]state.Case
	if base != nil {
		old = base.Cases
		if sameMap(old, next.Cases) {
			return nil
		}
	}
	for id, c := range next.Cases {
		if was, ok := old[id]; ok && reflect.DeepEqual(was, c) {
			continue
		}
		value, err := json.Marshal(storeCase(c))
		if err != nil {
			return fmt.Errorf("encode case %s: %w", id, err)
		}
		w.set = append(w.set, "cs:"+id, string(value))
	}
	for id := range old {
		if _, ok := next.Cases[id]; !ok {
			w.del = append(w.del, "cs:"+id)
		}
	}
	return nil
}

func (caseEntries) decode(a *state.Account, key string, value []byte) error {
	c, err := decodeCase(key, value)
	if err != nil {
		return err
	}
	if a.Cases == nil {
		a.Cases = make(map[string]state.Case)
	}
	a.Cases[key] = c
	return nil
}
