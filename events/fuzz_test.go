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

// FuzzFastReadingChangesNothing decodes the same bytes with the one-pass readings and
// without them (encoding/json's way, as before they existed): the same event, the
// same digests and encoding, or the same refusal word for word. In CI it runs over its
// seeds and the contract's examples; `go test -fuzz FuzzFastReadingChangesNothing
// ./events/` explores.
func FuzzFastReadingChangesNothing(f *testing.F) {
	addExamples(f)
	for _, seed := range []string{
		string(benchEvent),
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"consumption_id":"c","amount":"1.00","AMOUNT":"300.00"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"amount":"1.00","amount":"2.00"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"amount":1,"x":{"y":1,"y":2}}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.package.purchased","subject":"acct-1","time":"2026-11-23T08:00:00.123+08:00","data":{"package_id":"p\u00e9","price":"30.00","units":12}}`,
		`{"specversion":"1.0","id":"e1","id":"e2","source":"/b","type":"billing.resource.created","subject":"acct-1","time":"2026-11-23T08:00:00Z","ext":{"a":1,"a":2},"data":{"resource_id":"r","billing_mode":"payg"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"console.withdrawal.requested","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"withdrawal_id":"w1","amount":"10.00","method":"designated","destination":{"kind":"alipay","account_no":"1","payee_name":"李伟"}}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.account.status_changed","subject":"acct-1","time":"\u0032026-11-23T08:00:00Z","data":{"status":"frozen","terms_violated":null}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.account.opened","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"holder_type":"individual","holder_name":"Li","verified":"yes"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, fastErr := Decode(raw)
		var slow Event
		var slowErr, slowEncodeErr error
		var slowContent, slowFact string
		var slowEncoded []byte
		withoutFastReading(func() {
			if slow, slowErr = Decode(raw); slowErr == nil {
				slowContent, slowFact = slow.Digests()
				slowEncoded, slowEncodeErr = slow.Encode()
			}
		})
		if (fastErr == nil) != (slowErr == nil) || fastErr != nil && fastErr.Error() != slowErr.Error() {
			t.Fatalf("%q: the fast reading says %v, encoding/json's %v", raw, fastErr, slowErr)
		}
		if fastErr != nil {
			return
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: the fast reading decodes\n%+v\nencoding/json's\n%+v", raw, fast, slow)
		}
		if content, fact := fast.Digests(); content != slowContent || fact != slowFact {
			t.Fatalf("%q: digests %s %s against %s %s", raw, content, fact, slowContent, slowFact)
		}
		encoded, err := fast.Encode()
		if (err == nil) != (slowEncodeErr == nil) || string(encoded) != string(slowEncoded) {
			t.Fatalf("%q: encodes as %s (%v) against %s (%v)", raw, encoded, err, slowEncoded, slowEncodeErr)
		}
	})
}

// withoutFastReading runs f with fastReading off, and turns it on again however f ends.
// Not for parallel tests: fastReading is the package's.
func withoutFastReading(f func()) {
	fastReading = false
	defer func() { fastReading = true }()
	f()
}

// wireEnvelope.field places each envelope key where envelopeKeys has it: scanEnvelope's
// record of the keys that came is by that place.
func TestEachEnvelopeKeyHasItsPlace(t *testing.T) {
	var w wireEnvelope
	for i, key := range envelopeKeys {
		if at, text, raw := w.field(key); at != i || (text == nil) == (raw == nil) {
			t.Errorf("field(%q) = %d, want %d with one place to keep it", key, at, i)
		}
	}
	if at, text, raw := w.field("ext"); at != -1 || text != nil || raw != nil {
		t.Errorf("field(ext) = %d, %v, %v, want -1 and nothing", at, text, raw)
	}
}
