package events

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeRefusesKeysAStrictReaderWouldReadOtherwise(t *testing.T) {
	envelope := func(data string) string {
		return `{"specversion":"1.0","id":"e1","source":"/billing","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":` + data + `}`
	}
	withdrawal := func(destination string) string {
		return `{"specversion":"1.0","id":"e1","source":"/console","type":"console.withdrawal.requested","subject":"acct-1","time":"2026-11-23T08:00:00Z",` +
			`"data":{"withdrawal_id":"w1","amount":"1.00","method":"designated","destination":` + destination + `}}`
	}
	tests := []struct {
		name, event, field, says string
	}{
		{"an amount given twice, in two cases", envelope(`{"consumption_id":"c","amount":"1.00","AMOUNT":"300.00"}`), "data.AMOUNT", "only in case"},
		{"an amount given twice", envelope(`{"consumption_id":"c","amount":"1.00","amount":"2.00"}`), "data.amount", "appears twice"},
		{"a key in another case alone", envelope(`{"consumption_id":"c","Amount":"1.00"}`), "data.Amount", "only in case"},
		{"an envelope attribute twice", strings.Replace(envelope(`{"consumption_id":"c","amount":"1.00"}`), `"subject":"acct-1"`, `"subject":"acct-1","subject":"acct-2"`, 1), "subject", "appears twice"},
		{"an envelope attribute in another case", strings.Replace(envelope(`{"consumption_id":"c","amount":"1.00"}`), `"subject":"acct-1"`, `"subject":"acct-1","Subject":"acct-2"`, 1), "Subject", "only in case"},
		{"a destination's account number twice", withdrawal(`{"kind":"alipay","account_no":"a1","payee_name":"Li","account_no":"a2"}`), "data.destination.account_no", "appears twice"},
		{"a destination's account number in another case", withdrawal(`{"kind":"alipay","account_no":"a1","payee_name":"Li","Account_No":"a2"}`), "data.destination.Account_No", "only in case"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.event))
			var inv *InvalidError
			if !errors.As(err, &inv) || inv.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("err = %v, want %s refused: %s", err, tc.field, tc.says)
			}
		})
	}
	t.Run("unknown keys, extensions included, are still ignored", func(t *testing.T) {
		ev := strings.Replace(envelope(`{"consumption_id":"c","amount":"1.00","note":{"x":1,"y":[{"a":1},{"a":2}]}}`), `"id":"e1"`, `"id":"e1","traceparent":"00-x"`, 1)
		if _, err := Decode([]byte(ev)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDecodeSaysAZeroTimeIsNotARealTime(t *testing.T) {
	ev := `{"specversion":"1.0","id":"e1","source":"/billing","type":"billing.consumption.recorded","subject":"acct-1","time":"0001-01-01T00:00:00Z","data":{"consumption_id":"c","amount":"1.00"}}`
	_, err := Decode([]byte(ev))
	if err == nil || !strings.Contains(err.Error(), "must be a real time") {
		t.Fatalf("err = %v", err)
	}
}
