package main

import (
	"strings"
	"testing"
)

func TestWatchMasksTheDestinationsAccountNumberAndPayee(t *testing.T) {
	body := []byte(`{"specversion":"1.0","type":"refunds.payout.requested","data":{"payout_id":"po-w1","destination":{"kind":"bank_card","account_no":"6222020200012341234","payee_name":"Li Wei","bank":"ICBC"}}}`)
	got := string(maskDestination(body))
	if strings.Contains(got, "6222020200012341234") || strings.Contains(got, "Li Wei") || !strings.Contains(got, "****1234") || !strings.Contains(got, `"po-w1"`) {
		t.Fatalf("printed %s", got)
	}
	plain := []byte(`{"type":"refunds.account.balance_changed","data":{"cash":"1.00"}}`)
	if string(maskDestination(plain)) != string(plain) {
		t.Errorf("an event without a destination was changed")
	}
}
