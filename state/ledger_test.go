package state_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

func TestSeed001WorkedExampleWithdrawable200(t *testing.T) {
	l := seed001(t).ledger()
	wantDecimal(t, "cash", l.Cash, dec("1000"))
	wantDecimal(t, "transferred", l.Transferred, dec("500"))
	wantDecimal(t, "to settle (credit notes + overdue + unsettled)", l.ToSettle(), dec("700"))
	wantDecimal(t, "reserve", l.Reserve, dec("100"))
	wantDecimal(t, "withdrawable", l.Withdrawable, dec("200"))

	// "transferred amount + reserved amount + frozen cash for outstanding payments =
	// 500 + 100 + 200 = 800"
	parts := map[string]decimal.Decimal{}
	for _, p := range l.NonWithdrawable() {
		parts[p.Part] = p.Amount
	}
	wantDecimal(t, "transferred part", parts[state.PartTransferred], dec("500"))
	wantDecimal(t, "reserve part", parts[state.PartReserve], dec("100"))
	frozen := parts[state.PartOverdue].Add(parts[state.PartUnsettled]).Add(parts[state.PartCreditNotes])
	wantDecimal(t, "cash frozen for outstanding payments", frozen, dec("200"))
	wantPartsAddUp(t, l)
}

func TestWhenTransferredExceedsWhatMustBeSettledOnlyTheTransferredIsHeldBack(t *testing.T) {
	l := newHistory(t).topUp("t1", "500.00").transfer("tr1", "500.00").bill("b1", "300.00").ledger()
	wantDecimal(t, "withdrawable = cash − transferred", l.Withdrawable, dec("500"))
	parts := l.NonWithdrawable()
	if len(parts) != 1 || parts[0].Part != state.PartTransferred {
		t.Fatalf("parts %+v, want only the transferred funds", parts)
	}
}

func TestConsumptionDrawsFromTransferredFundsFirst(t *testing.T) {
	l := newHistory(t).topUp("t1", "100.00").transfer("tr1", "60.00").consume("80.00").ledger()
	wantDecimal(t, "transferred left", l.Transferred, dec("0"))
	wantDecimal(t, "top-up t1 remaining", l.TopUps[0].Remaining, dec("80"))
	wantDecimal(t, "withdrawable", l.Withdrawable, dec("80"))
}

func TestARecallTakesTransferredFundsBackAndConsumptionFallsOnTopUps(t *testing.T) {
	l := newHistory(t).topUp("t1", "100.00").transfer("tr1", "60.00").consume("50.00").recall("tr1", "60.00").ledger()
	wantDecimal(t, "transferred", l.Transferred, dec("0"))
	wantDecimal(t, "top-up t1 remaining", l.TopUps[0].Remaining, dec("50"))
	wantDecimal(t, "cash", l.Cash, dec("50"))
}

func TestVouchersNeverCountTowardCashOrWithdrawable(t *testing.T) {
	h := newHistory(t).topUp("t1", "100.00").
		add(events.VoucherGranted, &events.VoucherGrantedData{VoucherID: "v1", Amount: money("30.00")})
	voucherPart := money("10.00")
	h.add(events.ConsumptionRecorded, &events.ConsumptionRecordedData{ConsumptionID: "c1", Amount: money("5.00"), VoucherAmount: &voucherPart})
	l := h.ledger()
	wantDecimal(t, "vouchers (30 granted − 10 used)", l.Vouchers, dec("20"))
	wantDecimal(t, "cash (100 − the 5 cash part)", l.Cash, dec("95"))
	wantDecimal(t, "withdrawable", l.Withdrawable, dec("95"))
}

func TestUnsettledUsageIsHeldUntilItsCycleSettlesThenItIsConsumed(t *testing.T) {
	h := newHistory(t).topUp("t1", "1000.00").usage("2026-10", "120.00").usage("2026-10", "80.00")
	l := h.ledger()
	wantDecimal(t, "unsettled", l.Unsettled, dec("200"))
	wantDecimal(t, "withdrawable while unsettled", l.Withdrawable, dec("800"))

	h.add(events.CycleSettled, &events.CycleSettledData{Cycle: "2026-10", Amount: money("190.00")})
	l = h.ledger()
	wantDecimal(t, "unsettled after the cycle settles", l.Unsettled, dec("0"))
	wantDecimal(t, "cash after the settled 190 is consumed", l.Cash, dec("810"))

	t.Run("usage reported late for a settled cycle changes nothing", func(t *testing.T) {
		l := h.usage("2026-10", "5.00").ledger()
		wantDecimal(t, "unsettled", l.Unsettled, dec("0"))
		wantDecimal(t, "cash", l.Cash, dec("810"))
	})
}

func TestBillsAreOverdueUntilPaidAndPaidFromBalanceTheyAreConsumed(t *testing.T) {
	h := newHistory(t).topUp("t1", "1000.00").bill("b1", "300.00").bill("b2", "100.00")
	wantDecimal(t, "overdue", h.ledger().Overdue, dec("400"))
	h.add(events.BillPaid, &events.BillPaidData{BillID: "b1", Amount: money("300.00"), FromBalance: true})
	h.add(events.BillPaid, &events.BillPaidData{BillID: "b2", Amount: money("40.00")})
	l := h.ledger()
	wantDecimal(t, "overdue after paying b1 and 40 of b2", l.Overdue, dec("60"))
	wantDecimal(t, "cash: only b1, paid from the balance, is consumed", l.Cash, dec("700"))
}

func TestCreditNotesAreHeldUntilResolved(t *testing.T) {
	h := newHistory(t).topUp("t1", "1000.00").creditNote("cn1", "200.00")
	part := money("50.00")
	h.add(events.CreditNoteResolved, &events.CreditNoteData{CreditNoteID: "cn1", Amount: &part})
	wantDecimal(t, "credit notes after resolving 50", h.ledger().CreditNotes, dec("150"))
	h.add(events.CreditNoteResolved, &events.CreditNoteData{CreditNoteID: "cn1"})
	l := h.ledger()
	wantDecimal(t, "credit notes after resolving the rest", l.CreditNotes, dec("0"))
	wantDecimal(t, "withdrawable", l.Withdrawable, dec("1000"))
}

func TestThePayAsYouGoReserve(t *testing.T) {
	t.Run("a pay-as-you-go resource freezes the reserve and says so", func(t *testing.T) {
		a := newHistory(t).topUp("t1", "500.00").account()
		d, err := state.Apply(a, event(t, events.ResourceCreated, "e-r", day0.Add(48*time.Hour), &events.ResourceCreatedData{ResourceID: "ecs-1", BillingMode: "payg"}), rules, now)
		if err != nil {
			t.Fatal(err)
		}
		l := d.Account.Ledger(rules)
		wantDecimal(t, "withdrawable", l.Withdrawable, dec("400"))
		if l.ReserveState != state.ReserveFrozen {
			t.Errorf("reserve %s, want frozen", l.ReserveState)
		}
		if !publishes(t, d, events.ReserveFrozen) {
			t.Error("no refunds.reserve.frozen published")
		}
	})
	t.Run("a subscription resource does not", func(t *testing.T) {
		l := newHistory(t).topUp("t1", "500.00").resource("sub-1", "subscription").release("sub-1").ledger()
		if l.ReserveState != state.ReserveNone || !l.Withdrawable.Equal(dec("500")) {
			t.Errorf("reserve %s, withdrawable %s", l.ReserveState, l.Withdrawable)
		}
	})
	t.Run("releasing the last resource starts the countdown from the release's time", func(t *testing.T) {
		h := newHistory(t).topUp("t1", "500.00").resource("ecs-1", "payg").resource("ecs-2", "payg").release("ecs-1")
		if l := h.ledger(); l.ReserveState != state.ReserveFrozen {
			t.Fatalf("reserve %s with one resource still active, want frozen", l.ReserveState)
		}
		h.release("ecs-2")
		l := h.ledger()
		if l.ReserveState != state.ReserveCountingDown || !l.ReserveUnfreeze.Equal(h.at.Add(24*time.Hour)) {
			t.Fatalf("reserve %s until %v, want counting down to %v", l.ReserveState, l.ReserveUnfreeze, h.at.Add(24*time.Hour))
		}
		wantDecimal(t, "withdrawable while counting down", l.Withdrawable, dec("400"))
		parts := l.NonWithdrawable()
		if len(parts) != 1 || parts[0].Part != state.PartReserve || parts[0].Until == nil || !parts[0].Until.Equal(*l.ReserveUnfreeze) {
			t.Errorf("parts %+v, want the reserve until its unfreeze time", parts)
		}
	})
	t.Run("a late release with an older time never shortens the countdown", func(t *testing.T) {
		h := newHistory(t).resource("ecs-1", "payg").resource("ecs-2", "payg").release("ecs-2")
		latest := h.at
		a := applyAll(t, h.account(), event(t, events.ResourceReleased, "e-old", day0, &events.ResourceReleasedData{ResourceID: "ecs-1"}))
		if l := a.Ledger(rules); !l.ReserveUnfreeze.Equal(latest.Add(24 * time.Hour)) {
			t.Fatalf("unfreeze at %v, want %v", l.ReserveUnfreeze, latest.Add(24*time.Hour))
		}
	})
	t.Run("a release before its create is kept, not refused", func(t *testing.T) {
		l := newHistory(t).release("ecs-9").resource("ecs-9", "payg").ledger()
		if l.ReserveState != state.ReserveCountingDown {
			t.Fatalf("reserve %s, want counting down from the early release", l.ReserveState)
		}
	})
	t.Run("a new pay-as-you-go resource cancels the countdown", func(t *testing.T) {
		l := newHistory(t).resource("ecs-1", "payg").release("ecs-1").resource("ecs-2", "payg").ledger()
		if l.ReserveState != state.ReserveFrozen || l.ReserveUnfreeze != nil {
			t.Fatalf("reserve %s until %v, want frozen", l.ReserveState, l.ReserveUnfreeze)
		}
	})
}

func TestLedgerRefusalsChangeNothingAndSayWhy(t *testing.T) {
	base := newHistory(t).topUp("t1", "100.00").transfer("tr1", "50.00").bill("b1", "30.00").creditNote("cn1", "20.00").
		add(events.CycleSettled, &events.CycleSettledData{Cycle: "2026-10", Amount: money("10.00")}).account()
	tooMuch := money("25.00")
	tests := []struct {
		name   string
		typ    events.Type
		p      events.Payload
		reason string
	}{
		{"a recall above what was transferred", events.TransferRecalled, &events.TransferRecalledData{TransferID: "tr1", Amount: money("50.01")}, "exceeds"},
		{"a payment above the bill's unpaid amount", events.BillPaid, &events.BillPaidData{BillID: "b1", Amount: money("30.01")}, "exceeds"},
		{"resolving more than the credit note", events.CreditNoteResolved, &events.CreditNoteData{CreditNoteID: "cn1", Amount: &tooMuch}, "exceeds"},
		{"a credit note without an amount", events.CreditNoteIssued, &events.CreditNoteData{CreditNoteID: "cn2"}, "without an amount"},
		{"a transfer in another currency", events.TransferReceived, &events.TransferReceivedData{TransferID: "tr2", Amount: money("1.00"), Currency: "USD"}, "currency USD"},
		{"a voucher in another currency", events.VoucherGranted, &events.VoucherGrantedData{VoucherID: "v1", Amount: money("1.00"), Currency: "EUR"}, "currency EUR"},
		{"a cycle settled twice at different amounts", events.CycleSettled, &events.CycleSettledData{Cycle: "2026-10", Amount: money("11.00")}, "already settled"},
		{"a bill issued twice at different amounts", events.BillIssued, &events.BillIssuedData{BillID: "b1", Amount: money("31.00")}, "already issued"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.Apply(base, event(t, tc.typ, "e-refused", day0, tc.p), rules, now)
			wantRefusal(t, err)
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("reason %q does not say %q", err, tc.reason)
			}
		})
	}
}

func TestAReferenceWhoseParentMayBeLateWaits(t *testing.T) {
	base := newHistory(t).topUp("t1", "100.00").account()
	tests := []struct {
		name string
		typ  events.Type
		p    events.Payload
	}{
		{"a recall of a transfer not yet received", events.TransferRecalled, &events.TransferRecalledData{TransferID: "tr-late", Amount: money("1.00")}},
		{"a payment of a bill not yet issued", events.BillPaid, &events.BillPaidData{BillID: "b-late", Amount: money("1.00")}},
		{"a resolution of a credit note not yet issued", events.CreditNoteResolved, &events.CreditNoteData{CreditNoteID: "cn-late"}},
		{"a reversal of an invoice not yet issued", events.InvoiceReversed, &events.InvoiceData{InvoiceID: "i-late"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.Apply(base, event(t, tc.typ, "e-waits", day0, tc.p), rules, now)
			var w *state.Waiting
			if !errors.As(err, &w) {
				t.Fatalf("error %v, want waiting", err)
			}
		})
	}
}

func TestAnEventDatedAheadOfNowBeyondTheClockSkewWaitsForItsTime(t *testing.T) {
	base := newHistory(t).resource("ecs-1", "payg").account()
	release := &events.ResourceReleasedData{ResourceID: "ecs-1"}
	_, err := state.Apply(base, event(t, events.ResourceReleased, "e-2099", now.Add(rules.ClockSkew+time.Second), release), rules, now)
	var w *state.Waiting
	if !errors.As(err, &w) {
		t.Fatalf("a release from the future: error %v, want waiting", err)
	}
	if _, err := state.Apply(base, event(t, events.ResourceReleased, "e-skewed", now.Add(rules.ClockSkew), release), rules, now); err != nil {
		t.Fatalf("a release within the clock skew: %v", err)
	}
}

func TestACountdownStartedByAReleaseBeforeItsCreateSaysTheReserveFroze(t *testing.T) {
	a := newHistory(t).release("ecs-1").account()
	d, err := state.Apply(a, event(t, events.ResourceCreated, "e-c", day0, &events.ResourceCreatedData{ResourceID: "ecs-1", BillingMode: "payg"}), rules, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Account.Ledger(rules).ReserveState != state.ReserveCountingDown || !publishes(t, d, events.ReserveFrozen) {
		t.Fatal("the reserve went from none to counting down without refunds.reserve.frozen")
	}
}

func TestReleasesOfResourcesNeverCreatedAreBounded(t *testing.T) {
	few := rules
	few.MaxOrphanReleases = 2
	a := newHistory(t).release("ghost-1").release("ghost-2").account()
	_, err := state.Apply(a, event(t, events.ResourceReleased, "e-g3", day0, &events.ResourceReleasedData{ResourceID: "ghost-3"}), few, now)
	var w *state.Waiting
	if !errors.As(err, &w) {
		t.Fatalf("error %v: a release over the cap must wait, not be lost", err)
	}
}

func TestATopUpsWithdrawableIsNeverAboveTheAccounts(t *testing.T) {
	l := newHistory(t).topUp("t1", "300.00").topUp("t2", "300.00").bill("b1", "500.00").ledger()
	wantDecimal(t, "account withdrawable", l.Withdrawable, dec("100"))
	for _, tu := range l.TopUps {
		if tu.Withdrawable.GreaterThan(l.Withdrawable) {
			t.Errorf("top-up %s withdrawable %s above the account's %s", tu.ID, tu.Withdrawable, l.Withdrawable)
		}
	}
	wantDecimal(t, "t1 withdrawable", l.TopUps[0].Withdrawable, dec("100"))
}

func publishes(t *testing.T, d state.Decision, typ events.Type) bool {
	t.Helper()
	for _, out := range d.Outbound {
		ev, err := onTheWire(out)
		if err != nil {
			t.Fatalf("outbound %s does not decode: %v", out.NATSSubject(), err)
		}
		if ev.Type == typ {
			return true
		}
	}
	return false
}

// wantPartsAddUp checks the non-withdrawable parts add up exactly to cash − withdrawable.
func wantPartsAddUp(t testing.TB, l state.Ledger) {
	t.Helper()
	sum := decimal.Zero
	for _, p := range l.NonWithdrawable() {
		if !p.Amount.IsPositive() {
			t.Errorf("part %s shown with amount %s", p.Part, p.Amount)
		}
		sum = sum.Add(p.Amount)
	}
	wantDecimal(t, "sum of non-withdrawable parts", sum, l.Cash.Sub(l.Withdrawable))
}

// A decision keeps its account's top-up sums for the next one; top-ups set from
// outside the engine (a decoder, a test) are summed again rather than trusted to them.
func TestBalancesFollowTopUpsReplacedFromOutside(t *testing.T) {
	a := applyAll(t, openedAccount(t), event(t, events.TopupReceived, "e-t1", day0, topUp("t1", "100.00")))
	a.TopUps = append(slices.Clone(a.TopUps), state.TopUp{ID: "t2", Amount: decimal.RequireFromString("50.00"), Channel: "alipay", ReceivedAt: day0.Add(time.Hour)})
	if got := state.BalancesForTest(a, rules).Cash; !got.Equal(decimal.RequireFromString("150.00")) {
		t.Fatalf("cash = %s, want 150.00: the sums kept for the old top-ups were used", got)
	}
}
