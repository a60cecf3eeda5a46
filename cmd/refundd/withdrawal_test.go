package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

// caseJSON is the part of GET /v1/cases/{id} these tests read.
type caseJSON struct {
	Status      string
	Amount      string
	Route       string
	PayoutID    string `json:"payout_id"`
	Destination *struct {
		AccountNo string `json:"account_no"`
	}
	History []struct {
		Status, Reason string
		ReasonCode     string `json:"reason_code"`
	}
}

type accountJSON struct{ Cash, Held, Withdrawable string }

// openWithTopUp opens acct, verified, with a 500.00 online-banking top-up t1 two hours
// ago (ICBC personal: a 30-day original-route window).
func (d *daemon) openWithTopUp(t *testing.T, acct string) time.Time {
	t.Helper()
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	d.publish(t, events.AccountOpened, acct, acct+"-open", at, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true})
	d.publish(t, events.TopupReceived, acct, acct+"-t1", at.Add(time.Minute), &events.TopupReceivedData{
		TopupID: "t1", Amount: events.MustAmount("500.00"), Currency: "CNY", Channel: "online_banking",
		Banking: "personal", Bank: "ICBC", PayerType: "individual", PayerName: "Li Wei",
	})
	return at.Add(time.Minute)
}

func (d *daemon) withdraw(t *testing.T, acct, id string, at time.Time, method string, amount string) {
	t.Helper()
	p := &events.WithdrawalRequestedData{WithdrawalID: id, TopupID: "t1", Amount: events.MustAmount(amount), Method: method}
	if method == events.MethodDesignated {
		p.Destination = &events.Destination{Kind: events.DestinationBankCard, AccountNo: "6222020200012341234", PayeeName: "Li Wei",
			Bank: "ICBC", Branch: "Nanjing Road", ProvinceCity: "Shanghai"}
	}
	d.publish(t, events.WithdrawalRequested, acct, "req-"+id, at, p)
}

// waitForCase polls GET /v1/cases/{id} until the case has status.
func (d *daemon) waitForCase(t *testing.T, id, status string) caseJSON {
	t.Helper()
	var c caseJSON
	waitFor(t, func() string {
		c = caseJSON{}
		if code := d.get(t, "/v1/cases/"+id, &c); code != http.StatusOK || c.Status != status {
			return fmt.Sprintf("case %s: HTTP %d %+v, want %s", id, code, c, status)
		}
		return ""
	})
	return c
}

func (d *daemon) waitForAccount(t *testing.T, acct string, want accountJSON) {
	t.Helper()
	waitFor(t, func() string {
		var got accountJSON
		if code := d.get(t, "/v1/accounts/"+acct, &got); code != http.StatusOK || got != want {
			return fmt.Sprintf("account %s: HTTP %d %+v, want %+v", acct, code, got, want)
		}
		return ""
	})
}

func (d *daemon) payoutResult(t *testing.T, acct, caseID, payoutID, status string, at time.Time) {
	t.Helper()
	d.publish(t, events.PayoutReported, acct, fmt.Sprintf("pay-%s-%s-%d", caseID, status, at.UnixNano()), at,
		&events.PayoutReportedData{PayoutID: payoutID, CaseID: caseID, Status: status, FailureReason: "bank rejected the transfer"})
}

func (d *daemon) reviewDecision(t *testing.T, acct, caseID, decision string, at time.Time) {
	t.Helper()
	d.publish(t, events.CaseDecided, acct, "dec-"+caseID+"-"+decision, at,
		&events.CaseDecidedData{CaseID: caseID, Decision: decision, Reviewer: "auditor-7", Reason: "checked the documents"})
}

func TestWithdrawalsOverJetStream(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)

	t.Run("by the original route, end to end to succeeded", func(t *testing.T) {
		const acct = "acct-w-original"
		at := d.openWithTopUp(t, acct)
		d.withdraw(t, acct, "w-orig", at.Add(time.Minute), events.MethodOriginal, "120.00")
		c := d.waitForCase(t, "w-orig", events.StatusApprovedPendingTransfer)
		d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "120.00", Withdrawable: "380.00"})
		var payouts []events.Event
		waitFor(t, func() string {
			payouts = d.published(t, "refunds.payout.requested."+acct)
			if len(payouts) != 1 {
				return fmt.Sprintf("%d payout requests, want 1", len(payouts))
			}
			return ""
		})
		if p := payouts[0].Payload.(*events.PayoutRequestedData); p.PayoutID != c.PayoutID || p.TopupID != "t1" || p.Route != events.RouteOriginal {
			t.Fatalf("payout request %+v", p)
		}
		d.payoutResult(t, acct, "w-orig", c.PayoutID, events.PayoutSucceeded, at.Add(2*time.Minute))
		d.waitForCase(t, "w-orig", events.StatusSucceeded)
		d.waitForAccount(t, acct, accountJSON{Cash: "380.00", Held: "0.00", Withdrawable: "380.00"})
	})

	t.Run("to a designated account through review, the number masked in the read API", func(t *testing.T) {
		const acct = "acct-w-designated"
		at := d.openWithTopUp(t, acct)
		d.withdraw(t, acct, "w-des", at.Add(time.Minute), events.MethodDesignated, "50.00")
		c := d.waitForCase(t, "w-des", events.StatusInReview)
		if c.Destination == nil || c.Destination.AccountNo != "****1234" {
			t.Errorf("destination in the read API %+v, want the account number masked", c.Destination)
		}
		d.reviewDecision(t, acct, "w-des", events.DecisionApproved, at.Add(2*time.Minute))
		c = d.waitForCase(t, "w-des", events.StatusApprovedPendingTransfer)
		d.payoutResult(t, acct, "w-des", c.PayoutID, events.PayoutSucceeded, at.Add(3*time.Minute))
		d.waitForCase(t, "w-des", events.StatusSucceeded)
		d.waitForAccount(t, acct, accountJSON{Cash: "450.00", Held: "0.00", Withdrawable: "450.00"})
	})

	t.Run("a rejection releases the funds", func(t *testing.T) {
		const acct = "acct-w-rejected"
		at := d.openWithTopUp(t, acct)
		d.withdraw(t, acct, "w-rej", at.Add(time.Minute), events.MethodDesignated, "70.00")
		d.waitForCase(t, "w-rej", events.StatusInReview)
		d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "70.00", Withdrawable: "430.00"})
		d.reviewDecision(t, acct, "w-rej", events.DecisionRejected, at.Add(2*time.Minute))
		d.waitForCase(t, "w-rej", events.StatusRejected)
		d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
	})

	t.Run("a failed payout restores the withdrawable amount, and a reversal after a success gives the money back", func(t *testing.T) {
		const acct = "acct-w-failed"
		at := d.openWithTopUp(t, acct)
		d.withdraw(t, acct, "w-fail", at.Add(time.Minute), events.MethodOriginal, "100.00")
		c := d.waitForCase(t, "w-fail", events.StatusApprovedPendingTransfer)
		d.payoutResult(t, acct, "w-fail", c.PayoutID, events.PayoutFailed, at.Add(2*time.Minute))
		d.waitForCase(t, "w-fail", events.StatusFailed)
		d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})

		d.withdraw(t, acct, "w-rev", at.Add(3*time.Minute), events.MethodOriginal, "200.00")
		c = d.waitForCase(t, "w-rev", events.StatusApprovedPendingTransfer)
		d.payoutResult(t, acct, "w-rev", c.PayoutID, events.PayoutSucceeded, at.Add(4*time.Minute))
		d.waitForAccount(t, acct, accountJSON{Cash: "300.00", Held: "0.00", Withdrawable: "300.00"})
		d.payoutResult(t, acct, "w-rev", c.PayoutID, events.PayoutFailed, at.Add(5*time.Minute))
		c = d.waitForCase(t, "w-rev", events.StatusFailed)
		d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
		if last := c.History[len(c.History)-1]; last.Reason != "payout reversed after success: bank rejected the transfer" {
			t.Errorf("last history entry %+v, want the reversal recorded", last)
		}
	})

	t.Run("a decision that arrives before its request waits for it", func(t *testing.T) {
		const acct = "acct-w-early"
		at := d.openWithTopUp(t, acct)
		d.reviewDecision(t, acct, "w-early", events.DecisionApproved, at.Add(2*time.Minute))
		time.Sleep(300 * time.Millisecond)
		d.withdraw(t, acct, "w-early", at.Add(time.Minute), events.MethodDesignated, "30.00")
		d.waitForCase(t, "w-early", events.StatusApprovedPendingTransfer)
		if n := len(d.deadLettered(t, "deadletter.>")); n != 0 {
			t.Errorf("%d dead letters, want none: an early decision waits", n)
		}
	})

	t.Run("an open case past its expected time is reported overdue once", func(t *testing.T) {
		const acct = "acct-w-overdue"
		at := d.openWithTopUp(t, acct)
		// Online banking is expected within an hour: requested 90 minutes ago, it is
		// overdue as soon as it is approved.
		d.withdraw(t, acct, "w-late", at.Add(30*time.Minute), events.MethodOriginal, "10.00")
		d.waitForCase(t, "w-late", events.StatusApprovedPendingTransfer)
		waitFor(t, func() string {
			if n := len(d.published(t, "refunds.case.overdue."+acct)); n != 1 {
				return fmt.Sprintf("%d overdue reports, want 1", n)
			}
			return ""
		})
		time.Sleep(500 * time.Millisecond) // room for a second, wrong report
		if n := len(d.published(t, "refunds.case.overdue."+acct)); n != 1 {
			t.Errorf("%d overdue reports, want exactly 1", n)
		}
	})
}

func TestTwoRequestsRacingForTheSameMoneyNeverBothPassAcrossTwoInstances(t *testing.T) {
	nats, redis := testenv.StartNATS(t), testenv.StartRedis(t)
	a := startDaemon(t, nats.URL, redis.URL)
	b := startDaemon(t, nats.URL, redis.URL)
	const accounts = 10
	for i := range accounts {
		acct := fmt.Sprintf("acct-race-%02d", i)
		at := a.openWithTopUp(t, acct)
		a.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
		// 300 + 300 > 500: exactly one may be held.
		a.withdraw(t, acct, acct+"-x", at.Add(time.Minute), events.MethodOriginal, "300.00")
		b.withdraw(t, acct, acct+"-y", at.Add(time.Minute), events.MethodOriginal, "300.00")
	}
	for i := range accounts {
		acct := fmt.Sprintf("acct-race-%02d", i)
		var x, y caseJSON
		waitFor(t, func() string {
			x, y = caseJSON{}, caseJSON{}
			a.get(t, "/v1/cases/"+acct+"-x", &x)
			b.get(t, "/v1/cases/"+acct+"-y", &y)
			if x.Status == "" || y.Status == "" {
				return fmt.Sprintf("%s: cases %q and %q not decided yet", acct, x.Status, y.Status)
			}
			return ""
		})
		passed := 0
		for _, c := range []caseJSON{x, y} {
			if c.Status == events.StatusApprovedPendingTransfer {
				passed++
			}
		}
		if passed != 1 {
			t.Errorf("%s: statuses %s and %s, want exactly one approved", acct, x.Status, y.Status)
		}
		b.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "300.00", Withdrawable: "200.00"})
	}
}

func TestAnOverdueBillOnAnotherAccountOfTheSameHolderSendsAWithdrawalToReview(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	at := d.openWithTopUp(t, "acct-risk-a")
	d.openWithTopUp(t, "acct-risk-b") // the same holder, Li Wei
	d.publish(t, events.BillIssued, "acct-risk-b", "risk-bill", at.Add(time.Minute), &events.BillIssuedData{BillID: "b1", Amount: events.MustAmount("80.00")})
	d.waitForAccount(t, "acct-risk-b", accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "420.00"})

	d.withdraw(t, "acct-risk-a", "w-risk-1", at.Add(2*time.Minute), events.MethodOriginal, "100.00")
	d.waitForCase(t, "w-risk-1", events.StatusInReview)

	d.publish(t, events.BillPaid, "acct-risk-b", "risk-paid", at.Add(3*time.Minute), &events.BillPaidData{BillID: "b1", Amount: events.MustAmount("80.00")})
	d.waitForAccount(t, "acct-risk-b", accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
	d.withdraw(t, "acct-risk-a", "w-risk-2", at.Add(4*time.Minute), events.MethodOriginal, "100.00")
	d.waitForCase(t, "w-risk-2", events.StatusApprovedPendingTransfer)
}

func TestOperatorsSeeCasesLagOutboxAndTimersInMetrics(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	const acct = "acct-metrics"
	at := d.openWithTopUp(t, acct)
	// Requested 90 minutes ago by online banking: approved, and overdue at once.
	d.withdraw(t, acct, "w-metrics", at.Add(30*time.Minute), events.MethodOriginal, "10.00")
	d.waitForCase(t, "w-metrics", events.StatusApprovedPendingTransfer)
	waitFor(t, func() string {
		if n, _ := d.metricValue(t, `refunds_case_status_changes_total{kind="withdrawal",status="approved_pending_transfer"}`); n != 1 {
			return fmt.Sprintf("%d approvals counted, want 1", n)
		}
		if n, _ := d.metricValue(t, `refunds_cases_overdue_total{kind="withdrawal",status="approved_pending_transfer"}`); n != 1 {
			return fmt.Sprintf("%d overdue cases counted, want 1", n)
		}
		if n, _ := d.metricValue(t, `refunds_cases{kind="withdrawal",status="approved_pending_transfer"}`); n != 1 {
			return fmt.Sprintf("%d withdrawals approved and pending transfer, want 1", n)
		}
		return ""
	})
	// Everything was consumed and published: nothing lags, the outbox drains. A
	// pending deadline is -1 only when it cannot be read.
	waitFor(t, func() string {
		if lag, depth := d.metric(t, "refunds_intake_consumer_pending"), d.metric(t, "refunds_outbox_depth"); lag != 0 || depth != 0 {
			return fmt.Sprintf("consumer pending %d, outbox depth %d; want both 0", lag, depth)
		}
		return ""
	})
	if n := d.metric(t, "refunds_timers_pending"); n < 0 {
		t.Errorf("pending timers could not be read: %d", n)
	}
	if n := d.metric(t, "refunds_outbox_oldest_age_seconds"); n != 0 {
		t.Errorf("oldest outbox entry %ds old, want 0 for an empty outbox", n)
	}
}
