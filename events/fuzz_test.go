package events

import (
	"encoding/json"
	"reflect"
	"testing"
)

// sameJSON compares two JSON values by meaning: encoding may escape differently
// ("&" becomes "\u0026") without changing what the data says.
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// addExamples seeds f with the contract's examples (parseExamples).
func addExamples(f *testing.F) {
	examples, err := parseExamples()
	if err != nil {
		f.Fatal(err)
	}
	for _, ex := range examples {
		f.Add(ex)
	}
}

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and whatever it
// accepts must encode back into bytes it accepts again, as the same event. In CI it runs
// over its seed corpus and testdata/fuzz; `go test -fuzz FuzzDecode ./events/` explores.
func FuzzDecode(f *testing.F) {
	addExamples(f)
	for _, seed := range []string{
		`{"specversion":"1.0","id":"e1","source":"/billing","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"consumption_id":"c","amount":"1.00","AMOUNT":"300.00"}}`,
		`{"specversion":"1.0","id":"e1","source":"/billing","type":"billing.consumption.recorded","subject":"acct-1","time":"0001-01-01T00:00:00Z","data":{"consumption_id":"c","amount":"-0.00"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.topup.received","subject":"a.*","time":"2026-11-23T08:00:00Z","data":{"amount":1e30}}`,
		`{"specversion":"1.0","id":"e1","id":"e2"}`, `[]`, `null`, `{"data":{"data":{"data":{}}}}`, "\x00\xff{",
		// The rest of the over-the-wire bad-input table (cmd/refundd/badinput_test.go).
		`{"specversion":"1.0","id":"e1","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"consumption_id":"c","amount":"1.00"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.invented","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"consumption_id":"c"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"consumption_id":"c","amount":"NaN"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"consumption_id":"c","amount":"9999999999999999999999999999999999999999"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.topup.received","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"topup_id":"t9","amount":"10.00","currency":"USD","channel":"alipay","payer_type":"individual","payer_name":"Li"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct 1","time":"3000-01-01T00:00:00Z","data":{"consumption_id":"c","amount":"1.00"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"review.case.decided","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"case_id":"w-none","decision":"approved","reviewer":"r1"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil {
			return
		}
		again, err := ev.Encode()
		if err != nil {
			t.Fatalf("an accepted event does not encode: %v", err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("an accepted event, encoded, is refused: %v\n%s", err, again)
		}
		if back.ID != ev.ID || back.Type != ev.Type || back.Subject != ev.Subject || !back.Time.Equal(ev.Time) || !sameJSON(back.Data, ev.Data) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev.Envelope, back.Envelope)
		}
	})
}

// FuzzScanEnvelope holds Decode's fast reading of the envelope to json.Unmarshal: when
// scanEnvelope reads raw, json.Unmarshal reads the very same envelope from it. In CI it
// runs over its seeds; `go test -fuzz FuzzScanEnvelope ./events/` explores.
func FuzzScanEnvelope(f *testing.F) {
	addExamples(f)
	for _, seed := range []string{
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.topup.received","subject":"acct-1","time":"2026-11-23T08:00:00Z","ext":{"a":[1,"}"]},"data":{"x":"\"}"}}`,
		`{"ID":"e1","id":"e2"}`, `{"ID":"e1"}`, `{"Data":{},"time":"t"}`, `{"id":"e1","id":"e2"}`, `{"id":null}`, `{"id":5}`, `{"id":"\u0065"}`, `{"ſource":"s"}`, `{"id":"a\xffb"}`,
		`{"time":null,"data":null}`, ` {"id" : "e1" , "data" : [ ] } `, `{"id":"e1"} x`, `{"Kid":"k"}`, `{"id":"日本"}`, `[]`, `"s"`, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		scanned, ok, unique := scanEnvelope(raw)
		if !ok {
			return
		}
		if err := checkKeys(raw, reflect.TypeFor[wireEnvelope](), ""); unique && err != nil {
			t.Fatalf("scanEnvelope found the keys of %q unique, and checkKeys refuses them: %v", raw, err)
		}
		var unmarshaled wireEnvelope
		if err := json.Unmarshal(raw, &unmarshaled); err != nil {
			t.Fatalf("scanEnvelope read %q, which json.Unmarshal refuses: %v", raw, err)
		}
		if !reflect.DeepEqual(scanned, unmarshaled) {
			t.Fatalf("from %q, scanEnvelope read\n%+v\nand json.Unmarshal\n%+v", raw, scanned, unmarshaled)
		}
	})
}
