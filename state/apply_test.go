package state_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

func TestConsumptionDrawsFromTopUpsFirstRechargedFirstConsumed(t *testing.T) {
	a := applyAll(t, openedAccount(t),
		event(t, events.TopupReceived, "e-t2", day0.Add(2*time.Hour), topUp("t2", "300.00")),
		event(t, events.TopupReceived, "e-t1", day0.Add(1*time.Hour), topUp("t1", "100.00")),
		event(t, events.ConsumptionRecorded, "e-c1", day0.Add(3*time.Hour), consumption("c1", "150.00")),
	)
	l := a.Ledger(rules)
	if len(l.TopUps) != 2 || l.TopUps[0].ID != "t1" || l.TopUps[1].ID != "t2" {
		t.Fatalf("top-ups not in recharge order: %+v", l.TopUps)
	}
	wantDecimal(t, "t1 (first recharged) remaining", l.TopUps[0].Remaining, dec("0"))
	wantDecimal(t, "t2 remaining", l.TopUps[1].Remaining, dec("250"))
	wantDecimal(t, "cash", l.Cash, dec("250"))
	wantDecimal(t, "withdrawable", l.Withdrawable, dec("250"))
}

func TestConsumptionBeforeItsTopUpIsNotLost(t *testing.T) {
	a := applyAll(t, openedAccount(t),
		event(t, events.ConsumptionRecorded, "e-c1", day0.Add(time.Hour), consumption("c1", "40.00")),
	)
	l := a.Ledger(rules)
	wantDecimal(t, "unfunded before the top-up", l.Unfunded, dec("40"))
	wantDecimal(t, "cash before the top-up", l.Cash, dec("0"))
	wantDecimal(t, "withdrawable before the top-up", l.Withdrawable, dec("0"))

	a = applyAll(t, a, event(t, events.TopupReceived, "e-t1", day0, topUp("t1", "100.00")))
	l = a.Ledger(rules)
	wantDecimal(t, "unfunded after the top-up", l.Unfunded, dec("0"))
	wantDecimal(t, "t1 remaining", l.TopUps[0].Remaining, dec("60"))
}

func TestTheSameTopUpUnderTwoEventIDsCountsOnce(t *testing.T) {
	a := openedAccount(t)
	first := event(t, events.TopupReceived, "e-1", day0, topUp("t1", "100.00"))
	again := event(t, events.TopupReceived, "e-2", day0, topUp("t1", "100.00"))
	a = applyAll(t, a, first)
	d, err := state.Apply(a, again, rules, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed || len(d.Outbound) != 0 {
		t.Fatalf("repeat of top-up t1 changed the account or published: %+v", d)
	}
	wantDecimal(t, "cash", d.Account.Ledger(rules).Cash, dec("100"))
}

func TestRefusals(t *testing.T) {
	base := applyAll(t, openedAccount(t), event(t, events.TopupReceived, "e-t1", day0, topUp("t1", "100.00")))
	usd := topUp("t2", "10.00")
	usd.Currency = "USD"
	tests := []struct {
		name   string
		event  events.Event
		reason string
	}{
		{"a top-up in another currency than the account's is refused", event(t, events.TopupReceived, "e-usd", day0, usd), "currency USD differs"},
		{"a top-up id reused with another amount is refused", event(t, events.TopupReceived, "e-t1b", day0, topUp("t1", "999.00")), "already received"},
		{"a second billing.account.opened is refused", event(t, events.AccountOpened, "e-open2", day0, opened()), "already opened"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.Apply(base, tc.event, rules, now)
			wantRefusal(t, err)
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("reason %q does not say %q", err, tc.reason)
			}
		})
	}
}

func TestMoneyEventsWaitForTheAccountToBeOpened(t *testing.T) {
	for _, ev := range []events.Event{
		event(t, events.TopupReceived, "e-t1", day0, topUp("t1", "100.00")),
		event(t, events.ConsumptionRecorded, "e-c1", day0, consumption("c1", "1.00")),
	} {
		t.Run(string(ev.Type), func(t *testing.T) {
			_, err := state.Apply(state.NewAccount(account), ev, rules, now)
			var w *state.Waiting
			if !errors.As(err, &w) {
				t.Fatalf("error = %v, want waiting", err)
			}
		})
	}
}

func TestApplyNeverChangesTheAccountItWasGiven(t *testing.T) {
	a := applyAll(t, openedAccount(t), event(t, events.TopupReceived, "e-t1", day0, topUp("t1", "100.00")))
	// Room to grow in place: an insert that wrote into it would shift a's top-up.
	a.TopUps = slices.Grow(a.TopUps, 4)
	before := a.TopUps[0]
	if _, err := state.Apply(a, event(t, events.TopupReceived, "e-t0", day0.Add(-time.Hour), topUp("t0", "5.00")), rules, now); err != nil {
		t.Fatal(err)
	}
	if len(a.TopUps) != 1 || a.TopUps[0] != before {
		t.Fatalf("Apply mutated its input: %+v", a.TopUps)
	}
}

// A decision shares the maps of the account it was given until it writes one: the
// write must go to a copy. A second release of a resource not yet created rewrites an
// entry in place, which no generated history does.
func TestASecondReleaseBeforeTheCreateLeavesTheAccountItWasDecidedOnAsItWas(t *testing.T) {
	first := applyAll(t, openedAccount(t),
		event(t, events.ResourceReleased, "e-r1", day0, &events.ResourceReleasedData{ResourceID: "ecs-1"}))
	before := mustJSON(t, first)
	d, err := state.Apply(first, event(t, events.ResourceReleased, "e-r2", day0.Add(time.Hour), &events.ResourceReleasedData{ResourceID: "ecs-1"}), rules, now)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Changed {
		t.Fatal("the later release changed nothing: the test does not reach the rewrite")
	}
	if got := mustJSON(t, first); got != before {
		t.Fatalf("the account decided on changed:\n got %s\nwant %s", got, before)
	}
}

func TestBalanceChangesArePublishedWithDeterministicIDs(t *testing.T) {
	a := openedAccount(t)
	ev := event(t, events.TopupReceived, "e-t1", day0, topUp("t1", "100.00"))
	first, err := state.Apply(a, ev, rules, now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := state.Apply(a, ev, rules, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Outbound) != 1 {
		t.Fatalf("outbound = %d events, want 1 balance change", len(first.Outbound))
	}
	if first.Outbound[0].ID != second.Outbound[0].ID {
		t.Errorf("deciding the same event twice gave ids %s and %s", first.Outbound[0].ID, second.Outbound[0].ID)
	}
	out, err := onTheWire(first.Outbound[0])
	if err != nil {
		t.Fatalf("outbound event does not decode: %v", err)
	}
	data := out.Payload.(*events.BalanceChangedData)
	if out.Type != events.BalanceChanged || out.NATSSubject() != first.Outbound[0].NATSSubject() || !data.Cash.Equal(dec("100")) {
		t.Errorf("outbound = %s on %s cash %s", out.Type, first.Outbound[0].NATSSubject(), data.Cash)
	}
}

func TestOriginalRouteWindowsFollowTheBankTable(t *testing.T) {
	tests := []struct {
		name                   string
		channel, banking, bank string
		days                   int
	}{
		{"most banks allow 180 days", "online_banking", "personal", "ABC", 180},
		{"personal online banking at ICBC allows 30 days", "online_banking", "personal", "ICBC", 30},
		{"corporate online banking at ICBC allows 180 days", "online_banking", "corporate", "ICBC", 180},
		{"corporate online banking at Bank of Nanjing allows 30 days", "online_banking", "corporate", "NJCB", 30},
		{"China Merchants Bank allows 90 days", "online_banking", "corporate", "CMB", 90},
		{"Alipay gets the default window", "alipay", "", "", 180},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rules.RouteWindows.Days(tc.channel, tc.banking, tc.bank); got != tc.days {
				t.Errorf("Days = %d, want %d", got, tc.days)
			}
		})
	}
}

// An outbound event's id is its Nats-Msg-Id, and a cause decided again after an
// upgrade must publish under the ids the version before gave it, or JetStream would
// not drop the repeat: the derivation never changes (these were computed at 503cc65).
func TestOutboundIDsAreTheSameFromVersionToVersion(t *testing.T) {
	long := "evt-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789"
	for _, c := range []struct {
		account, cause string
		n              int
		want           string
	}{
		{"acct-1", "evt-1", 0, "rf-99e66696ab6c238810338517-0"},
		{"acct-42", "", 12, "rf-952ab1688e1aa49393bbafe3-12"},
		{"acct-9", long, 3, "rf-c1ad11e6d4cd12aed94bb438-3"},
	} {
		if got := state.OutboundID(c.account, c.cause, c.n); got != c.want {
			t.Errorf("OutboundID(%q, %q, %d) = %s, want %s", c.account, c.cause, c.n, got, c.want)
		}
	}
}

// A step's next version names the write (see Step.NextVersion): an instance of the
// version before and one of this version, deciding the same event on the same
// version, must name the same write, or a batch's later steps of the account would
// conflict with what the other saved. The golden values are the derivation at 503cc65
// (sha256 of the version, a zero byte and the event id; 16 hex digits), one of them
// with an event id longer than the buffer NextVersion hashes on the stack.
func TestANextVersionIsTheSameFromVersionToVersion(t *testing.T) {
	opened := state.NewAccount("acct-1")
	for _, c := range []struct{ expected, eventID, want string }{
		{"", "evt-1", "8f30a6d802df8111"},
		{"0123456789abcdef", "evt-42", "3e5c6747e515b237"},
		{"0123456789abcdef01234567", strings.Repeat("evt-0123456789", 12), "83cac91f1b683b5b"},
	} {
		st := state.Step{ExpectedVersion: c.expected, Account: &opened}
		st.Event.EventID = c.eventID
		if got := st.NextVersion(); got != c.want {
			t.Errorf("NextVersion after %q for %q = %s, want %s", c.expected, c.eventID, got, c.want)
		}
	}
	unchanged := state.Step{ExpectedVersion: "0123456789abcdef"}
	if got := unchanged.NextVersion(); got != "0123456789abcdef" {
		t.Errorf("a step that changes no account keeps its version, got %s", got)
	}
}

func TestTwoAccountsNeverShareAnOutboundIDEvenWhenTheirCausesDo(t *testing.T) {
	if state.OutboundID("acct-1", "evt-1", 0) == state.OutboundID("acct-2", "evt-1", 0) {
		t.Fatal("the same cause id on two accounts gives the same outbound id, so JetStream would drop one")
	}
	if state.OutboundID("acct-1", "evt-1", 0) == state.OutboundID("acct-1", "evt-1", 1) {
		t.Fatal("two events of one decision share an id")
	}
}
