package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

// rawEvent is an inbound event as bytes, as a careless or hostile publisher sends it.
func rawEvent(id, typ, acct, at, data string) []byte {
	return []byte(fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/billing","type":%q,"subject":%q,"time":%q,"data":%s}`, id, typ, acct, at, data))
}

func TestBadInputOverTheWireIsDeadLetteredWithItsReasonAndChangesNothing(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	const acct = "acct-bad"
	at := d.openWithTopUp(t, acct)
	d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
	when := at.Add(time.Minute).Format(time.RFC3339)
	subject := "billing.consumption.recorded." + acct
	tests := []struct {
		name, id, at, data, reason string
	}{
		{"an amount given twice in two cases", "bad-case", when, `{"consumption_id":"c1","amount":"1.00","AMOUNT":"300.00"}`, "only in case"},
		{"an amount given twice", "bad-dup", when, `{"consumption_id":"c2","amount":"1.00","amount":"2.00"}`, "appears twice"},
		{"a negative zero", "bad-neg0", when, `{"consumption_id":"c3","amount":"-0.00","voucher_amount":"1.00"}`, `got string "-0.00"`},
		{"a zero-padded amount", "bad-pad", when, `{"consumption_id":"c4","amount":"00005"}`, "decimal string"},
		{"a time in 1970", "bad-1970", "1970-01-01T00:00:00Z", `{"consumption_id":"c5","amount":"1.00"}`, "before 2000-01-01"},
		{"a time in the year 3000", "bad-3000", "3000-01-01T00:00:00Z", `{"consumption_id":"c6","amount":"1.00"}`, "ahead of now"},
		{"Go's zero time", "bad-zero", "0001-01-01T00:00:00Z", `{"consumption_id":"c7","amount":"1.00"}`, "must be a real time"},
	}
	// A refused event just under NATS's 1 MiB: its dead letter must still fit.
	padding := strings.Repeat("x", 1024*1024-2048)
	tests = append(tests, struct{ name, id, at, data, reason string }{
		"a refused event of almost 1 MiB", "bad-big", when, `{"consumption_id":"c9","amount":"1.5e3","note":"` + padding + `"}`, "decimal string",
	})
	for _, tc := range tests {
		if _, err := d.js.Publish(context.Background(), subject, rawEvent(tc.id, string(events.ConsumptionRecorded), acct, tc.at, tc.data)); err != nil {
			t.Fatal(err)
		}
	}
	// An id applied before, sent again with other content past JetStream's duplicate
	// window (here: without Nats-Msg-Id), is a conflict, not a silent duplicate.
	good := rawEvent("evt-reused", string(events.ConsumptionRecorded), acct, when, `{"consumption_id":"c8","amount":"10.00"}`)
	if _, err := d.js.Publish(context.Background(), subject, good); err != nil {
		t.Fatal(err)
	}
	d.waitForAccount(t, acct, accountJSON{Cash: "490.00", Held: "0.00", Withdrawable: "490.00"})
	reused := rawEvent("evt-reused", string(events.TopupReceived), acct, when, `{"topup_id":"t9","amount":"300.00","currency":"CNY","channel":"alipay","payer_type":"individual","payer_name":"Mallory"}`)
	if _, err := d.js.Publish(context.Background(), "billing.topup.received."+acct, reused); err != nil {
		t.Fatal(err)
	}
	var reasons map[string][]string
	waitFor(t, func() string {
		reasons = d.deadLetterReasons(t, "deadletter.>")
		if n := len(reasons[subject]); n != len(tests) || len(reasons["billing.topup.received."+acct]) != 1 {
			return fmt.Sprintf("dead letters %v, want %d consumptions and the reused id", reasons, len(tests))
		}
		return ""
	})
	all := strings.Join(reasons[subject], "\n")
	for _, tc := range tests {
		if !strings.Contains(all, tc.reason) {
			t.Errorf("%s: no dead letter says %q in\n%s", tc.name, tc.reason, all)
		}
	}
	if r := reasons["billing.topup.received."+acct][0]; !strings.Contains(r, "already applied") || !strings.Contains(r, "other content") {
		t.Errorf("the reused id's reason: %q", r)
	}
	d.waitForAccount(t, acct, accountJSON{Cash: "490.00", Held: "0.00", Withdrawable: "490.00"})
}
