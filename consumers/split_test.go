package consumers

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/payinfra/refunds/events"
)

func TestABatchSplitsByAccountKeepingEachAccountsOrder(t *testing.T) {
	var msgs []jetstream.Msg
	for i := range 60 {
		acct := fmt.Sprintf("acct-%d", i%7)
		ev, err := events.New(events.ConsumptionRecorded, acct, "/t", fmt.Sprintf("e%02d", i), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			&events.ConsumptionRecordedData{ConsumptionID: fmt.Sprintf("c%d", i), Amount: events.MustAmount("1.00")})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := ev.Encode()
		msgs = append(msgs, &simMsg{subject: ev.NATSSubject(), data: body})
	}
	msgs = append(msgs, &simMsg{subject: "billing.consumption.recorded.acct-3", data: []byte("{not json")})
	b := NewBatch(msgs)
	shares := b.split(3)
	total, owner := 0, map[string]int{}
	for w, share := range shares {
		total += len(share.Msgs)
		last := map[string]string{}
		for i, m := range share.Msgs {
			acct := share.decoded[i].event.Subject
			if share.decoded[i].err != nil {
				acct = "acct-3"
			}
			if o, seen := owner[acct]; seen && o != w {
				t.Fatalf("account %s is in shares %d and %d", acct, o, w)
			}
			owner[acct] = w
			if id := share.decoded[i].event.ID; id != "" && id < last[acct] {
				t.Fatalf("account %s: %s after %s", acct, id, last[acct])
			} else if id != "" {
				last[acct] = id
			}
			if m != msgs[indexOf(msgs, m)] {
				t.Fatal("a share holds a message the batch did not")
			}
		}
	}
	if total != len(msgs) {
		t.Fatalf("shares hold %d messages, the batch %d", total, len(msgs))
	}
	if one := b.split(1); len(one) != 1 || one[0] != b {
		t.Fatal("one worker does not get the batch as it is")
	}
}

func indexOf(msgs []jetstream.Msg, m jetstream.Msg) int {
	for i := range msgs {
		if msgs[i] == m {
			return i
		}
	}
	return -1
}
