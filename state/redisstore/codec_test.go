package redisstore_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
	"github.com/payinfra/refunds/state/redisstore"
)

// testdata/account-written-by-v1.json was saved by the store before the codec moved
// out of the domain (every field of that version set). The store must keep reading
// such documents, and what it reads must survive the layout it writes now.
func TestADocumentWrittenByTheFirstVersionReadsBackTheSame(t *testing.T) {
	doc, err := os.ReadFile("testdata/account-written-by-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	doc = bytes.TrimSpace(doc)
	a, err := redisstore.DecodeDocumentForTest(doc)
	if err != nil {
		t.Fatal(err)
	}
	rules := state.DefaultRules()
	l := a.Ledger(rules)
	checks := []struct {
		what      string
		got, want string
	}{
		{"id", a.ID, "acct-golden"},
		{"status", a.Status, "frozen"},
		{"holder", a.HolderName, "Acme Ltd"},
		{"second top-up's payer", a.TopUps[1].PayerName, "Acme Ltd"},
		{"third top-up's payer", a.TopUps[2].PayerName, "Li Wei"},
		{"stripe payment", a.TopUps[1].StripePaymentID, "pi_123"},
		{"cash", l.Cash.String(), "790"},
		{"overdue", l.Overdue.String(), "200"},
		{"credit notes", l.CreditNotes.String(), "180"},
		{"unsettled", l.Unsettled.String(), "7.77"},
		{"vouchers", l.Vouchers.String(), "24.75"},
		{"reserve", l.ReserveState, state.ReserveFrozen},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !a.Invoices["i1"].Reversed || a.Resources["ecs-2"].ReleasedAt == nil || a.LastReleaseAt == nil || a.ReserveReleasedFor == nil {
		t.Errorf("invoice, orphan release or reserve times lost: %+v", a)
	}
	back, _ := writtenAndReadBack(t, a)
	if diff := differences(reflect.ValueOf(back), reflect.ValueOf(a), "Account"); len(diff) > 0 {
		t.Errorf("written field by field and read back with differences: %v", diff)
	}
}

// Every fact of an account is stored: an account with every field set (a field added
// to state.Account later included, since the fields are found by reflection) reads back
// equal. A collection the store does not know fails here, not in production.
func TestEveryFactOfAnAccountIsStored(t *testing.T) {
	a := state.NewAccount("acct-every")
	fillEveryField(t, reflect.ValueOf(&a).Elem(), "Account")
	for id, c := range a.Cases {
		c.ID = id // a case's id is its key
		a.Cases[id] = c
	}
	back, fields := writtenAndReadBack(t, a)
	if diff := differences(reflect.ValueOf(back), reflect.ValueOf(a), "Account"); len(diff) > 0 {
		t.Errorf("read back with differences %v\nfrom the fields %v", diff, fields)
	}
}

// differences lists where got and want differ in their exported fields, amounts and
// times compared by value (a zero amount read back is "0", not the zero Decimal).
func differences(got, want reflect.Value, path string) []string {
	switch w := want.Interface().(type) {
	case decimal.Decimal:
		if !w.Equal(got.Interface().(decimal.Decimal)) {
			return []string{fmt.Sprintf("%s: %v, want %v", path, got.Interface(), w)}
		}
		return nil
	case time.Time:
		if !w.Equal(got.Interface().(time.Time)) {
			return []string{fmt.Sprintf("%s: %v, want %v", path, got.Interface(), w)}
		}
		return nil
	}
	var out []string
	switch want.Kind() {
	case reflect.Pointer:
		if got.IsNil() != want.IsNil() {
			return []string{fmt.Sprintf("%s: nil is %v, want %v", path, got.IsNil(), want.IsNil())}
		}
		if !want.IsNil() {
			out = differences(got.Elem(), want.Elem(), path)
		}
	case reflect.Slice:
		if got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: %d elements, want %d", path, got.Len(), want.Len())}
		}
		for i := range want.Len() {
			out = append(out, differences(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Map:
		if got.Len() != want.Len() {
			return []string{fmt.Sprintf("%s: %d entries, want %d", path, got.Len(), want.Len())}
		}
		for _, k := range want.MapKeys() {
			g := got.MapIndex(k)
			if !g.IsValid() {
				out = append(out, fmt.Sprintf("%s[%v]: missing", path, k))
				continue
			}
			out = append(out, differences(g, want.MapIndex(k), fmt.Sprintf("%s[%v]", path, k))...)
		}
	case reflect.Struct:
		for i := range want.NumField() {
			if f := want.Type().Field(i); f.IsExported() {
				out = append(out, differences(got.Field(i), want.Field(i), path+"."+f.Name)...)
			}
		}
	default:
		if got.Interface() != want.Interface() {
			out = append(out, fmt.Sprintf("%s: %v, want %v", path, got.Interface(), want.Interface()))
		}
	}
	return out
}

// fillEveryField sets every exported field of v to a value that is not its zero value.
// A map gets one entry, a slice one element, a pointer a value; a decimal is 1.5 and a
// time is a fixed UTC instant.
func fillEveryField(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Interface().(type) {
	case decimal.Decimal:
		v.Set(reflect.ValueOf(decimal.RequireFromString("1.5")))
		return
	case time.Time:
		v.Set(reflect.ValueOf(time.Date(2026, 11, 20, 8, 30, 0, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillEveryField(t, p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillEveryField(t, s.Index(0), path+"[0]")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fillEveryField(t, e, path+"[k]")
		m.SetMapIndex(reflect.ValueOf("k-"+path), e)
		v.Set(m)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillEveryField(t, v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	default:
		t.Fatalf("%s: no test value for a %s", path, v.Kind())
	}
}

// A step writes the facts its event changed, not the account: a consumption writes
// the account's own fields, a top-up its own field, a case move the case's field, and
// an entry that leaves the account is deleted. Applied to the stored hash, the writes
// give exactly the hash of the account after the step.
func TestAStepWritesOnlyTheFactsItsEventChanged(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	base := state.NewAccount("acct-1")
	base.Opened, base.Currency = true, "CNY"
	for i := range 5 {
		base.TopUps = append(base.TopUps, state.TopUp{ID: fmt.Sprintf("t%d", i), Amount: decimal.NewFromInt(100), Channel: "alipay",
			PayerType: "individual", PayerName: "Zhang San", ReceivedAt: at.Add(time.Duration(i) * time.Hour)})
	}
	base.Cases = map[string]state.Case{"w1": {ID: "w1", Kind: events.CaseWithdrawal, Status: events.StatusInReview, Amount: decimal.NewFromInt(10), OpenedAt: at}}
	base.Resources = map[string]state.Resource{"ecs-1": {PayAsYouGo: true, Created: true}}

	consumed := clone(base)
	consumed.Consumed = decimal.NewFromInt(30)
	toppedUp := clone(base)
	toppedUp.TopUps = append([]state.TopUp{{ID: "t-early", Amount: decimal.NewFromInt(5), Channel: "card", ReceivedAt: at.Add(-time.Hour)}}, toppedUp.TopUps...)
	moved := clone(base)
	w1 := moved.Cases["w1"]
	w1.Status = events.StatusApprovedPendingTransfer
	w1.History = append(w1.History, state.CaseEntry{Status: w1.Status, At: at, By: state.ByReviewer})
	moved.Cases["w1"] = w1
	released := clone(base)
	delete(released.Resources, "ecs-1")
	released.LastReleaseAt = &at

	cases := []struct {
		name     string
		next     state.Account
		set, del []string
	}{
		{"a consumption", consumed, []string{"c"}, nil},
		{"a top-up older than the others", toppedUp, []string{"tu:t-early"}, nil},
		{"a case moved by review", moved, []string{"cs:w1"}, nil},
		{"the last resource released", released, []string{"c"}, []string{"rs:ecs-1"}},
		{"nothing", clone(base), nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, del, err := redisstore.ChangedFieldsForTest(base, c.next)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(set)); !slices.Equal(got, c.set) || !slices.Equal(del, c.del) {
				t.Errorf("set %v deleted %v, want set %v deleted %v", got, del, c.set, c.del)
			}
			stored, _ := redisstore.EncodeAccountForTest(base)
			for _, f := range del { // as apply.lua does: deletes, then sets
				delete(stored, f)
			}
			maps.Copy(stored, set)
			want, _ := redisstore.EncodeAccountForTest(c.next)
			if !maps.Equal(stored, want) {
				t.Errorf("the stored hash after the writes is\n%v\nwant\n%v", stored, want)
			}
			back, err := redisstore.DecodeAccountForTest(stored)
			if err != nil {
				t.Fatal(err)
			}
			if diff := differences(reflect.ValueOf(back), reflect.ValueOf(c.next), "Account"); len(diff) > 0 {
				t.Errorf("read back with differences %v", diff)
			}
		})
	}
}

// clone copies an account's collections, as a decision does.
func clone(a state.Account) state.Account {
	a.TopUps = slices.Clone(a.TopUps)
	a.Cases = maps.Clone(a.Cases)
	a.Resources = maps.Clone(a.Resources)
	return a
}

func TestTopUpsReadBackFirstRechargedFirstWithTiesByID(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	a := state.NewAccount("acct-1")
	for _, id := range []string{"t9", "t1", "t5"} {
		a.TopUps = append(a.TopUps, state.TopUp{ID: id, Amount: decimal.NewFromInt(1), Channel: "alipay", PayerName: "Zhang San", ReceivedAt: at})
	}
	a.TopUps = append([]state.TopUp{{ID: "t7", Amount: decimal.NewFromInt(2), Channel: "card", ReceivedAt: at.Add(-time.Hour)}}, a.TopUps...)
	back, _ := writtenAndReadBack(t, a)
	var order []string
	for _, tu := range back.TopUps {
		order = append(order, tu.ID)
	}
	if want := []string{"t7", "t1", "t5", "t9"}; !slices.Equal(order, want) {
		t.Errorf("top-ups read back in the order %v, want %v", order, want)
	}
}

func TestAFieldThisVersionDoesNotKnowMakesTheAccountUnreadable(t *testing.T) {
	fields, err := redisstore.EncodeAccountForTest(state.NewAccount("acct-1"))
	if err != nil {
		t.Fatal(err)
	}
	fields["zz:new-kind-of-fact"] = "{}"
	if _, err := redisstore.DecodeAccountForTest(fields); err == nil || !strings.Contains(err.Error(), "zz:new-kind-of-fact") {
		t.Errorf("an unknown field read as %v, want an error naming it", err)
	}
}

func TestCasesAndPayoutsReadBackTheSame(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	expected := at.Add(time.Hour)
	a := state.NewAccount("acct-1")
	a.Cases = map[string]state.Case{"w1": {
		ID: "w1", Kind: events.CaseWithdrawal, Status: events.StatusInReview, Amount: decimal.RequireFromString("80.50"),
		TopupID: "t1", Route: events.RouteDesignated, OpenedAt: at, ExpectedBy: &expected, PayoutID: "po-1",
		Destination: &events.Destination{Kind: events.DestinationBankCard, AccountNo: "6222020200012341234", PayeeName: "Li Wei", Bank: "ICBC"},
		History:     []state.CaseEntry{{Status: events.StatusInReview, At: at, By: state.ByRules, Reason: "designated account"}},
	}}
	a.PaidOut = map[string]decimal.Decimal{"t0": decimal.RequireFromString("10")}
	back, _ := writtenAndReadBack(t, a)
	got, want := back.Cases["w1"], a.Cases["w1"]
	if got.ID != want.ID || got.Status != want.Status || !got.Amount.Equal(want.Amount) || got.TopupID != want.TopupID ||
		got.Route != want.Route || *got.Destination != *want.Destination || !got.ExpectedBy.Equal(*want.ExpectedBy) ||
		got.PayoutID != want.PayoutID || len(got.History) != 1 || got.History[0] != want.History[0] {
		t.Errorf("case read back as %+v, want %+v", got, want)
	}
	if !back.PaidOut["t0"].Equal(decimal.NewFromInt(10)) {
		t.Errorf("paid out read back as %v", back.PaidOut)
	}
}

// writtenAndReadBack is a as a step that replaces its hash writes it, and that hash
// read back.
func writtenAndReadBack(t *testing.T, a state.Account) (back state.Account, fields map[string]string) {
	t.Helper()
	fields, err := redisstore.EncodeAccountForTest(a)
	if err != nil {
		t.Fatal(err)
	}
	back, err = redisstore.DecodeAccountForTest(fields)
	if err != nil {
		t.Fatal(err)
	}
	return back, fields
}

func TestZeroAmountsAreLeftOutOfTheStoredAccountAndReadBackAsZero(t *testing.T) {
	a := state.NewAccount("acct-z")
	a.Opened, a.Currency, a.Status = true, "CNY", "active"
	a.VouchersGranted = decimal.RequireFromString("24.24")
	a.Transfers = map[string]state.Transfer{"x1": {Received: decimal.NewFromInt(50)}}
	a.Cycles = map[string]state.Cycle{"2026-11": {Accrued: decimal.Zero}}
	fields, err := redisstore.EncodeAccountForTest(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"c", "tr:x1", "cy:2026-11"} {
		if strings.Contains(fields[field], `"0"`) {
			t.Errorf("%s = %s: a zero amount is spelled out", field, fields[field])
		}
	}
	if !strings.Contains(fields["c"], `"vg":"24.24"`) {
		t.Errorf("c = %s: the vouchers granted are missing", fields["c"])
	}
	check := func(how string, fields map[string]string) {
		t.Helper()
		back, err := redisstore.DecodeAccountForTest(fields)
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		x1 := back.Transfers["x1"]
		if !back.Consumed.IsZero() || !back.VouchersUsed.IsZero() || !back.VouchersGranted.Equal(a.VouchersGranted) ||
			!x1.Recalled.IsZero() || !x1.Received.Equal(decimal.NewFromInt(50)) || !back.Cycles["2026-11"].Accrued.IsZero() {
			t.Errorf("%s: read back consumed %s, vouchers %s/%s, transfer %s/%s, cycle %s", how, back.Consumed,
				back.VouchersGranted, back.VouchersUsed, x1.Received, x1.Recalled, back.Cycles["2026-11"].Accrued)
		}
	}
	check("written now", fields)
	// As the versions before wrote them, every zero spelled out: read the same.
	fields["tr:x1"], fields["cy:2026-11"] = `{"r":"50","c":"0"}`, `{"a":"0"}`
	fields["c"] = strings.Replace(fields["c"], `"vg":"24.24"`, `"cn":"0","vg":"24.24","vu":"0"`, 1)
	check("written with zeros", fields)
}
