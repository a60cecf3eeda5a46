package state_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

const account = "acct-42"

var (
	rules = state.DefaultRules()
	day0  = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	now   = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
)

func money(s string) events.Amount { return events.Amount{Decimal: decimal.RequireFromString(s)} }

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// event builds a valid inbound event for the test account.
func event(t testing.TB, typ events.Type, id string, at time.Time, p events.Payload) events.Event {
	t.Helper()
	ev, err := events.New(typ, account, "/billing", id, at, p)
	if err != nil {
		t.Fatalf("build %s: %v", typ, err)
	}
	return ev
}

func opened() *events.AccountOpenedData {
	return &events.AccountOpenedData{HolderType: "company", HolderName: "Acme Ltd", Verified: true}
}

func topUp(id, amount string) *events.TopupReceivedData {
	return &events.TopupReceivedData{
		TopupID: id, Amount: money(amount), Currency: "CNY", Channel: "online_banking",
		Banking: "personal", Bank: "ICBC", PayerType: "individual", PayerName: "Zhang San",
	}
}

func consumption(id, amount string) *events.ConsumptionRecordedData {
	return &events.ConsumptionRecordedData{ConsumptionID: id, Amount: money(amount)}
}

// applyAll applies evs in order, failing the test on any error.
func applyAll(t testing.TB, a state.Account, evs ...events.Event) state.Account {
	t.Helper()
	for _, ev := range evs {
		d, err := state.Apply(a, ev, rules, now)
		if err != nil {
			t.Fatalf("apply %s %s: %v", ev.Type, ev.ID, err)
		}
		a = d.Account
	}
	return a
}

func openedAccount(t testing.TB) state.Account {
	return applyAll(t, state.NewAccount(account), event(t, events.AccountOpened, "e-open", day0, opened()))
}

func wantDecimal(t testing.TB, what string, got, want decimal.Decimal) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

func wantRefusal(t testing.TB, err error) {
	t.Helper()
	var r *state.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error = %v, want a refusal", err)
	}
}
