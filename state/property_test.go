package state_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// Property tests: generated event sets for one account, applied in many orders.
// Each set is built from a seed that failures print, so a failure reproduces with
// go test -run 'TestProperty.*/seed=N'.

const (
	propertySets         = 300
	permutationsPerSet   = 8
	propertySetsInShort  = 40
	generatedDaysOfEvent = 20 // from day0, so every event is before the tests' now
)

// generator makes a random but valid history: every child refers to a parent in the
// set, and no amount overdraws its parent in any order.
type generator struct {
	r      *rand.Rand
	t      testing.TB
	events []events.Event
}

func (g *generator) cents(min, max int64) events.Amount {
	return events.Amount{Decimal: decimal.New(min+g.r.Int64N(max-min+1), -2)}
}

func (g *generator) add(typ events.Type, p events.Payload) {
	at := day0.Add(time.Duration(g.r.Int64N(generatedDaysOfEvent*24)) * time.Hour)
	g.events = append(g.events, event(g.t, typ, fmt.Sprintf("e-%d", len(g.events)), at, p))
}

// split divides total into n positive parts of whole cents (fewer if total is small).
func (g *generator) split(total decimal.Decimal, n int) []events.Amount {
	left := total.Shift(2).IntPart()
	var parts []events.Amount
	for i := 0; i < n-1 && left > 1; i++ {
		c := 1 + g.r.Int64N(left-1)
		parts = append(parts, events.Amount{Decimal: decimal.New(c, -2)})
		left -= c
	}
	return append(parts, events.Amount{Decimal: decimal.New(left, -2)})
}

func generateHistory(t testing.TB, seed uint64) []events.Event {
	g := &generator{r: rand.New(rand.NewPCG(seed, 42)), t: t}
	g.events = append(g.events, event(t, events.AccountOpened, "e-open", day0, opened()))
	channels := []string{"alipay", "online_banking", "bank_card", "stripe"}
	for i := range 1 + g.r.IntN(8) {
		g.add(events.TopupReceived, &events.TopupReceivedData{
			TopupID: fmt.Sprintf("t%d", i), Amount: g.cents(1, 200000), Currency: "CNY",
			Channel: channels[g.r.IntN(len(channels))], Bank: "ICBC", Banking: "personal", PayerType: "individual", PayerName: "Zhang San",
		})
	}
	for i := range g.r.IntN(8) {
		p := &events.ConsumptionRecordedData{ConsumptionID: fmt.Sprintf("c%d", i), Amount: g.cents(1, 150000)}
		if g.r.IntN(3) == 0 {
			v := g.cents(1, 5000)
			p.VoucherAmount = &v
		}
		g.add(events.ConsumptionRecorded, p)
	}
	for i := range g.r.IntN(3) {
		g.add(events.VoucherGranted, &events.VoucherGrantedData{VoucherID: fmt.Sprintf("v%d", i), Amount: g.cents(1, 10000)})
	}
	for i := range g.r.IntN(4) {
		id, amount := fmt.Sprintf("tr%d", i), g.cents(100, 100000)
		g.add(events.TransferReceived, &events.TransferReceivedData{TransferID: id, Amount: amount})
		if g.r.IntN(2) == 0 {
			for _, part := range g.split(amount.Decimal, 1+g.r.IntN(2)) {
				g.add(events.TransferRecalled, &events.TransferRecalledData{TransferID: id, Amount: part})
			}
		}
	}
	for i := range g.r.IntN(4) {
		cycle := fmt.Sprintf("2026-%02d", i+1)
		for j := range 1 + g.r.IntN(3) {
			g.add(events.UsageAccrued, &events.UsageAccruedData{UsageID: fmt.Sprintf("u%d-%d", i, j), Cycle: cycle, Amount: g.cents(1, 30000)})
		}
		if g.r.IntN(2) == 0 {
			g.add(events.CycleSettled, &events.CycleSettledData{Cycle: cycle, Amount: g.cents(0, 60000)})
		}
	}
	for i := range g.r.IntN(4) {
		id, amount := fmt.Sprintf("b%d", i), g.cents(100, 80000)
		g.add(events.BillIssued, &events.BillIssuedData{BillID: id, Amount: amount})
		if g.r.IntN(3) > 0 {
			for _, part := range g.split(amount.Decimal, 1+g.r.IntN(3)) {
				g.add(events.BillPaid, &events.BillPaidData{BillID: id, Amount: part, FromBalance: g.r.IntN(2) == 0})
			}
		}
	}
	for i := range g.r.IntN(3) {
		id, amount := fmt.Sprintf("cn%d", i), g.cents(100, 50000)
		g.add(events.CreditNoteIssued, &events.CreditNoteData{CreditNoteID: id, Amount: &amount})
		switch g.r.IntN(3) {
		case 0:
			g.add(events.CreditNoteResolved, &events.CreditNoteData{CreditNoteID: id})
		case 1:
			part := g.split(amount.Decimal, 2)[0]
			g.add(events.CreditNoteResolved, &events.CreditNoteData{CreditNoteID: id, Amount: &part})
		}
	}
	for i := range g.r.IntN(3) {
		id := fmt.Sprintf("i%d", i)
		g.add(events.InvoiceIssued, &events.InvoiceData{InvoiceID: id, TopupID: "t0"})
		if g.r.IntN(2) == 0 {
			g.add(events.InvoiceReversed, &events.InvoiceData{InvoiceID: id})
		}
	}
	for i := range g.r.IntN(5) {
		id, mode := fmt.Sprintf("r%d", i), []string{"payg", "subscription"}[g.r.IntN(2)]
		g.add(events.ResourceCreated, &events.ResourceCreatedData{ResourceID: id, BillingMode: mode})
		if g.r.IntN(3) > 0 {
			g.add(events.ResourceReleased, &events.ResourceReleasedData{ResourceID: id})
		}
	}
	return g.events
}

// deliver applies events as the intake would: an event that must wait goes to the back
// of the queue (JetStream redelivers it later), and delivery stops when only waiting
// events are left. Each step goes through JSON, as the store saves it. after is called
// with the account after every applied event, and the events applied so far.
func deliver(t testing.TB, evs []events.Event, after func(state.Account, []events.Event)) state.Account {
	a, _ := deliverCounting(t, evs, after)
	return a
}

// decidedAccountsKept makes deliverCounting decide each event on the account the
// previous decision returned, as the store's cache does, with what a decision keeps
// for the next one (balances, top-up sums). Off, each account is first saved and read
// back (as JSON), as from a store without a cache.
var decidedAccountsKept bool

// refusalsAllowed lets deliverCounting skip refused events, as the engine dead-letters
// them, for histories where arrival order can make an event impossible (consumption of
// a package after its refund). Off, a refusal fails the test.
var refusalsAllowed bool

// deliverCounting is deliver, also returning how many events were left waiting. It
// keeps ended cases apart as the store does, and attaches the one an event names.
func deliverCounting(t testing.TB, evs []events.Event, after func(state.Account, []events.Event)) (state.Account, int) {
	t.Helper()
	a := state.NewAccount(account)
	ended := make(map[string]state.Case)
	var applied []events.Event
	queue := append([]events.Event(nil), evs...)
	for waited := 0; len(queue) > 0 && waited < len(queue); {
		ev := queue[0]
		queue = queue[1:]
		given := a
		if c, ok := ended[ev.CaseRef()]; ok {
			given = a.WithClosedCases(map[string]state.Case{c.ID: c})
		}
		// The store caches accounts and shares them between decisions: Apply must never
		// change the account it is given, maps included.
		before := mustJSON(t, given)
		d, err := state.Apply(given, ev, rules, now)
		if mustJSON(t, given) != before {
			t.Fatalf("apply %s %s changed the account it was given", ev.Type, ev.ID)
		}
		var w *state.Waiting
		var refused *state.Refusal
		switch {
		case errors.As(err, &w):
			queue = append(queue, ev)
			waited++
			continue
		case refusalsAllowed && errors.As(err, &refused):
			waited = 0
			continue
		case err != nil:
			t.Fatalf("apply %s %s: %v", ev.Type, ev.ID, err)
		}
		waited = 0
		for _, c := range d.ClosedCases {
			if _, open := d.Account.Cases[c.ID]; open {
				t.Fatalf("case %s is both open and ended", c.ID)
			}
			ended[c.ID] = c
		}
		a = d.Account
		if !decidedAccountsKept {
			a = roundTrip(t, a)
		}
		applied = append(applied, ev)
		if after != nil {
			after(a.WithClosedCases(ended), applied)
		}
	}
	return a, len(queue)
}

func roundTrip(t testing.TB, a state.Account) state.Account {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back state.Account
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

func shuffled(r *rand.Rand, evs []events.Event) []events.Event {
	out := append([]events.Event(nil), evs...)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func propertyRuns(t *testing.T) int {
	if testing.Short() {
		return propertySetsInShort
	}
	return propertySets
}

func TestPropertyArrivalOrderDoesNotMatter(t *testing.T) {
	for seed := range uint64(propertyRuns(t)) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			evs := generateHistory(t, seed)
			inOrder, left := deliverCounting(t, evs, nil)
			if left != 0 {
				t.Fatalf("%d of %d events still wait after an in-order delivery: the generator or a rule is wrong", left, len(evs))
			}
			want := mustJSON(t, inOrder)
			wantView := mustJSON(t, inOrder.Ledger(rules))
			r := rand.New(rand.NewPCG(seed, 7))
			for p := range permutationsPerSet {
				got := deliver(t, shuffled(r, evs), nil)
				if doc := mustJSON(t, got); doc != want {
					t.Fatalf("permutation %d of %d events gives another account:\n got %s\nwant %s", p, len(evs), doc, want)
				}
				if view := mustJSON(t, got.Ledger(rules)); view != wantView {
					t.Fatalf("permutation %d gives another view:\n got %s\nwant %s", p, view, wantView)
				}
			}
		})
	}
}

// withWithdrawals adds withdrawals to a generated history: requests by either route on
// random top-ups (some too large, some with a reused id), review decisions, payout
// results (some failed, some reversed after success, some for a forged payout id).
// Their outcome depends on arrival order (a request is decided on the balance of its
// moment), so only the invariants are checked, not equal results.
func withWithdrawals(t testing.TB, seed uint64, evs []events.Event) []events.Event {
	g := &generator{r: rand.New(rand.NewPCG(seed, 99)), t: t, events: evs}
	topups := 0
	for _, ev := range evs {
		if ev.Type == events.TopupReceived {
			topups++
		}
	}
	for i := range 1 + g.r.IntN(6) {
		id := fmt.Sprintf("w%d", i)
		p := &events.WithdrawalRequestedData{WithdrawalID: id, TopupID: fmt.Sprintf("t%d", g.r.IntN(topups)), Amount: g.cents(1, 120000), Method: events.MethodOriginal}
		designated := g.r.IntN(3) == 0
		if designated {
			p.Method = events.MethodDesignated
			p.Destination = &events.Destination{Kind: events.DestinationAlipay, AccountNo: "alipay-7", PayeeName: "Zhang San"}
			if g.r.IntN(3) == 0 {
				p.TopupID = "" // a non-top-up application
			}
		}
		g.add(events.WithdrawalRequested, p)
		if designated {
			decision := []string{events.DecisionApproved, events.DecisionRejected}[g.r.IntN(2)]
			g.add(events.CaseDecided, &events.CaseDecidedData{CaseID: id, Decision: decision, Reviewer: "r"})
		}
		switch g.r.IntN(5) {
		case 0, 1:
			g.add(events.PayoutReported, &events.PayoutReportedData{PayoutID: "po-" + id, CaseID: id, Status: events.PayoutSucceeded})
		case 2:
			g.add(events.PayoutReported, &events.PayoutReportedData{PayoutID: "po-" + id, CaseID: id, Status: events.PayoutFailed})
		case 3:
			g.add(events.PayoutReported, &events.PayoutReportedData{PayoutID: "po-" + id, CaseID: id, Status: events.PayoutSucceeded})
			g.add(events.PayoutReported, &events.PayoutReportedData{PayoutID: "po-" + id, CaseID: id, Status: events.PayoutFailed})
		case 4:
			g.add(events.PayoutReported, &events.PayoutReportedData{PayoutID: "po-forged", CaseID: id, Status: events.PayoutSucceeded})
		}
	}
	return g.events
}

// withRefunds adds package and order refunds to a history: purchases, consumption and
// refunds credited to the balance, in any order.
func withRefunds(t testing.TB, seed uint64, evs []events.Event) []events.Event {
	g := &generator{r: rand.New(rand.NewPCG(seed, 77)), t: t, events: evs}
	for i := range g.r.IntN(3) {
		id := fmt.Sprintf("pk%d", i)
		price, n := g.cents(0, 50000), int64(1+g.r.IntN(10))
		g.add(events.PackagePurchased, &events.PackageData{PackageID: id, Price: &price, Units: n})
		if g.r.IntN(2) == 0 {
			g.add(events.PackageConsumed, &events.PackageData{PackageID: id, Units: 1})
		}
		g.add(events.RefundRequested, &events.RefundRequestedData{RefundID: "r-" + id, Kind: events.RefundPackage, PackageID: id})
	}
	for i := range g.r.IntN(2) {
		id := fmt.Sprintf("o%d", i)
		amount := g.cents(1, 50000)
		g.add(events.OrderPurchased, &events.OrderData{OrderID: id, Amount: &amount, PaymentMethod: "card"})
		g.add(events.RefundRequested, &events.RefundRequestedData{RefundID: "r-" + id, Kind: events.RefundOrder, OrderID: id, ToBalance: true, Reason: "duplicate_charge"})
		g.add(events.CaseDecided, &events.CaseDecidedData{CaseID: "r-" + id, Decision: events.DecisionApproved, Reviewer: "r"})
	}
	return g.events
}

func TestPropertyWithdrawalsConserveMoneyAndHoldWithinCashInAnyOrder(t *testing.T) {
	forEachHistoryWithCases(t, func(t *testing.T, seed uint64, evs []events.Event) {
		r := rand.New(rand.NewPCG(seed, 13))
		for range 3 {
			deliver(t, shuffled(r, evs), func(a state.Account, applied []events.Event) {
				t.Helper()
				wantConserved(t, a, applied)
			})
		}
	})
}

// forEachHistoryWithCases runs check, as a subtest per seed, on each seed's history
// with withdrawals and refunds. Refusals are allowed while it runs: arrival order can
// make such an event impossible (consumption of a package after its refund).
func forEachHistoryWithCases(t *testing.T, check func(t *testing.T, seed uint64, evs []events.Event)) {
	t.Helper()
	refusalsAllowed = true
	t.Cleanup(func() { refusalsAllowed = false })
	for seed := range uint64(propertyRuns(t)) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			check(t, seed, withRefunds(t, seed, withWithdrawals(t, seed, generateHistory(t, seed))))
		})
	}
}

func TestPropertyMoneyIsConservedAfterEveryEvent(t *testing.T) {
	for seed := range uint64(propertyRuns(t)) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			evs := shuffled(rand.New(rand.NewPCG(seed, 11)), generateHistory(t, seed))
			deliver(t, evs, func(a state.Account, applied []events.Event) {
				t.Helper()
				wantConserved(t, a, applied)
			})
		})
	}
}

// wantConserved checks, for one account at one moment: everything received =
// consumed + withdrawn + held + remaining, and the balances hang together. What was
// received and consumed is summed from the applied events themselves, not taken from
// the ledger under test.
func wantConserved(t testing.TB, a state.Account, applied []events.Event) {
	t.Helper()
	l := a.Ledger(rules)
	received, consumed := decimal.Zero, decimal.Zero
	for _, ev := range applied {
		switch p := ev.Payload.(type) {
		case *events.TopupReceivedData:
			received = received.Add(p.Amount.Decimal)
		case *events.TransferReceivedData:
			received = received.Add(p.Amount.Decimal)
		case *events.TransferRecalledData:
			received = received.Sub(p.Amount.Decimal)
		case *events.ConsumptionRecordedData:
			consumed = consumed.Add(p.Amount.Decimal)
		case *events.CycleSettledData:
			consumed = consumed.Add(p.Amount.Decimal)
		case *events.BillPaidData:
			if p.FromBalance {
				consumed = consumed.Add(p.Amount.Decimal)
			}
		}
	}
	// Consumption no money covers yet is not consumed money: it is unfunded.
	consumed = consumed.Sub(l.Unfunded)
	remaining := l.Transferred
	for _, tu := range l.TopUps {
		remaining = remaining.Add(tu.Remaining)
		if tu.Remaining.IsNegative() || tu.Consumed.IsNegative() || !tu.Consumed.Add(tu.PaidOut).Add(tu.Remaining).Equal(tu.Amount) {
			t.Fatalf("top-up %s: consumed %s + paid out %s + remaining %s != amount %s", tu.ID, tu.Consumed, tu.PaidOut, tu.Remaining, tu.Amount)
		}
		if tu.Held.IsNegative() || tu.Held.GreaterThan(tu.Remaining) {
			t.Fatalf("top-up %s holds %s of its remaining %s", tu.ID, tu.Held, tu.Remaining)
		}
		if tu.Withdrawable.GreaterThan(l.Withdrawable) || tu.Withdrawable.GreaterThan(tu.Remaining) {
			t.Fatalf("top-up %s withdrawable %s above its remainder %s or the account's %s", tu.ID, tu.Withdrawable, tu.Remaining, l.Withdrawable)
		}
	}
	// Withdrawn is summed from the cases, not taken from the ledger: every succeeded
	// withdrawal, and nothing else.
	withdrawn := decimal.Zero
	for _, c := range a.AllCases() {
		if c.Status == events.StatusSucceeded {
			withdrawn = withdrawn.Add(c.Amount)
		}
	}
	// Refunds credited to the balance came in too.
	received = received.Add(l.Credited)
	remaining = remaining.Add(l.NonTopUp)
	// Cash includes what is held: "remaining" in seed terms is cash less held.
	if !received.Equal(consumed.Add(withdrawn).Add(l.Held).Add(remaining.Sub(l.Held))) {
		t.Fatalf("received %s != consumed %s + withdrawn %s + held %s + remaining %s", received, consumed, withdrawn, l.Held, remaining.Sub(l.Held))
	}
	if l.Held.IsNegative() || l.Held.GreaterThan(l.Cash) {
		t.Fatalf("held %s outside [0, cash %s]", l.Held, l.Cash)
	}
	if !l.PaidOut.Equal(withdrawn) {
		t.Fatalf("ledger paid out %s, the succeeded cases %s", l.PaidOut, withdrawn)
	}
	if !l.Received.Add(l.Credited).Equal(received) || !l.Consumed.Equal(consumed) {
		t.Fatalf("ledger says received %s consumed %s; the events say %s and %s", l.Received, l.Consumed, received, consumed)
	}
	if !l.Cash.Equal(remaining) {
		t.Fatalf("cash %s != top-up remainders + transferred %s", l.Cash, remaining)
	}
	if !l.Consumed.Add(l.Unfunded).Equal(a.Consumed) {
		t.Fatalf("funded %s + unfunded %s != consumption recorded %s", l.Consumed, l.Unfunded, a.Consumed)
	}
	for name, q := range map[string]decimal.Decimal{
		"cash": l.Cash, "transferred": l.Transferred, "vouchers": l.Vouchers, "credit notes": l.CreditNotes,
		"overdue": l.Overdue, "unsettled": l.Unsettled, "withdrawable": l.Withdrawable, "unfunded": l.Unfunded,
	} {
		if q.IsNegative() {
			t.Fatalf("%s is negative: %s", name, q)
		}
	}
	if l.Withdrawable.GreaterThan(l.Cash) {
		t.Fatalf("withdrawable %s above cash %s", l.Withdrawable, l.Cash)
	}
	wantPartsAddUp(t, l)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The balances a decision computes for every event, from sums over the top-ups, are
// the ledger's own, computed top-up by top-up: after every event of any history with
// withdrawals and refunds (holds, payouts, non-top-up funds), in any order.
func TestPropertyBalancesFromSumsEqualTheLedgerTopUpByTopUp(t *testing.T) {
	for _, kept := range []bool{false, true} {
		t.Run(fmt.Sprintf("decided accounts kept=%v", kept), func(t *testing.T) {
			decidedAccountsKept = kept
			t.Cleanup(func() { decidedAccountsKept = false })
			checkBalancesFromSumsEqualTheLedger(t)
		})
	}
}

func checkBalancesFromSumsEqualTheLedger(t *testing.T) {
	forEachHistoryWithCases(t, func(t *testing.T, seed uint64, evs []events.Event) {
		deliver(t, shuffled(rand.New(rand.NewPCG(seed, 17)), evs), func(a state.Account, applied []events.Event) {
			t.Helper()
			full := a.Ledger(rules)
			full.TopUps = nil
			if got, want := mustJSON(t, state.BalancesForTest(a, rules)), mustJSON(t, full); got != want {
				t.Fatalf("after %d events the balances are\n%s\nwant the ledger's\n%s", len(applied), got, want)
			}
		})
	})
}
