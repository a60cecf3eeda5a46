package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/internal/testenv"
)

// lockedBuffer is a bytes.Buffer several goroutines write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNoAccountNumberOrPayeeAppearsInTheLogsOrTheReadAPI(t *testing.T) {
	logs := &lockedBuffer{}
	capturedLogs = logs
	t.Cleanup(func() { capturedLogs = nil })
	d := startDaemon(t, testenv.StartNATS(t).URL, testenv.StartRedis(t).URL)
	const acct = "acct-secrets"
	const number, payee = "6222020200012349876", "Zhou Secretname"
	at := d.openWithTopUp(t, acct)
	dst := &events.Destination{Kind: events.DestinationBankCard, AccountNo: number, PayeeName: payee, Bank: "ICBC", Branch: "b", ProvinceCity: "Shanghai"}
	d.publish(t, events.WithdrawalRequested, acct, "sec-1", at.Add(time.Minute),
		&events.WithdrawalRequestedData{WithdrawalID: "w-sec", TopupID: "t1", Amount: events.MustAmount("10.00"), Method: events.MethodDesignated, Destination: dst})
	// One that is refused and dead-lettered with the destination in it, too.
	d.publish(t, events.WithdrawalRequested, acct, "sec-2", at.Add(2*time.Minute),
		&events.WithdrawalRequestedData{WithdrawalID: "w-sec", TopupID: "t1", Amount: events.MustAmount("99.00"), Method: events.MethodDesignated, Destination: dst})
	d.waitForCase(t, "w-sec", events.StatusInReview)
	d.reviewDecision(t, acct, "w-sec", events.DecisionApproved, at.Add(3*time.Minute))
	d.waitForCase(t, "w-sec", events.StatusApprovedPendingTransfer)
	waitFor(t, func() string {
		if n := len(d.deadLetterReasons(t, "deadletter.>")); n != 1 {
			return fmt.Sprintf("%d dead-lettered subjects, want the conflicting request", n)
		}
		return ""
	})
	var api strings.Builder
	for _, path := range []string{"/v1/cases/w-sec", "/v1/accounts/" + acct, "/v1/accounts/" + acct + "/cases", "/v1/accounts/" + acct + "/topups"} {
		resp, err := http.Get("http://" + d.httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		api.Write(body)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"the logs": logs.String(), "the read API": api.String()} {
		for _, secret := range []string{number, payee} {
			if strings.Contains(text, secret) {
				t.Errorf("%s carry %q", where, secret)
			}
		}
	}
	if !strings.Contains(api.String(), "****9876") {
		t.Errorf("the read API does not show the masked number: %s", api.String())
	}
	if !strings.Contains(logs.String(), "refundd ready") {
		t.Error("no log output was captured: the scan would prove nothing")
	}
}
