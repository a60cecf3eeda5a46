// Package workload generates seeded, realistic histories of inbound events for many
// accounts: what billing, the console, finance review and the payout gateway would
// publish, with the faults of a real upstream (duplicates, events out of order, an
// event the engine must refuse). The chaos test and the end-to-end bench publish it.
//
// Every history is built so that its final state does not depend on the order in which
// the engine happens to decide its events: amounts leave wide margins under every
// limit, so no withdrawal is refused because a consumption overtook it, each account
// has one pay-as-you-go resource (one reserve countdown), and holders' names are
// unique (no cross-account risk rule). So a single in-memory replay in publish order
// (state.Rebuild) is what the engine must end with, however it is killed on the way.
package workload

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
)

// Options shape a workload. Zero values take the defaults given.
type Options struct {
	Accounts int    // how many accounts; default 100
	Seed     uint64 // the same seed gives the same workload
	// Start is the time of the first event. Events of one account span about 15
	// minutes after it. Default: 20 minutes before now, so every expected completion
	// time (an hour and more after a case opens) is still ahead while a run lasts.
	Start time.Time
	// Duplicates is the share of events published a second time with the same
	// Nats-Msg-Id, which JetStream drops inside its duplicate window. Default 0.05.
	Duplicates float64
	// LateDuplicates is the share published again under another Nats-Msg-Id, as a
	// publisher retrying past JetStream's duplicate window would: only the engine's own
	// idempotency can drop these. Default 0.03.
	LateDuplicates float64
	// OutOfOrder is the share of dependent events (a review decision, a payout result,
	// a bill's payment, a recall, a release) published before what they depend on.
	// Default 0.2.
	OutOfOrder float64
	// RefusedEvery makes one account in every RefusedEvery receive a top-up in another
	// currency, which the engine must refuse (dead-letter). Default 10; -1 for none.
	RefusedEvery int
	// Spread is the share of the stream one account's events are published over,
	// from a start drawn at random for each account, in (0, 1). The stream is then at
	// each moment a mix of accounts at every stage of their history, as a console's
	// traffic is, apart from its first and last Spread. By default (0, or 1 and more)
	// the accounts are interleaved at random from the start: every account is at the
	// same stage at the same time, so the stream's last third is its withdrawals,
	// reviews and payouts.
	Spread float64
}

func (o Options) withDefaults() Options {
	if o.Accounts <= 0 {
		o.Accounts = 100
	}
	if o.Start.IsZero() {
		o.Start = time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Second)
	}
	if o.Duplicates == 0 {
		o.Duplicates = 0.05
	}
	if o.LateDuplicates == 0 {
		o.LateDuplicates = 0.03
	}
	if o.OutOfOrder == 0 {
		o.OutOfOrder = 0.2
	}
	if o.RefusedEvery == 0 {
		o.RefusedEvery = 10
	}
	return o
}

// Publication is one publish: an event and the Nats-Msg-Id it is published with.
type Publication struct {
	Event events.Event
	MsgID string
}

// Workload is what to publish, in order, and what it should come to.
type Workload struct {
	Publications []Publication
	// Accounts are the account ids, in the order they were generated.
	Accounts []string
	// History is each account's distinct events in publish order: what a replay takes.
	History map[string][]events.Event
	// Refused are the ids of the events the engine must refuse.
	Refused map[string]bool
	// Counts of what was generated, for reports.
	Events, SameIDDuplicates, LateDuplicates, OutOfOrder int
}

// Generate builds a workload.
func Generate(opts Options) Workload {
	o := opts.withDefaults()
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	w := Workload{History: map[string][]events.Event{}, Refused: map[string]bool{}}
	var perAccount [][]events.Event
	for i := range o.Accounts {
		acct := fmt.Sprintf("acct-%06d", i)
		g := &account{id: acct, r: r, at: o.Start, opts: o}
		g.history(i)
		w.OutOfOrder += g.moved
		for id := range g.refused {
			w.Refused[id] = true
		}
		w.Accounts = append(w.Accounts, acct)
		w.History[acct] = g.events
		perAccount = append(perAccount, g.events)
	}
	if o.Spread > 0 && o.Spread < 1 {
		w.publishSpread(perAccount, r, o)
	} else {
		w.publishInterleaved(perAccount, r, o)
	}
	w.addLateDuplicates(r, o)
	return w
}

// publishInterleaved publishes the accounts' events interleaved at random, keeping
// each account's own order.
func (w *Workload) publishInterleaved(perAccount [][]events.Event, r *rand.Rand, o Options) {
	next := make([]int, len(perAccount))
	var live []int
	for i := range perAccount {
		live = append(live, i)
	}
	for len(live) > 0 {
		k := r.IntN(len(live))
		a := live[k]
		ev := perAccount[a][next[a]]
		next[a]++
		if next[a] == len(perAccount[a]) {
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
		}
		w.publish(ev, r, o)
	}
}

// publishSpread publishes each account's events, in its own order, evenly over a
// window of o.Spread of the stream that starts at a random point.
func (w *Workload) publishSpread(perAccount [][]events.Event, r *rand.Rand, o Options) {
	type placed struct {
		at float64 // where in the stream, in [0, 1)
		ev events.Event
	}
	var all []placed
	for _, evs := range perAccount {
		start := r.Float64() * (1 - o.Spread)
		for k, ev := range evs {
			all = append(all, placed{at: start + o.Spread*float64(k)/float64(len(evs)), ev: ev})
		}
	}
	// Stable: an account's events never share a place, so its order is kept.
	sort.SliceStable(all, func(a, b int) bool { return all[a].at < all[b].at })
	for _, p := range all {
		w.publish(p.ev, r, o)
	}
}

// publish appends an event's publication, and with the workload's share a second one
// under the same message id.
func (w *Workload) publish(ev events.Event, r *rand.Rand, o Options) {
	w.Events++
	w.Publications = append(w.Publications, Publication{Event: ev, MsgID: ev.ID})
	if r.Float64() < o.Duplicates {
		w.SameIDDuplicates++
		w.Publications = append(w.Publications, Publication{Event: ev, MsgID: ev.ID})
	}
}

// addLateDuplicates publishes, with the workload's share, events again past the
// duplicate window.
func (w *Workload) addLateDuplicates(r *rand.Rand, o Options) {
	// Late duplicates go anywhere after their original, under another message id. Each
	// is given a position past its original and the list is rebuilt once: inserting
	// one at a time would be quadratic in the workload's size.
	type late struct {
		after int // the index in Publications it is published after
		pub   Publication
	}
	var lates []late
	n := len(w.Publications)
	for i := 0; i < n; i++ {
		if r.Float64() >= o.LateDuplicates {
			continue
		}
		ev := w.Publications[i].Event
		w.LateDuplicates++
		lates = append(lates, late{after: i + r.IntN(n-i), pub: Publication{Event: ev, MsgID: ev.ID + "#past-duplicate-window"}})
	}
	sort.SliceStable(lates, func(a, b int) bool { return lates[a].after < lates[b].after })
	merged := make([]Publication, 0, n+len(lates))
	k := 0
	for i, p := range w.Publications {
		merged = append(merged, p)
		for ; k < len(lates) && lates[k].after == i; k++ {
			merged = append(merged, lates[k].pub)
		}
	}
	w.Publications = merged
}

// account builds one account's history.
type account struct {
	id      string
	r       *rand.Rand
	at      time.Time
	opts    Options
	events  []events.Event
	refused map[string]bool
	moved   int
	n       int
}

func (g *account) history(index int) {
	g.add(events.AccountOpened, &events.AccountOpenedData{
		HolderType: events.HolderIndividual, HolderName: "Holder " + g.id, Verified: true,
	})
	g.add(events.TopupReceived, &events.TopupReceivedData{
		TopupID: "t1", Amount: g.money(1000, 1000), Currency: "CNY", Channel: events.ChannelAlipay,
		PayerType: events.HolderIndividual, PayerName: "Holder " + g.id,
	})
	g.add(events.TopupReceived, &events.TopupReceivedData{
		TopupID: "t2", Amount: g.money(2000, 2000), Currency: "CNY", Channel: events.ChannelOnlineBanking,
		Banking: events.BankingPersonal, Bank: "CCB", PayerType: events.HolderIndividual, PayerName: "Holder " + g.id,
	})
	if g.opts.RefusedEvery > 0 && index%g.opts.RefusedEvery == 0 {
		id := g.add(events.TopupReceived, &events.TopupReceivedData{
			TopupID: "t-usd", Amount: g.money(50, 50), Currency: "USD", Channel: events.ChannelCard,
			PayerType: events.HolderIndividual, PayerName: "Holder " + g.id,
		})
		g.refused = map[string]bool{id: true}
	}
	g.add(events.VoucherGranted, &events.VoucherGrantedData{VoucherID: "v1", Amount: g.money(10, 30)})
	for i := range 3 {
		g.add(events.ConsumptionRecorded, &events.ConsumptionRecordedData{
			ConsumptionID: fmt.Sprintf("c%d", i+1), Amount: g.money(10, 100),
		})
	}
	received := g.add(events.TransferReceived, &events.TransferReceivedData{TransferID: "x1", Amount: g.money(50, 50)})
	if g.r.IntN(2) == 0 {
		g.dependent(received, events.TransferRecalled, &events.TransferRecalledData{TransferID: "x1", Amount: g.money(50, 50)})
	}
	g.add(events.UsageAccrued, &events.UsageAccruedData{UsageID: "u1", Cycle: "2026-11", Amount: g.money(30, 30)})
	g.add(events.CycleSettled, &events.CycleSettledData{Cycle: "2026-11", Amount: g.money(30, 30)})
	bill := g.money(20, 80)
	issued := g.add(events.BillIssued, &events.BillIssuedData{BillID: "b1", Amount: bill})
	g.dependent(issued, events.BillPaid, &events.BillPaidData{BillID: "b1", Amount: bill})
	note := g.money(40, 40)
	noted := g.add(events.CreditNoteIssued, &events.CreditNoteData{CreditNoteID: "n1", Amount: &note})
	g.dependent(noted, events.CreditNoteResolved, &events.CreditNoteData{CreditNoteID: "n1"})
	g.add(events.ResourceCreated, &events.ResourceCreatedData{ResourceID: "sub1", BillingMode: events.BillingSubscription})
	created := g.add(events.ResourceCreated, &events.ResourceCreatedData{ResourceID: "r1", BillingMode: events.BillingPayAsYouGo})
	g.dependent(created, events.ResourceReleased, &events.ResourceReleasedData{ResourceID: "r1"})

	// w1 goes by the original route, straight to transfer; w2 to a designated Alipay
	// account, through review. Both draw on t2 (2000.00), at most 250.00 each: even
	// when decided before t1, the other money and the releases, with every charge and
	// the reserve already counted, both fit.
	w1 := g.add(events.WithdrawalRequested, &events.WithdrawalRequestedData{
		WithdrawalID: g.id + "-w1", TopupID: "t2", Amount: g.money(100, 250), Method: events.MethodOriginal,
	})
	g.dependent(w1, events.PayoutReported, g.payout(g.id+"-w1"))
	w2 := g.add(events.WithdrawalRequested, &events.WithdrawalRequestedData{
		WithdrawalID: g.id + "-w2", TopupID: "t2", Amount: g.money(100, 250), Method: events.MethodDesignated,
		Destination: &events.Destination{Kind: events.DestinationAlipay, AccountNo: fmt.Sprintf("62%014d", g.r.Int64N(1e14)), PayeeName: "Holder " + g.id},
	})
	decision := events.DecisionApproved
	if g.r.IntN(4) == 0 {
		decision = events.DecisionRejected
	}
	decided := g.dependent(w2, events.CaseDecided, &events.CaseDecidedData{CaseID: g.id + "-w2", Decision: decision, Reviewer: "reviewer-1"})
	if decision == events.DecisionApproved {
		g.dependent(decided, events.PayoutReported, g.payout(g.id+"-w2"))
	}
}

func (g *account) payout(caseID string) *events.PayoutReportedData {
	p := &events.PayoutReportedData{PayoutID: "po-" + caseID, CaseID: caseID, Status: events.PayoutSucceeded}
	if g.r.IntN(5) == 0 {
		p.Status, p.FailureReason = events.PayoutFailed, "the receiving bank refused the transfer"
	}
	return p
}

// add appends an event a little after the previous one and returns its position.
func (g *account) add(t events.Type, p events.Payload) string {
	g.at = g.at.Add(time.Duration(1+g.r.IntN(20)) * time.Second)
	g.n++
	id := fmt.Sprintf("%s-e%02d", g.id, g.n)
	ev, err := events.New(t, g.id, "/workload", id, g.at, p)
	if err != nil {
		panic(fmt.Sprintf("workload: %s: %v", t, err)) // a bug in this generator
	}
	g.events = append(g.events, ev)
	return id
}

// dependent appends an event that depends on the event parent, and with the
// workload's out-of-order share moves it before its parent in publish order (its
// time stays after the parent's, as at the source).
func (g *account) dependent(parent string, t events.Type, p events.Payload) string {
	id := g.add(t, p)
	if g.r.Float64() >= g.opts.OutOfOrder {
		return id
	}
	for i, ev := range g.events {
		if ev.ID == parent {
			child := g.events[len(g.events)-1]
			copy(g.events[i+1:], g.events[i:len(g.events)-1])
			g.events[i] = child
			g.moved++
			break
		}
	}
	return id
}

// money is a random amount in [lo, hi] yuan, in cents.
func (g *account) money(lo, hi int) events.Amount {
	cents := int64(lo*100) + g.r.Int64N(int64((hi-lo)*100+1))
	return events.Amount{Decimal: decimal.New(cents, -2)}
}

// Effect names what an outbound event does, whatever its id: a case reaching a status,
// a payout or a review asked for, an account's reserve unfrozen, a case reported
// overdue; "" for balance notices, whose number depends on the order the engine
// happened to decide events in. Tests count effects: each must be published, under
// one id.
func Effect(ev events.Event) string {
	switch p := ev.Payload.(type) {
	case *events.CaseStatusChangedData:
		return "case " + p.CaseID + " " + p.Status
	case *events.PayoutRequestedData:
		return "payout " + p.PayoutID + " " + p.Amount.String()
	case *events.ReviewRequestedData:
		return "review " + p.CaseID
	case *events.ReserveUnfrozenData:
		return "reserve of " + ev.Subject + " unfrozen"
	case *events.CaseOverdueData:
		return "case " + p.CaseID + " overdue"
	}
	return ""
}
