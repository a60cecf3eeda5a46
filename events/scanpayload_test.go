package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// FuzzScanPayload holds Decode's fast reading of a payload to what it replaced: when
// scanPayload reads data into a payload of any type, json.Unmarshal reads the very same
// payload from it, payloadKeys refuses no key, and the fields scanPayload says were
// given are those payloadKeys lists. In CI it runs over its seeds; `go test -fuzz
// FuzzScanPayload ./events/` explores.
func FuzzScanPayload(f *testing.F) {
	for _, seed := range []string{
		`{"topup_id":"t1","amount":"500.00","currency":"CNY","channel":"online_banking","banking":"personal","bank":"CMB","payer_type":"individual","payer_name":"Li Wei"}`,
		`{"consumption_id":"c","amount":"1.00","voucher_amount":null}`, `{"consumption_id":"c","amount":"1.00","voucher_amount":"0.50"}`,
		`{"consumption_id":"c","amount":"1.00","AMOUNT":"300.00"}`, `{"amount":"1.00","amount":"2.00"}`, `{"amount":1}`, `{"amount":"1e3"}`,
		`{"amount":"-0.00"}`, `{"amount":null}`, `{"amount":"01.00"}`, `{"holder_name":"李伟","verified":true}`, `{"verified":"true"}`,
		`{"holder_name":"Li\u0020Wei"}`, `{"holder_name":"a\xffb"}`, `{"ſtatus":"active"}`, `{"terms_violated":false}`, `{"terms_violated":null}`,
		`{"units":12,"package_id":"p"}`, `{"units":-3}`, `{"units":1.5}`, `{"units":1e2}`, `{"units":99999999999999999999}`, `{"units":"3"}`,
		`{"destination":{"kind":"alipay","account_no":"1"}}`, `{"destination":null}`, `{"extra":{"a":[1,{"b":"}"}]},"case_id":"w1"}`,
		` { "case_id" : "w1" , "decision" : "approved" } `, `{}`, `[]`, `"s"`, `null`,
	} {
		for i := range inboundSpecs() {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		specs := inboundSpecs()
		spec := specs[int(which)%len(specs)]
		if !json.Valid(data) {
			return // Decode has checked the whole event first
		}
		scanned := spec.NewPayload()
		given, ok := scanPayload(data, scanned)
		if !ok {
			return
		}
		unmarshaled := spec.NewPayload()
		if err := json.Unmarshal(data, unmarshaled); err != nil {
			t.Fatalf("scanPayload read %s as %s, which json.Unmarshal refuses: %v", data, spec.Type, err)
		}
		if !reflect.DeepEqual(scanned, unmarshaled) {
			t.Fatalf("from %s as %s, scanPayload read\n%+v\nand json.Unmarshal\n%+v", data, spec.Type, scanned, unmarshaled)
		}
		typ := reflect.TypeOf(scanned)
		present, err := payloadKeys(data, typ, "data")
		if err != nil {
			t.Fatalf("scanPayload read %s as %s, whose keys payloadKeys refuses: %v", data, spec.Type, err)
		}
		plan := payloadPlanOf(typ.Elem())
		for name, field := range plan.fields {
			if got, want := given&(1<<field.index) != 0, slices.Contains(present, name); got != want {
				t.Fatalf("from %s as %s, scanPayload says %s given: %v, payloadKeys: %v", data, spec.Type, name, got, want)
			}
		}
	})
}

func inboundSpecs() []Spec {
	var inbound []Spec
	for _, s := range Catalog() {
		if s.Direction == Inbound {
			inbound = append(inbound, s)
		}
	}
	return inbound
}

// TestScanPayloadLeavesTheUnusualToJSON lists what the fast reading must not read
// itself, because encoding/json reads it otherwise or refuses it with its own words.
func TestScanPayloadLeavesTheUnusualToJSON(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		payload    Payload
	}{
		{"an escape in a string", `{"holder_name":"Li\u0020Wei"}`, new(AccountOpenedData)},
		{"a key differing from a field only in case", `{"AMOUNT":"300.00"}`, new(ConsumptionRecordedData)},
		{"a key folding to a field only by Unicode", `{"ſtatus":"active"}`, new(AccountStatusChangedData)},
		{"a key given twice", `{"amount":"1.00","amount":"2.00"}`, new(ConsumptionRecordedData)},
		{"an amount as a JSON number", `{"amount":1}`, new(ConsumptionRecordedData)},
		{"an amount not in the wire's notation", `{"amount":"01.00"}`, new(ConsumptionRecordedData)},
		{"text that is not UTF-8", "{\"holder_name\":\"a\xffb\"}", new(AccountOpenedData)},
		{"a string for a bool", `{"verified":"true"}`, new(AccountOpenedData)},
		{"a fraction for an integer", `{"units":1.5}`, new(PackageData)},
		{"an integer too large", `{"units":99999999999999999999}`, new(PackageData)},
		{"a nested object", `{"withdrawal_id":"w1","destination":{"kind":"alipay"}}`, new(WithdrawalRequestedData)},
		{"a key of no field", `{"consumption_id":"c","amount":"1.00","note":"x"}`, new(ConsumptionRecordedData)},
		{"a key of no field given twice", `{"consumption_id":"c","note":"x","note":"y"}`, new(ConsumptionRecordedData)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := scanPayload([]byte(tc.data), tc.payload); ok {
				t.Errorf("scanPayload read %s itself; it must leave it to json.Unmarshal", tc.data)
			}
		})
	}
}

// TestDecodeReadsAPlainPayloadAsJSONWould decodes the common events both ways: what
// Decode returns is what json.Unmarshal makes of the payload.
func TestDecodeReadsAPlainPayloadAsJSONWould(t *testing.T) {
	for _, raw := range []string{
		string(benchEvent),
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"consumption_id":"c","amount":"0.00","voucher_amount":"2.50"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.package.purchased","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"package_id":"p","price":"30.00","units":12}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.account.status_changed","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"status":"active","terms_violated":true}}`,
	} {
		ev, err := Decode([]byte(raw))
		if err != nil {
			t.Fatalf("Decode(%s): %v", raw, err)
		}
		spec, _ := Lookup(ev.Type)
		want := spec.NewPayload()
		if err := json.Unmarshal(ev.Data, want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ev.Payload, want) {
			t.Errorf("Decode read %s as\n%+v\njson.Unmarshal as\n%+v", raw, ev.Payload, want)
		}
		if _, ok := scanPayload(ev.Data, spec.NewPayload()); !ok {
			t.Errorf("scanPayload left %s to json.Unmarshal; it is plain", ev.Data)
		}
	}
}

// FuzzPlainPayloadEncodesAsEncodingJSON holds appendPlainPayload to json.Marshal's
// bytes, for payloads of every inbound type that json.Unmarshal reads from the fuzzed
// data: an event's digests hash them, so one byte of difference would make a
// redelivered event look like a reused id. `go test -fuzz
// FuzzPlainPayloadEncodesAsEncodingJSON ./events/` explores.
func FuzzPlainPayloadEncodesAsEncodingJSON(f *testing.F) {
	for _, seed := range []string{
		`{"topup_id":"t1","amount":"500.00","currency":"CNY","channel":"online_banking","banking":"personal","bank":"CMB","payer_type":"individual","payer_name":"Li Wei"}`,
		`{"consumption_id":"c","amount":"1","voucher_amount":"0.5"}`, `{"consumption_id":"c<&>","amount":"1.00"}`, `{"holder_name":"李伟\u2028","verified":true,"email":""}`,
		`{"terms_violated":false,"status":"frozen"}`, `{"units":-12,"package_id":"p","price":"0"}`, `{"holder_name":"a\u007fb"}`,
		`{"withdrawal_id":"w1","destination":{"kind":"alipay","account_no":"1","payee_name":"Li"}}`, `{"amount":"-0.5"}`, `{}`,
	} {
		for i := range inboundSpecs() {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		specs := inboundSpecs()
		spec := specs[int(which)%len(specs)]
		p := spec.NewPayload()
		if json.Unmarshal(data, p) != nil {
			return
		}
		want, err := json.Marshal(p)
		if err != nil {
			return
		}
		got, ok := appendPlainPayload(nil, p)
		if ok && string(got) != string(want) {
			t.Fatalf("%s %+v:\nappendPlainPayload %s\njson.Marshal       %s", spec.Type, p, got, want)
		}
	})
}

// TestPlainPayloadsAreWrittenByHand: the common inbound payloads do not fall back to
// json.Marshal for their digests.
func TestPlainPayloadsAreWrittenByHand(t *testing.T) {
	ev, err := Decode(benchEvent)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := appendPlainPayload(nil, ev.Payload); !ok {
		t.Errorf("appendPlainPayload left %T to json.Marshal", ev.Payload)
	}
	if _, ok := appendPlainPayload(nil, &WithdrawalRequestedData{Destination: &Destination{Kind: "alipay"}}); ok {
		t.Errorf("appendPlainPayload wrote a destination, which it cannot write as json.Marshal does")
	}
}

func TestDecodePayloadChecksDataAsDecodeDoes(t *testing.T) {
	p, err := DecodePayload(ConsumptionRecorded, []byte(`{"consumption_id":"c1","amount":"12.50"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*ConsumptionRecordedData); got.ConsumptionID != "c1" || got.Amount.StringFixed(2) != "12.50" {
		t.Fatalf("decoded %+v", got)
	}
	for _, data := range []string{`{"consumption_id":"c1","amount":"1.00","AMOUNT":"300.00"}`, `{"amount":"1.00"}`, `{"consumption_id":"c1","amount":1}`, `[]`, `null`, `{`, ``} {
		raw := `{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":` + data + `}`
		_, decodeErr := Decode([]byte(raw))
		_, err := DecodePayload(ConsumptionRecorded, []byte(data))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodePayload(%s): %v, want ErrInvalid", data, err)
		}
		if data != `{` && data != `` && (decodeErr == nil || decodeErr.Error() != err.Error()) {
			t.Errorf("DecodePayload(%s): %v; Decode of the event says %v", data, err, decodeErr)
		}
	}
	if _, err := DecodePayload("billing.invented", []byte(`{}`)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("an unknown type: %v", err)
	}
}

// Payload shapes no payload of the contract has today, which the fast paths must leave
// to encoding/json rather than read or write by their own rules.
type (
	zeroTimeAndArray struct {
		ID  string    `json:"id"`
		At  time.Time `json:"at,omitempty"`
		Arr [2]int    `json:"arr,omitempty"`
	}
	selfMarshaling struct {
		ID   string    `json:"id"`
		Code upperText `json:"code"`
	}
	untagged struct {
		ID    string `json:"id"`
		Label string
	}
	embedding struct {
		zeroTimeAndArray
		Note string `json:"note"`
	}
	escapedName struct {
		ID string `json:"a<b"`
	}
	upperText string
)

func (upperText) MarshalJSON() ([]byte, error) { return []byte(`"UPPER"`), nil }
func (*zeroTimeAndArray) Validate() error      { return nil }
func (*selfMarshaling) Validate() error        { return nil }
func (*untagged) Validate() error              { return nil }
func (*embedding) Validate() error             { return nil }
func (*escapedName) Validate() error           { return nil }

func TestThePlainPathsLeaveWhatTheyCannotWriteAsJSONDoesToIt(t *testing.T) {
	for _, p := range []Payload{
		&zeroTimeAndArray{ID: "x"}, &selfMarshaling{ID: "x", Code: "lower"}, &untagged{ID: "x", Label: "l"},
		&embedding{zeroTimeAndArray: zeroTimeAndArray{ID: "x"}, Note: "n"}, &escapedName{ID: "x"},
	} {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := appendPlainPayload(nil, p); ok && string(got) != string(want) {
			t.Errorf("%T: appendPlainPayload wrote %s, json.Marshal %s", p, got, want)
		}
		fresh := reflect.New(reflect.TypeOf(p).Elem()).Interface().(Payload)
		if _, ok := scanPayload(want, fresh); ok {
			unmarshaled := reflect.New(reflect.TypeOf(p).Elem()).Interface()
			if err := json.Unmarshal(want, unmarshaled); err != nil || !reflect.DeepEqual(fresh, unmarshaled) {
				t.Errorf("%T: scanPayload read %s as %+v, json.Unmarshal as %+v", p, want, fresh, unmarshaled)
			}
		}
	}
}
