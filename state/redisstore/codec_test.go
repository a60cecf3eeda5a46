package redisstore_test

import (
	"bytes"
	"os"
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
// such documents, and write them back byte for byte while nothing changed.
func TestADocumentWrittenByTheFirstVersionReadsBackTheSame(t *testing.T) {
	doc, err := os.ReadFile("testdata/account-written-by-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	doc = bytes.TrimSpace(doc)
	a, err := redisstore.DecodeAccountForTest(doc)
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
	again, err := redisstore.EncodeAccountForTest(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, doc) {
		t.Errorf("written back as\n%s\nwant\n%s", again, doc)
	}
}

func TestTheStoredAccountListsEachPayerOnceAndReadsBackTheSame(t *testing.T) {
	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	a := state.NewAccount("acct-1")
	for i, payer := range []string{"Zhang San", "Zhang San", "Acme Ltd"} {
		a.TopUps = append(a.TopUps, state.TopUp{ID: "t" + string(rune('1'+i)), Amount: decimal.NewFromInt(int64(i + 1)),
			Channel: "alipay", PayerType: "individual", PayerName: payer, ReceivedAt: at.Add(time.Duration(i) * time.Hour)})
	}
	doc, err := redisstore.EncodeAccountForTest(a)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(doc), "Zhang San"); n != 1 {
		t.Errorf("payer Zhang San stored %d times in %s", n, doc)
	}
	back, err := redisstore.DecodeAccountForTest(doc)
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range back.TopUps {
		if want := a.TopUps[i]; got.ID != want.ID || got.PayerName != want.PayerName || !got.Amount.Equal(want.Amount) || !got.ReceivedAt.Equal(want.ReceivedAt) {
			t.Errorf("top-up %d read back as %+v, want %+v", i, got, want)
		}
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
	doc, err := redisstore.EncodeAccountForTest(a)
	if err != nil {
		t.Fatal(err)
	}
	back, err := redisstore.DecodeAccountForTest(doc)
	if err != nil {
		t.Fatal(err)
	}
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
