package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// The envelope is encoded by hand; whatever it holds, the bytes must be those
// encoding/json writes, or nothing (and then json.Marshal writes them).
func FuzzEnvelopeEncodesAsEncodingJSON(f *testing.F) {
	f.Add("1.0", "rf-1a2b-0", "/refunds", "refunds.account.balance_changed", "acct-42", int64(1795453137868000000), int32(0), "application/json", []byte(`{"cash":"1.00","withdrawable":"0.00"}`))
	f.Add("1.0", "id with \"quotes\" and <tags>", "/s", "t", "a", int64(0), int32(8*3600), "", []byte(" { \"a\" : [1, 2] ,\n \"b\":\"x < y & z\" } "))
	f.Add("1.0", "é\u2028", "/s", "t", "a", int64(-1<<63), int32(-(5*3600 + 30*60)), "text/plain", []byte(nil))
	f.Add("", "", "", "", "", int64(1<<63-1), int32(100000), "", []byte(`not json`))
	f.Fuzz(func(t *testing.T, spec, id, source, typ, subject string, unixNano int64, zoneSeconds int32, contentType string, data []byte) {
		at := time.Unix(0, unixNano).UTC()
		if zoneSeconds != 0 {
			at = at.In(time.FixedZone("", int(zoneSeconds)))
		}
		env := Envelope{SpecVersion: spec, ID: id, Source: source, Type: Type(typ), Subject: subject,
			Time: at, DataContentType: contentType, Data: data}
		want, wantErr := json.Marshal(env)
		got, ok := appendEnvelope(nil, env)
		if !ok {
			return // json.Marshal's to write, error and all
		}
		if wantErr != nil {
			t.Fatalf("appendEnvelope wrote %s where json.Marshal fails: %v", got, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendEnvelope wrote\n%s\njson.Marshal writes\n%s", got, want)
		}
	})
}

func TestEveryEventOfThisServiceIsEncodedByHand(t *testing.T) {
	ev, err := New(BalanceChanged, "acct-42", "/refunds", "rf-0123456789abcdef-0", time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC),
		&BalanceChangedData{CauseID: "e-1", CauseType: TopupReceived, Currency: "CNY", Cash: MustAmount("100.00"), Withdrawable: MustAmount("0.00")})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendEnvelope(nil, ev.Envelope)
	if !ok {
		t.Fatal("an ordinary outbound event took the slow way")
	}
	want, _ := json.Marshal(ev.Envelope)
	if !bytes.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// The payloads published on nearly every event are written by hand; whatever they
// hold, the bytes must be those encoding/json writes, or nothing (and then json.Marshal
// writes them).
func FuzzPayloadsEncodeAsEncodingJSON(f *testing.F) {
	f.Add("e-1", "billing.topup.received", "CNY", "100.00", "0.00", "approved_pending_transfer", "", "", int64(1795453137868000000), int32(0), true)
	f.Add("wd-1", "李伟 <x> & \"y\"", "", "-0.5", "12345678901234567890.123", "rejected", "exceeds the order's 10.00", "exceeds_order_withdrawable", int64(0), int32(-(5*3600 + 30*60)), false)
	f.Add("\xff", "\u2028", "\x00", "1e3", "0", "", "\t", "", int64(1<<63-1), int32(100000), true)
	f.Fuzz(func(t *testing.T, id, text, currency, cash, withdrawable, status, reason, code string, unixNano int64, zoneSeconds int32, expected bool) {
		cd, err1 := decimal.NewFromString(cash)
		wd, err2 := decimal.NewFromString(withdrawable)
		if err1 != nil || err2 != nil {
			return
		}
		c, w := AmountOf(cd), AmountOf(wd)
		at := time.Unix(0, unixNano).UTC()
		if zoneSeconds != 0 {
			at = at.In(time.FixedZone("", int(zoneSeconds)))
		}
		moved := &CaseStatusChangedData{CaseID: id, Kind: text, Status: status, Previous: currency, Amount: c, Reason: reason, ReasonCode: code}
		if expected {
			moved.ExpectedBy = &at
		}
		for _, p := range []payloadAppender{
			&BalanceChangedData{CauseID: id, CauseType: Type(text), Currency: currency, Cash: c, Withdrawable: w},
			moved,
		} {
			want, wantErr := json.Marshal(p)
			got, ok := p.appendJSON(nil)
			if !ok {
				continue
			}
			if wantErr != nil {
				t.Fatalf("%T wrote %s where json.Marshal fails: %v", p, got, wantErr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%T wrote\n%s\njson.Marshal writes\n%s", p, got, want)
			}
		}
	})
}
