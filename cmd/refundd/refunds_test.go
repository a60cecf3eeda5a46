package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

func TestRefundKindsOverJetStream(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)

	t.Run("service discontinuation: release, settlement, invoice reversal, review, payout", func(t *testing.T) {
		const acct = "acct-r-disc"
		start := time.Now().UTC().Add(-20 * 24 * time.Hour).Truncate(time.Second)
		d.publish(t, events.AccountOpened, acct, acct+"-open", start, &events.AccountOpenedData{HolderType: "individual", HolderName: "Li Wei", Verified: true})
		d.publish(t, events.TopupReceived, acct, acct+"-t1", start.Add(time.Hour), &events.TopupReceivedData{
			TopupID: "t1", Amount: events.MustAmount("300.00"), Currency: "CNY", Channel: "online_banking",
			Banking: "personal", Bank: "ICBC", PayerType: "individual", PayerName: "Li Wei",
		})
		d.publish(t, events.InvoiceIssued, acct, acct+"-inv", start.Add(2*time.Hour), &events.InvoiceData{InvoiceID: "inv-1", TopupID: "t1"})
		d.publish(t, events.ResourceCreated, acct, acct+"-ecs", start.Add(3*time.Hour), &events.ResourceCreatedData{ResourceID: "ecs-1", BillingMode: "payg"})
		d.publish(t, events.DiscontinuationRequested, acct, acct+"-disc", start.Add(4*time.Hour), &events.DiscontinuationRequestedData{RequestID: "disc-1"})
		d.publish(t, events.RefundRequested, acct, acct+"-ref", start.Add(5*time.Hour), &events.RefundRequestedData{RefundID: "r-disc", Kind: events.RefundDiscontinuation})
		d.waitForCase(t, "r-disc", events.StatusAwaitingSettlement)
		// The release is long past, so the 3 business days are over: the timer moves
		// the case on by itself, to the wait for the invoice's reversal.
		d.publish(t, events.ResourceReleased, acct, acct+"-rel", start.Add(6*time.Hour), &events.ResourceReleasedData{ResourceID: "ecs-1"})
		d.waitForCase(t, "r-disc", events.StatusAwaitingInvoiceReversal)
		waitFor(t, func() string {
			if n := len(d.published(t, "refunds.invoice.reversal_required."+acct)); n != 1 {
				return fmt.Sprintf("%d reversal-required events, want 1", n)
			}
			return ""
		})
		d.publish(t, events.InvoiceReversed, acct, acct+"-rev", start.Add(7*24*time.Hour), &events.InvoiceData{InvoiceID: "inv-1"})
		d.waitForCase(t, "r-disc", events.StatusInReview)
		d.reviewDecision(t, acct, "r-disc", events.DecisionApproved, start.Add(8*24*time.Hour))
		c := d.waitForCase(t, "r-disc", events.StatusApprovedPendingTransfer)
		d.payoutResult(t, acct, "r-disc", c.PayoutID, events.PayoutSucceeded, start.Add(9*24*time.Hour))
		d.waitForCase(t, "r-disc", events.StatusSucceeded)
		d.waitForAccount(t, acct, accountJSON{Cash: "0.00", Held: "0.00", Withdrawable: "0.00"})
	})

	t.Run("order refund: rejected, appealed, approved in the secondary review, paid back", func(t *testing.T) {
		const acct = "acct-r-order"
		at := d.openWithTopUp(t, acct)
		paidAmount, used := events.MustAmount("100.00"), events.MustAmount("25.00")
		d.publish(t, events.OrderPurchased, acct, acct+"-o1", at.Add(time.Minute), &events.OrderData{OrderID: "o1", Amount: &paidAmount, PaymentMethod: "paypal"})
		d.publish(t, events.OrderUsed, acct, acct+"-o1-used", at.Add(2*time.Minute), &events.OrderData{OrderID: "o1", UsedAmount: &used})
		d.publish(t, events.RefundRequested, acct, acct+"-ref", at.Add(3*time.Minute), &events.RefundRequestedData{RefundID: "r-order", Kind: events.RefundOrder, OrderID: "o1", Reason: "service defect"})
		c := d.waitForCase(t, "r-order", events.StatusInReview)
		if c.Amount != "75.00" {
			t.Errorf("order refund of %s, want paid − used = 75.00", c.Amount)
		}
		d.publish(t, events.CaseDecided, acct, acct+"-dec1", at.Add(4*time.Minute), &events.CaseDecidedData{CaseID: "r-order", Decision: events.DecisionRejected, Reviewer: "auditor-7"})
		d.waitForCase(t, "r-order", events.StatusRejected)
		d.publish(t, events.RefundAppealed, acct, acct+"-appeal", at.Add(5*time.Minute), &events.RefundAppealedData{RefundID: "r-order", Reason: "logs attached"})
		d.waitForCase(t, "r-order", events.StatusInSecondaryReview)
		d.publish(t, events.CaseDecided, acct, acct+"-dec2", at.Add(6*time.Minute), &events.CaseDecidedData{CaseID: "r-order", Decision: events.DecisionApproved, Reviewer: "lead-2"})
		c = d.waitForCase(t, "r-order", events.StatusApprovedPendingTransfer)
		d.payoutResult(t, acct, "r-order", c.PayoutID, events.PayoutSucceeded, at.Add(7*time.Minute))
		d.waitForCase(t, "r-order", events.StatusSucceeded)
		// The order's money went back by PayPal: the account's balance is untouched.
		d.waitForAccount(t, acct, accountJSON{Cash: "500.00", Held: "0.00", Withdrawable: "500.00"})
	})

	t.Run("package refund: the remaining balance credited at once, later consumption refused", func(t *testing.T) {
		const acct = "acct-r-package"
		at := d.openWithTopUp(t, acct)
		price := events.MustAmount("90.00")
		d.publish(t, events.PackagePurchased, acct, acct+"-pk", at.Add(time.Minute), &events.PackageData{PackageID: "pk1", Price: &price, Units: 9})
		d.publish(t, events.PackageConsumed, acct, acct+"-use", at.Add(2*time.Minute), &events.PackageData{PackageID: "pk1", Units: 2})
		d.publish(t, events.RefundRequested, acct, acct+"-ref", at.Add(3*time.Minute), &events.RefundRequestedData{RefundID: "r-pkg", Kind: events.RefundPackage, PackageID: "pk1"})
		c := d.waitForCase(t, "r-pkg", events.StatusCredited)
		if c.Amount != "70.00" {
			t.Errorf("package refund of %s, want 90 × 7/9 = 70.00", c.Amount)
		}
		d.waitForAccount(t, acct, accountJSON{Cash: "570.00", Held: "0.00", Withdrawable: "570.00"})
		d.publish(t, events.PackageConsumed, acct, acct+"-late", at.Add(4*time.Minute), &events.PackageData{PackageID: "pk1", Units: 1})
		waitFor(t, func() string {
			if n := len(d.deadLettered(t, "deadletter.billing.package.consumed."+acct)); n != 1 {
				return fmt.Sprintf("%d dead letters for the late consumption, want 1", n)
			}
			return ""
		})
	})
}
