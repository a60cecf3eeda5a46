package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

// Seed 001's worked example, published over JetStream the way billing would, in an
// order where children arrive before their parents: the HTTP API must answer 200.
func TestSeed001WorkedExampleOverJetStreamGivesWithdrawable200(t *testing.T) {
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	const acct = "acct-seed001"
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	amount := events.MustAmount
	creditNote := amount("200.00")

	// A payment of a bill not yet issued waits for it (it is published first). It was
	// paid outside the balance, so once both are in, only bill b1's 300 is overdue.
	d.publish(t, events.BillPaid, acct, "s-paid", at.Add(5*time.Hour), &events.BillPaidData{BillID: "b-old", Amount: amount("50.00")})
	d.publish(t, events.AccountOpened, acct, "s-open", at, &events.AccountOpenedData{HolderType: "company", HolderName: "Acme Ltd", Verified: true})
	d.publish(t, events.TopupReceived, acct, "s-topup", at.Add(time.Hour), &events.TopupReceivedData{
		TopupID: "t1", Amount: amount("500.00"), Currency: "CNY", Channel: "online_banking", Banking: "corporate", Bank: "CMB", PayerType: "company", PayerName: "Acme Ltd",
	})
	d.publish(t, events.TransferReceived, acct, "s-transfer", at.Add(2*time.Hour), &events.TransferReceivedData{TransferID: "tr1", Amount: amount("500.00")})
	d.publish(t, events.CreditNoteIssued, acct, "s-cn", at.Add(3*time.Hour), &events.CreditNoteData{CreditNoteID: "cn1", Amount: &creditNote})
	d.publish(t, events.BillIssued, acct, "s-bill", at.Add(4*time.Hour), &events.BillIssuedData{BillID: "b1", Amount: amount("300.00")})
	d.publish(t, events.BillIssued, acct, "s-bill-old", at.Add(4*time.Hour), &events.BillIssuedData{BillID: "b-old", Amount: amount("50.00")})
	d.publish(t, events.UsageAccrued, acct, "s-usage", at.Add(6*time.Hour), &events.UsageAccruedData{UsageID: "u1", Cycle: "2026-11", Amount: amount("200.00")})
	d.publish(t, events.ResourceCreated, acct, "s-ecs", at.Add(7*time.Hour), &events.ResourceCreatedData{ResourceID: "ecs-1", BillingMode: "payg"})

	type part struct {
		Part   string `json:"part"`
		Amount string `json:"amount"`
	}
	var view struct {
		Cash, Transferred, CreditNotes, Overdue, Unsettled, Withdrawable string
		Reserve                                                          struct{ Amount, State string }
		NonWithdrawable                                                  []part `json:"non_withdrawable"`
	}
	waitFor(t, func() string {
		view.NonWithdrawable = nil
		if code := d.get(t, "/v1/accounts/"+acct, &view); code != http.StatusOK || view.Withdrawable != "200.00" || view.Overdue != "300.00" {
			return fmt.Sprintf("HTTP %d: %+v, want withdrawable 200.00 once every event is in", code, view)
		}
		return ""
	})
	if view.Cash != "1000.00" || view.Reserve.Amount != "100.00" || view.Reserve.State != "frozen" {
		t.Errorf("cash %s reserve %+v, want cash 1000.00 and the frozen CNY 100", view.Cash, view.Reserve)
	}
	sum := map[string]string{}
	for _, p := range view.NonWithdrawable {
		sum[p.Part] = p.Amount
	}
	// Transferred funds offset overdue (300) and unsettled (200) first, so the cash
	// frozen for outstanding payments is the credit notes' 200.
	if sum["transferred"] != "500.00" || sum["reserve"] != "100.00" || sum["credit_notes"] != "200.00" || len(sum) != 3 {
		t.Errorf("non-withdrawable parts %+v: want transferred 500 and reserve 100, plus 200 frozen for outstanding payments", view.NonWithdrawable)
	}
}
