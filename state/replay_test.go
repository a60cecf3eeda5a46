package state_test

import (
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

func TestARebuildGivesTheSameAccountWhateverTheOrderAndRepeatsOfItsEvents(t *testing.T) {
	opened := event(t, events.AccountOpened, "e-open", day0, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true})
	t1 := event(t, events.TopupReceived, "e-t1", day0.Add(time.Hour), topUp("t1", "500.00"))
	request := requestAt(t, "w1", day0.Add(2*time.Hour), original("w1", "t1", "120.00"))
	paid := event(t, events.PayoutReported, "e-paid", day0.Add(3*time.Hour), &events.PayoutReportedData{PayoutID: "po-w1", CaseID: "w1", Status: events.PayoutSucceeded})
	now := day0.Add(48 * time.Hour)

	inOrder := state.Rebuild(account, []events.Event{opened, t1, request, paid}, rules, now)
	backwards := state.Rebuild(account, []events.Event{paid, request, t1, t1, opened, paid}, rules, now)

	for name, r := range map[string]state.Replay{"in order": inOrder, "backwards, repeated": backwards} {
		if r.Applied != 4 || r.Waiting != 0 || r.Refused != 0 {
			t.Errorf("%s: %d applied, %d waiting, %d refused; want 4, 0, 0", name, r.Applied, r.Waiting, r.Refused)
		}
		if c, ok := r.Ended["w1"]; !ok || c.Status != events.StatusSucceeded {
			t.Errorf("%s: ended cases %v, want w1 succeeded", name, r.Ended)
		}
		wantDecimal(t, name+": cash", r.Account.Ledger(rules).Cash, dec("380.00"))
	}
	statuses := func(r state.Replay) (s []string) {
		for _, ev := range r.Outbound {
			if p, ok := ev.Payload.(*events.CaseStatusChangedData); ok {
				s = append(s, p.Status)
			}
		}
		return s
	}
	if a, b := statuses(inOrder), statuses(backwards); len(a) != 2 || len(b) != 2 || a[0] != b[0] || a[1] != b[1] {
		t.Errorf("status changes published: in order %v, backwards %v; want approved then succeeded in both", a, b)
	}
}

func TestARebuildCountsWhatNeverStopsWaitingAndWhatIsRefused(t *testing.T) {
	opened := event(t, events.AccountOpened, "e-open", day0, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true})
	orphanPayout := event(t, events.PayoutReported, "e-paid", day0.Add(time.Hour), &events.PayoutReportedData{PayoutID: "po-w9", CaseID: "w9", Status: events.PayoutSucceeded})
	otherCurrency := topUp("t1", "10.00")
	otherCurrency.Currency = "USD"
	refused := event(t, events.TopupReceived, "e-usd", day0.Add(time.Hour), otherCurrency)

	r := state.Rebuild(account, []events.Event{opened, orphanPayout, refused}, rules, day0.Add(time.Hour))
	if r.Applied != 1 || r.Waiting != 1 || r.Refused != 1 {
		t.Errorf("%d applied, %d waiting, %d refused; want 1, 1, 1", r.Applied, r.Waiting, r.Refused)
	}
}
