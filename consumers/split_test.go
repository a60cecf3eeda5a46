package consumers

import (
	"fmt"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
)

func TestEveryEventOfAnAccountGoesToTheSameWorker(t *testing.T) {
	const workers = 3
	owner := map[string]int{}
	used := map[int]bool{}
	for i := range 60 {
		acct := fmt.Sprintf("acct-%d", i%7)
		ev, err := events.New(events.ConsumptionRecorded, acct, "/t", fmt.Sprintf("e%02d", i), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			&events.ConsumptionRecordedData{ConsumptionID: fmt.Sprintf("c%d", i), Amount: events.MustAmount("1.00")})
		if err != nil {
			t.Fatal(err)
		}
		w := shareOf(ev.NATSSubject(), workers)
		if o, seen := owner[acct]; seen && o != w {
			t.Fatalf("account %s goes to workers %d and %d", acct, o, w)
		}
		owner[acct], used[w] = w, true
	}
	// A message that will not decode goes where its subject's account goes.
	if w := shareOf("billing.topup.succeeded.acct-3", workers); w != owner["acct-3"] {
		t.Fatalf("a malformed message of acct-3 goes to worker %d, its account's events to %d", w, owner["acct-3"])
	}
	if len(used) < 2 {
		t.Fatalf("7 accounts all went to one of %d workers", workers)
	}
	if w := shareOf("billing.topup.succeeded.acct-3", 1); w != 0 {
		t.Fatalf("one worker: share %d", w)
	}
}
