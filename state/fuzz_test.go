package state_test

import (
	"testing"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// FuzzApply applies a fuzzed event to a valid account with money, cases and timers:
// Apply must never panic, never change the account it was given, and whatever it
// decides keeps money conserved and held within cash. Seeds are valid events of every
// kind the engine decides.
func FuzzApply(f *testing.F) {
	at := "2026-11-02T10:00:00Z"
	for _, data := range []struct{ typ, data string }{
		{"billing.topup.received", `{"topup_id":"t9","amount":"10.00","currency":"CNY","channel":"alipay","payer_type":"individual","payer_name":"Zhang San"}`},
		{"billing.consumption.recorded", `{"consumption_id":"c9","amount":"999.99"}`},
		{"billing.bill.paid", `{"bill_id":"b1","amount":"300.00","from_balance":true}`},
		{"billing.transfer.recalled", `{"transfer_id":"tr1","amount":"1.00"}`},
		{"billing.resource.released", `{"resource_id":"ecs-1"}`},
		{"console.withdrawal.requested", `{"withdrawal_id":"w9","topup_id":"t1","amount":"100.00","method":"original"}`},
		{"console.withdrawal.requested", `{"withdrawal_id":"w1","amount":"5.00","method":"designated","destination":{"kind":"alipay","account_no":"a","payee_name":"b"}}`},
		{"review.case.decided", `{"case_id":"w1","decision":"approved","reviewer":"r"}`},
		{"payout.result.reported", `{"payout_id":"po-w1","case_id":"w1","status":"failed"}`},
		{"billing.package.purchased", `{"package_id":"p1","price":"10.00","units":3}`},
		{"console.refund.requested", `{"refund_id":"r1","kind":"package","package_id":"pk1"}`},
		{"console.discontinuation.requested", `{"request_id":"d1"}`},
		{"console.refund.appealed", `{"refund_id":"w1"}`},
	} {
		f.Add(data.typ, at, data.data)
	}
	base := fuzzAccount(f)
	f.Fuzz(func(t *testing.T, typ, at, data string) {
		raw := `{"specversion":"1.0","id":"e-fuzz","source":"/fuzz","type":"` + typ + `","subject":"` + account + `","time":"` + at + `","data":` + data + `}`
		ev, err := events.Decode([]byte(raw))
		if err != nil {
			return
		}
		before := mustJSON(t, base)
		d, err := state.Apply(base, ev, rules, now)
		if mustJSON(t, base) != before {
			t.Fatal("Apply changed the account it was given")
		}
		if err != nil {
			return
		}
		wantConserved(t, d.Account, append(fuzzHistory(t), ev))
	})
}

// fuzzHistory is the history behind fuzzAccount.
func fuzzHistory(t testing.TB) []events.Event {
	h := newHistory(t).topUp("t1", "500.00").topUp("t2", "300.00").consume("120.00").
		transfer("tr1", "50.00").bill("b1", "300.00").resource("ecs-1", "payg")
	h.add(events.PackagePurchased, &events.PackageData{PackageID: "pk1", Price: &events.Amount{Decimal: dec("30")}, Units: 3})
	h.add(events.WithdrawalRequested, &events.WithdrawalRequestedData{WithdrawalID: "w1", TopupID: "t2", Amount: money("50.00"), Method: events.MethodDesignated,
		Destination: &events.Destination{Kind: events.DestinationAlipay, AccountNo: "alipay-1", PayeeName: "Zhang San"}})
	return h.events
}

func fuzzAccount(t testing.TB) state.Account {
	return applyAll(t, state.NewAccount(account), fuzzHistory(t)...)
}
