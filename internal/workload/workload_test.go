package workload_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/workload"
	"github.com/payinfra/refunds/state"
)

func TestTheSameSeedGivesTheSameWorkload(t *testing.T) {
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	a := workload.Generate(workload.Options{Accounts: 20, Seed: 7, Start: start})
	b := workload.Generate(workload.Options{Accounts: 20, Seed: 7, Start: start})
	if len(a.Publications) != len(b.Publications) {
		t.Fatalf("%d and %d publications", len(a.Publications), len(b.Publications))
	}
	for i := range a.Publications {
		if a.Publications[i].MsgID != b.Publications[i].MsgID {
			t.Fatalf("publication %d: %s and %s", i, a.Publications[i].MsgID, b.Publications[i].MsgID)
		}
	}
	published := map[string]bool{}
	for _, p := range a.Publications {
		if strings.HasSuffix(p.MsgID, "#past-duplicate-window") && !published[p.Event.ID] {
			t.Fatalf("%s is published past the duplicate window before its original", p.Event.ID)
		}
		published[p.MsgID] = true
	}
	if a.SameIDDuplicates == 0 || a.LateDuplicates == 0 || a.OutOfOrder == 0 || len(a.Refused) == 0 {
		t.Errorf("a workload of 20 accounts without some fault: %d same-id duplicates, %d late, %d out of order, %d refused",
			a.SameIDDuplicates, a.LateDuplicates, a.OutOfOrder, len(a.Refused))
	}
}

// The chaos test compares the engine with one replay in publish order; that is only
// sound if the order the engine happens to decide in cannot change the outcome.
func TestAnAccountsOutcomeDoesNotDependOnTheOrderItsEventsAreDecidedIn(t *testing.T) {
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	w := workload.Generate(workload.Options{Accounts: 30, Seed: 11, Start: start})
	rules := state.DefaultRules()
	rules.ReserveHold = 2 * time.Minute // so every reserve countdown has run out by now
	now := start.Add(30 * time.Minute)
	r := rand.New(rand.NewPCG(1, 2))
	for _, acct := range w.Accounts {
		history := w.History[acct]
		inOrder := state.Rebuild(acct, history, rules, now)
		if l := inOrder.Account.Ledger(rules); l.ReserveState != "none" {
			t.Fatalf("%s: reserve %s after its countdown ran out", acct, l.ReserveState)
		}
		if inOrder.Waiting != 0 {
			t.Fatalf("%s: %d events still wait after a replay in publish order", acct, inOrder.Waiting)
		}
		refused := 0
		for _, ev := range history {
			if w.Refused[ev.ID] {
				refused++
			}
		}
		if inOrder.Refused != refused {
			t.Errorf("%s: %d events refused, want the %d the workload made to be", acct, inOrder.Refused, refused)
		}
		for round := range 20 {
			shuffled := append([]events.Event(nil), history...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			other := state.Rebuild(acct, shuffled, rules, now)
			if got, want := summary(other, rules), summary(inOrder, rules); got != want {
				t.Fatalf("%s, shuffle %d: ended as\n %s\nin publish order as\n %s", acct, round, got, want)
			}
		}
	}
}

func summary(r state.Replay, rules state.Rules) string {
	l := r.Account.Ledger(rules)
	s := "cash " + l.Cash.String() + " held " + l.Held.String() + " withdrawable " + l.Withdrawable.String() +
		" paid out " + l.PaidOut.String() + " reserve " + l.ReserveState
	for _, id := range []string{r.Account.ID + "-w1", r.Account.ID + "-w2"} {
		c, ok := r.Ended[id]
		if !ok {
			c = r.Account.Cases[id]
		}
		s += " " + id + "=" + c.Status + "/" + c.Amount.String()
	}
	return s
}

// caseShareByThird is, for each third of the stream, the share of its publications
// that are withdrawals, review decisions and payout results.
func caseShareByThird(w workload.Workload) [3]float64 {
	var cases, all [3]int
	for i, p := range w.Publications {
		third := 3 * i / len(w.Publications)
		all[third]++
		switch p.Event.Type {
		case events.WithdrawalRequested, events.CaseDecided, events.PayoutReported:
			cases[third]++
		}
	}
	var share [3]float64
	for i := range share {
		share[i] = float64(cases[i]) / float64(all[i])
	}
	return share
}

func TestBySpreadTheStreamMixesAccountsAtEveryStage(t *testing.T) {
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	lockstep := caseShareByThird(workload.Generate(workload.Options{Accounts: 600, Seed: 5, Start: start}))
	if lockstep[2] < 3*lockstep[0] {
		t.Errorf("interleaved from the start, the case events' share by third is %.2f; want the last third to hold most", lockstep)
	}
	w := workload.Generate(workload.Options{Accounts: 600, Seed: 5, Start: start, Spread: 0.2})
	spread := caseShareByThird(w)
	total := 0.0
	for _, s := range spread {
		total += s / 3
	}
	if d := spread[1] - total; d < -0.25*total || d > 0.25*total {
		t.Errorf("with a spread of 0.2 the middle third's share of case events is %.3f, the stream's %.3f; want them within 25%%", spread[1], total)
	}
	// Every event is published, each account's in its own order.
	published := map[string][]string{}
	seen := map[string]bool{}
	for _, p := range w.Publications {
		if !seen[p.Event.ID] {
			seen[p.Event.ID] = true
			published[p.Event.Subject] = append(published[p.Event.Subject], p.Event.ID)
		}
	}
	for acct, history := range w.History {
		var want []string
		for _, ev := range history {
			want = append(want, ev.ID)
		}
		if strings.Join(published[acct], " ") != strings.Join(want, " ") {
			t.Fatalf("%s: published %v, want its history's order %v", acct, published[acct], want)
		}
	}
}
