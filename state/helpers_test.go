package state_test

import (
	"errors"
	"fmt"
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

// history is a readable way to write an account's events in a test: each call adds
// one event with the next id, an hour after the previous one.
type history struct {
	t      testing.TB
	events []events.Event
	at     time.Time
}

func newHistory(t testing.TB) *history {
	h := &history{t: t, at: day0}
	return h.add(events.AccountOpened, opened())
}

func (h *history) add(typ events.Type, p events.Payload) *history {
	h.t.Helper()
	h.at = h.at.Add(time.Hour)
	h.events = append(h.events, event(h.t, typ, fmt.Sprintf("e-%d", len(h.events)), h.at, p))
	return h
}

func (h *history) topUp(id, amount string) *history {
	return h.add(events.TopupReceived, topUp(id, amount))
}
func (h *history) consume(amount string) *history {
	return h.add(events.ConsumptionRecorded, consumption("c", amount))
}
func (h *history) transfer(id, amount string) *history {
	return h.add(events.TransferReceived, &events.TransferReceivedData{TransferID: id, Amount: money(amount)})
}
func (h *history) recall(id, amount string) *history {
	return h.add(events.TransferRecalled, &events.TransferRecalledData{TransferID: id, Amount: money(amount)})
}
func (h *history) creditNote(id, amount string) *history {
	a := money(amount)
	return h.add(events.CreditNoteIssued, &events.CreditNoteData{CreditNoteID: id, Amount: &a})
}
func (h *history) bill(id, amount string) *history {
	return h.add(events.BillIssued, &events.BillIssuedData{BillID: id, Amount: money(amount)})
}
func (h *history) usage(cycle, amount string) *history {
	return h.add(events.UsageAccrued, &events.UsageAccruedData{UsageID: "u", Cycle: cycle, Amount: money(amount)})
}
func (h *history) resource(id, mode string) *history {
	return h.add(events.ResourceCreated, &events.ResourceCreatedData{ResourceID: id, BillingMode: mode})
}
func (h *history) release(id string) *history {
	return h.add(events.ResourceReleased, &events.ResourceReleasedData{ResourceID: id})
}

// account applies the history in order.
func (h *history) account() state.Account {
	h.t.Helper()
	return applyAll(h.t, state.NewAccount(account), h.events...)
}

func (h *history) ledger() state.Ledger { return h.account().Ledger(rules) }

// seed001 is seed 001's worked example: cash 1,000 of which 500 transferred, credit
// notes 200, overdue 300, unsettled 200, and a pay-as-you-go resource holding the
// CNY 100 reserve.
func seed001(t testing.TB) *history {
	return newHistory(t).
		topUp("t1", "500.00").
		transfer("tr1", "500.00").
		creditNote("cn1", "200.00").
		bill("b1", "300.00").
		usage("2026-11", "200.00").
		resource("ecs-1", "payg")
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

// onTheWire is an outbound event as a notifier receives it: encoded, then decoded with
// the same checks as any inbound event.
func onTheWire(ev events.Event) (events.Event, error) {
	body, err := ev.Encode()
	if err != nil {
		return events.Event{}, err
	}
	return events.Decode(body)
}
