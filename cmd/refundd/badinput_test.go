package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payinfra/refunds/consumers"
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

// Every class of bad input the issue lists that the first table does not: each is
// dead-lettered with a reason a person can act on, and the account does not move.
func TestEveryClassOfBadInputGetsAClearReasonAndChangesNothing(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL, func(_ *Config, h *hooks) {
		// A decision for a case that was never requested waits for it; a short wait
		// budget shows where that ends.
		h.intakeConfig = func(c *consumers.Config) { c.MaxWait = 3 * time.Second }
	})
	const acct = "acct-bad2"
	at := d.openWithTopUp(t, acct)
	unchanged := accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"}
	d.waitForAccount(t, acct, unchanged)
	when := at.Add(time.Minute).Format(time.RFC3339)
	consumption := "billing.consumption.recorded." + acct
	consumed := func(id, amount string) []byte {
		return rawEvent(id, string(events.ConsumptionRecorded), acct, when, `{"consumption_id":"`+id+`","amount":`+amount+`}`)
	}
	tests := []struct {
		name, subject string
		body          []byte
		reason        string
	}{
		{"malformed JSON", consumption, []byte(`{"specversion":"1.0","id":"bad-json",`), "unexpected end of JSON input"},
		{"a missing envelope attribute", consumption,
			[]byte(`{"specversion":"1.0","id":"bad-nosource","type":"billing.consumption.recorded","subject":"` + acct + `","time":"` + when + `","data":{"consumption_id":"c1","amount":"1.00"}}`),
			"source"},
		{"an unknown type", consumption, rawEvent("bad-type", "billing.consumption.invented", acct, when, `{}`), "unknown event type"},
		{"a missing data field", consumption, rawEvent("bad-nofield", string(events.ConsumptionRecorded), acct, when, `{"consumption_id":"c2"}`), "data.amount"},
		{"a negative amount", consumption, consumed("bad-neg", `"-1.00"`), "data.amount"},
		{"NaN", consumption, consumed("bad-nan", `"NaN"`), "data.amount"},
		{"1e30", consumption, consumed("bad-exp", `"1e30"`), "data.amount"},
		{"40 digits", consumption, consumed("bad-40", `"`+strings.Repeat("9", 40)+`"`), "data.amount"},
		{"the wrong currency", "billing.topup.received." + acct,
			rawEvent("bad-usd", string(events.TopupReceived), acct, when, `{"topup_id":"t9","amount":"10.00","currency":"USD","channel":"alipay","payer_type":"individual","payer_name":"Li Wei"}`),
			"USD"},
		{"an account id with spaces", consumption, rawEvent("bad-space", string(events.ConsumptionRecorded), "acct bad2", when, `{"consumption_id":"c3","amount":"1.00"}`), "subject"},
		{"an account id with a dot", consumption, rawEvent("bad-dot", string(events.ConsumptionRecorded), "acct.bad2", when, `{"consumption_id":"c4","amount":"1.00"}`), "subject"},
		{"an account id with a wildcard", consumption, rawEvent("bad-star", string(events.ConsumptionRecorded), "acct-*", when, `{"consumption_id":"c5","amount":"1.00"}`), "subject"},
		{"an account id with a tail wildcard", consumption, rawEvent("bad-gt", string(events.ConsumptionRecorded), "acct->", when, `{"consumption_id":"c6","amount":"1.00"}`), "subject"},
		{"a decision for a case never requested", "review.case.decided." + acct,
			rawEvent("bad-nocase", string(events.CaseDecided), acct, when, `{"case_id":"w-none","decision":"approved","reviewer":"r1"}`),
			"case w-none is not requested yet"},
	}
	for _, tc := range tests {
		if _, err := d.js.Publish(context.Background(), tc.subject, tc.body); err != nil {
			t.Fatalf("%s: publish: %v", tc.name, err)
		}
	}
	// NATS itself refuses a 2 MiB payload: the publisher learns it at once, and
	// nothing reaches the engine.
	if _, err := d.js.Publish(context.Background(), consumption, consumed("bad-2mib", `"1.00","note":"`+strings.Repeat("x", 2<<20)+`"`)); err == nil || !strings.Contains(err.Error(), "maximum payload") {
		t.Errorf("a 2 MiB event: publish error %v, want the server's maximum payload refusal", err)
	}
	var all string
	waitFor(t, func() string {
		reasons := d.deadLetterReasons(t, "deadletter.>")
		var lines []string
		for _, rs := range reasons {
			lines = append(lines, rs...)
		}
		if len(lines) != len(tests) {
			return fmt.Sprintf("%d dead letters, want %d: %v", len(lines), len(tests), reasons)
		}
		all = strings.Join(lines, "\n")
		return ""
	})
	for _, tc := range tests {
		if !strings.Contains(all, tc.reason) {
			t.Errorf("%s: no dead letter says %q in\n%s", tc.name, tc.reason, all)
		}
	}
	t.Logf("the dead letters' reasons:\n%s", all)
	d.waitForAccount(t, acct, unchanged)
}

// A case's own bad input is not a dead letter once the case exists: it is kept in the
// case's history with why it was ignored, and moves no money.
func TestACasesOwnBadInputIsKeptInItsHistoryAndMovesNothing(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	const acct = "acct-bad3"
	at := d.openWithTopUp(t, acct)
	d.withdraw(t, acct, "w1", at.Add(time.Minute), events.MethodDesignated, "100.00")
	d.waitForCase(t, "w1", events.StatusInReview)
	d.publish(t, events.CaseDecided, acct, "dec-1", at.Add(2*time.Minute), &events.CaseDecidedData{CaseID: "w1", Decision: events.DecisionRejected, Reviewer: "r1"})
	d.waitForCase(t, "w1", events.StatusRejected)
	final := accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"}
	d.waitForAccount(t, acct, final)

	// A reviewer approves the case after it was rejected, and the gateway reports a
	// payout nobody asked for.
	d.publish(t, events.CaseDecided, acct, "dec-2", at.Add(3*time.Minute), &events.CaseDecidedData{CaseID: "w1", Decision: events.DecisionApproved, Reviewer: "r2"})
	d.payoutResult(t, acct, "w1", "po-forged", events.PayoutSucceeded, at.Add(4*time.Minute))
	waitFor(t, func() string {
		c := d.waitForCase(t, "w1", events.StatusRejected)
		var notes []string
		for _, h := range c.History {
			if strings.Contains(h.Reason, "ignored") {
				notes = append(notes, h.Reason)
			}
		}
		if len(notes) != 2 || !strings.Contains(notes[0], "r2") || !strings.Contains(notes[1], "po-forged") {
			return fmt.Sprintf("case history %+v, want the late decision and the forged payout noted as ignored", c.History)
		}
		return ""
	})
	d.waitForAccount(t, acct, final)
	if dl := d.deadLetterReasons(t, "deadletter.>"); len(dl) != 0 {
		t.Errorf("dead letters %v, want none: a case's own late input is noted, not parked", dl)
	}
}
