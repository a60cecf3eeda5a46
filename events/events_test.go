package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func dataOf(env map[string]any) map[string]any { return env["data"].(map[string]any) }

func TestDecodeAcceptsTheExampleOfEveryType(t *testing.T) {
	examples := exampleEvents(t)
	for _, spec := range Catalog() {
		t.Run(string(spec.Type), func(t *testing.T) {
			raw, ok := examples[spec.Type]
			if !ok {
				t.Fatalf("asyncapi.yaml has no example of %s", spec.Type)
			}
			ev, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if ev.Type != spec.Type || ev.Subject != "acct-42" {
				t.Errorf("decoded type %q subject %q", ev.Type, ev.Subject)
			}
			if got, want := reflect.TypeOf(ev.Payload), reflect.TypeOf(spec.NewPayload()); got != want {
				t.Errorf("payload is %v, want %v", got, want)
			}
		})
	}
}

func TestDecodeFillsTheTypedPayload(t *testing.T) {
	ev, err := Decode(mustJSON(t, exampleEvent(t, TopupReceived)))
	if err != nil {
		t.Fatal(err)
	}
	want := &TopupReceivedData{
		TopupID: "tp-1001", Amount: MustAmount("1000.00"), Currency: "CNY", Channel: ChannelOnlineBanking,
		Banking: BankingPersonal, Bank: "CMB", PayerType: "individual", PayerName: "Li Lei",
	}
	if !reflect.DeepEqual(ev.Payload, want) {
		t.Errorf("payload = %+v, want %+v", ev.Payload, want)
	}
	if wantTime := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC); ev.Time != wantTime {
		t.Errorf("time = %v, want %v", ev.Time, wantTime)
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name   string
		typ    Type
		mutate func(env map[string]any)
	}{
		{"unknown fields in data, which others may add", TopupReceived, func(env map[string]any) { dataOf(env)["promotion"] = "x" }},
		{"CloudEvents extension attributes", TopupReceived, func(env map[string]any) { env["traceparent"] = "00-abc" }},
		{"no datacontenttype", TopupReceived, func(env map[string]any) { delete(env, "datacontenttype") }},
		{"a time with an offset", TopupReceived, func(env map[string]any) { env["time"] = "2026-11-23T16:00:00+08:00" }},
		{"an amount without fraction digits", TopupReceived, func(env map[string]any) { dataOf(env)["amount"] = "100" }},
		{"an amount with one fraction digit", TopupReceived, func(env map[string]any) { dataOf(env)["amount"] = "0.5" }},
		{"the largest amount", TopupReceived, func(env map[string]any) { dataOf(env)["amount"] = MaxAmount }},
		{"an unknown bank code, which gets the default window", TopupReceived, func(env map[string]any) { dataOf(env)["bank"] = "ABC123" }},
		{"optional fields absent", TopupReceived, func(env map[string]any) {
			for _, f := range []string{"banking", "bank", "stripe_payment_id"} {
				delete(dataOf(env), f)
			}
		}},
		{"account opened without currency", AccountOpened, func(env map[string]any) { delete(dataOf(env), "currency") }},
		{"account opened unverified", AccountOpened, func(env map[string]any) { dataOf(env)["verified"] = false }},
		{"consumption paid only by vouchers", ConsumptionRecorded, func(env map[string]any) { dataOf(env)["amount"] = "0.00" }},
		{"consumption without voucher part", ConsumptionRecorded, func(env map[string]any) { delete(dataOf(env), "voucher_amount") }},
		{"a cycle settled at zero", CycleSettled, func(env map[string]any) { dataOf(env)["amount"] = "0" }},
		{"an original-route withdrawal without destination", WithdrawalRequested, func(env map[string]any) {
			dataOf(env)["method"] = MethodOriginal
			delete(dataOf(env), "destination")
		}},
		{"a withdrawal of non-top-up funds (no topup_id)", WithdrawalRequested, func(env map[string]any) { delete(dataOf(env), "topup_id") }},
		{"a case just opened (empty previous)", CaseStatusChanged, func(env map[string]any) { dataOf(env)["previous"] = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := exampleEvent(t, tt.typ)
			tt.mutate(env)
			if _, err := Decode(mustJSON(t, env)); err != nil {
				t.Fatalf("Decode: %v", err)
			}
		})
	}
}

func TestAnAbsentAccountCurrencyStaysAbsentInTheData(t *testing.T) {
	env := exampleEvent(t, AccountOpened)
	delete(dataOf(env), "currency")
	ev, err := Decode(mustJSON(t, env))
	if err != nil {
		t.Fatal(err)
	}
	// The default is the engine's rule (state.Rules.DefaultCurrency), not the wire's.
	if d := ev.Payload.(*AccountOpenedData); d.Currency != "" {
		t.Errorf("Currency = %q, want it left empty", d.Currency)
	}
}

func TestDecodeRefuses(t *testing.T) {
	set := func(field string, v any) func(map[string]any) {
		return func(env map[string]any) { dataOf(env)[field] = v }
	}
	drop := func(field string) func(map[string]any) {
		return func(env map[string]any) { delete(dataOf(env), field) }
	}
	setEnv := func(field string, v any) func(map[string]any) {
		return func(env map[string]any) { env[field] = v }
	}
	dropEnv := func(field string) func(map[string]any) {
		return func(env map[string]any) { delete(env, field) }
	}
	setDest := func(field string, v any) func(map[string]any) {
		return func(env map[string]any) { dataOf(env)["destination"].(map[string]any)[field] = v }
	}
	tests := []struct {
		name      string
		typ       Type
		mutate    func(map[string]any)
		wantField string
		wantErr   error // besides ErrInvalid
	}{
		// envelope
		{"specversion other than 1.0", TopupReceived, setEnv("specversion", "0.3"), "specversion", nil},
		{"no specversion", TopupReceived, dropEnv("specversion"), "specversion", nil},
		{"no id", TopupReceived, dropEnv("id"), "id", nil},
		{"id over 256 bytes", TopupReceived, setEnv("id", strings.Repeat("i", 257)), "id", nil},
		{"no source", TopupReceived, setEnv("source", ""), "source", nil},
		{"no type", TopupReceived, dropEnv("type"), "type", nil},
		{"unknown type", TopupReceived, setEnv("type", "billing.topup.reversed"), "type", ErrUnknownType},
		{"subject with a dot (acct.42)", TopupReceived, setEnv("subject", "acct.42"), "subject", nil},
		{"empty subject", TopupReceived, setEnv("subject", ""), "subject", nil},
		{"subject of 65 characters", TopupReceived, setEnv("subject", strings.Repeat("a", 65)), "subject", nil},
		{"subject with a space (acct 42)", TopupReceived, setEnv("subject", "acct 42"), "subject", nil},
		{"subject with a NATS wildcard", TopupReceived, setEnv("subject", "acct-*"), "subject", nil},
		{"subject as a number", TopupReceived, setEnv("subject", 42), "subject", nil},
		{"no time", TopupReceived, dropEnv("time"), "time", nil},
		{"time without zone", TopupReceived, setEnv("time", "2026-11-23T08:00:00"), "time", nil},
		{"time as a number", TopupReceived, setEnv("time", 1700000000), "time", nil},
		{"datacontenttype other than application/json", TopupReceived, setEnv("datacontenttype", "text/plain"), "datacontenttype", nil},
		{"no data", TopupReceived, dropEnv("data"), "data", nil},
		{"null data", TopupReceived, setEnv("data", nil), "data", nil},
		{"data that is not an object", TopupReceived, setEnv("data", []any{1, 2}), "data", nil},
		{"data as a string", TopupReceived, setEnv("data", `{"topup_id":"tp-1"}`), "data", nil},

		// required fields
		{"missing topup_id", TopupReceived, drop("topup_id"), "data.topup_id", nil},
		{"empty topup_id", TopupReceived, set("topup_id", ""), "data.topup_id", nil},
		{"topup_id over 128 bytes", TopupReceived, set("topup_id", strings.Repeat("t", 129)), "data.topup_id", nil},
		{"missing amount", TopupReceived, drop("amount"), "data.amount", nil},
		{"null amount", TopupReceived, set("amount", nil), "data.amount", nil},
		{"missing currency", TopupReceived, drop("currency"), "data.currency", nil},
		{"missing payer_name", TopupReceived, drop("payer_name"), "data.payer_name", nil},
		{"missing verified, a boolean", AccountOpened, drop("verified"), "data.verified", nil},
		{"missing units, an integer", PackagePurchased, drop("units"), "data.units", nil},
		{"missing reviewer", CaseDecided, drop("reviewer"), "data.reviewer", nil},

		// amounts
		{"amount with a comma (1,00)", TopupReceived, set("amount", "1,00"), "data.amount", nil},
		{"amount with an exponent (1e3)", TopupReceived, set("amount", "1e3"), "data.amount", nil},
		{"amount that is not a number (abc)", TopupReceived, set("amount", "abc"), "data.amount", nil},
		{"amount with spaces", TopupReceived, set("amount", " 1.00"), "data.amount", nil},
		{"amount with a plus sign", TopupReceived, set("amount", "+1.00"), "data.amount", nil},
		{"empty amount", TopupReceived, set("amount", ""), "data.amount", nil},
		{"amount as a JSON number (1.5)", TopupReceived, set("amount", 1.5), "data.amount", nil},
		{"amount as a JSON integer (100)", TopupReceived, set("amount", 100), "data.amount", nil},
		{"negative amount", TopupReceived, set("amount", "-1.00"), "data.amount", nil},
		{"amount with three fraction digits", TopupReceived, set("amount", "1.005"), "data.amount", nil},
		{"amount with trailing third fraction digit zero", TopupReceived, set("amount", "1.000"), "data.amount", nil},
		{"amount over MaxAmount", TopupReceived, set("amount", "1000000000000.01"), "data.amount", nil},
		{"zero top-up", TopupReceived, set("amount", "0.00"), "data.amount", nil},
		{"zero voucher", VoucherGranted, set("amount", "0"), "data.amount", nil},
		{"zero transfer", TransferReceived, set("amount", "0"), "data.amount", nil},
		{"zero bill", BillIssued, set("amount", "0"), "data.amount", nil},
		{"zero usage", UsageAccrued, set("amount", "0"), "data.amount", nil},
		{"zero withdrawal", WithdrawalRequested, set("amount", "0.00"), "data.amount", nil},
		{"consumption of nothing at all", ConsumptionRecorded, func(env map[string]any) {
			dataOf(env)["amount"] = "0.00"
			delete(dataOf(env), "voucher_amount")
		}, "data.amount", nil},
		{"negative voucher part", ConsumptionRecorded, set("voucher_amount", "-5.00"), "data.voucher_amount", nil},
		{"negative cycle settlement", CycleSettled, set("amount", "-0.01"), "data.amount", nil},
		{"malformed optional amount", CreditNoteIssued, set("amount", "1e2"), "data.amount", nil},

		// enumerations
		{"unknown holder_type", AccountOpened, set("holder_type", "government"), "data.holder_type", nil},
		{"unknown account status", AccountStatusChanged, set("status", "suspended"), "data.status", nil},
		{"unknown channel", TopupReceived, set("channel", "wechat"), "data.channel", nil},
		{"channel in upper case", TopupReceived, set("channel", "ALIPAY"), "data.channel", nil},
		{"unknown banking", TopupReceived, set("banking", "business"), "data.banking", nil},
		{"unknown billing_mode", ResourceCreated, set("billing_mode", "spot"), "data.billing_mode", nil},
		{"unknown withdrawal method", WithdrawalRequested, set("method", "cash"), "data.method", nil},
		{"unknown destination kind", WithdrawalRequested, setDest("kind", "wechat"), "data.destination.kind", nil},
		{"unknown refund kind", RefundRequested, set("kind", "voucher"), "data.kind", nil},
		{"unknown decision", CaseDecided, set("decision", "maybe"), "data.decision", nil},
		{"unknown payout status", PayoutReported, set("status", "pending"), "data.status", nil},
		{"unknown case status", CaseStatusChanged, set("status", "lost"), "data.status", nil},

		// currency and bank codes
		{"currency in lower case", TopupReceived, set("currency", "cny"), "data.currency", nil},
		{"currency of four letters", TopupReceived, set("currency", "CNYY"), "data.currency", nil},
		{"account currency malformed", AccountOpened, set("currency", "RMB1"), "data.currency", nil},
		{"bank code in lower case", TopupReceived, set("bank", "cmb"), "data.bank", nil},
		{"bank code over 16 characters", TopupReceived, set("bank", strings.Repeat("B", 17)), "data.bank", nil},
		{"bank code with a space", TopupReceived, set("bank", "CM B"), "data.bank", nil},

		// types and conditional rules
		{"verified as a string", AccountOpened, set("verified", "yes"), "data.verified", nil},
		{"units as a string", PackagePurchased, set("units", "10"), "data.units", nil},
		{"units of zero", PackagePurchased, set("units", 0), "data.units", nil},
		{"units as a fraction", PackageConsumed, set("units", 2.5), "data.units", nil},
		{"destination as a string", WithdrawalRequested, set("destination", "6222..."), "data.destination", nil},
		{"designated withdrawal without destination", WithdrawalRequested, drop("destination"), "data.destination", nil},
		{"destination without account_no", WithdrawalRequested, setDest("account_no", ""), "data.destination.account_no", nil},
		{"destination bank in lower case", WithdrawalRequested, setDest("bank", "icbc"), "data.destination.bank", nil},
		{"order refund without order_id", RefundRequested, drop("order_id"), "data.order_id", nil},
		{"package refund without package_id", RefundRequested, set("kind", RefundPackage), "data.package_id", nil},
		{"refund with a malformed email", RefundRequested, set("email", "not-an-email"), "data.email", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := exampleEvent(t, tt.typ)
			tt.mutate(env)
			_, err := Decode(mustJSON(t, env))
			assertInvalid(t, err, tt.wantField, tt.wantErr)
		})
	}
}

func TestDecodeRefusesWhatIsNotAnEvent(t *testing.T) {
	tests := []struct {
		name string
		raw  string
	}{
		{"empty input", ""},
		{"not JSON", "hello"},
		{"truncated JSON", `{"specversion":"1.0"`},
		{"a JSON array", `[]`},
		{"a JSON string", `"event"`},
		{"JSON null", `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.raw))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func assertInvalid(t *testing.T, err error, wantField string, wantErr error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want refusal of %s", wantField)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	if wantErr != nil && !errors.Is(err, wantErr) {
		t.Errorf("errors.Is(%v, %v) = false", err, wantErr)
	}
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("err %v (%T) is not an *InvalidError", err, err)
	}
	if ie.Field != wantField {
		t.Errorf("field = %q, want %q (error: %v)", ie.Field, wantField, err)
	}
}

func TestDecodeErrorsReadAsFieldAndReason(t *testing.T) {
	tests := []struct {
		amount any
		want   string
	}{
		{"-1.00", "invalid event: data.amount: must not be negative"},
		{"1.005", `invalid event: data.amount: must be a decimal string with at most 2 fraction digits, like "100.00", got string "1.005"`},
		{"2000000000000", "invalid event: data.amount: must not exceed 1000000000000"},
		{1.5, `invalid event: data.amount: must be a decimal string with at most 2 fraction digits, like "100.00", got number 1.5`},
		{"1e3", `invalid event: data.amount: must be a decimal string with at most 2 fraction digits, like "100.00", got string "1e3"`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.amount), func(t *testing.T) {
			env := exampleEvent(t, TopupReceived)
			dataOf(env)["amount"] = tt.amount
			_, err := Decode(mustJSON(t, env))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	// Pad an unknown data field so that the whole event is exactly n bytes.
	eventOfSize := func(t *testing.T, n int) []byte {
		t.Helper()
		env := exampleEvent(t, ResourceReleased)
		dataOf(env)["padding"] = ""
		base := len(mustJSON(t, env))
		dataOf(env)["padding"] = strings.Repeat("x", n-base)
		raw := mustJSON(t, env)
		if len(raw) != n {
			t.Fatalf("built %d bytes, want %d", len(raw), n)
		}
		return raw
	}
	t.Run("exactly MaxEventSize is accepted", func(t *testing.T) {
		if _, err := Decode(eventOfSize(t, MaxEventSize)); err != nil {
			t.Fatalf("Decode: %v", err)
		}
	})
	t.Run("one byte over MaxEventSize is refused", func(t *testing.T) {
		_, err := Decode(eventOfSize(t, MaxEventSize+1))
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrTooLarge and ErrInvalid", err)
		}
	})
	t.Run("over MaxEventSize is refused before parsing", func(t *testing.T) {
		garbage := []byte(strings.Repeat("{", MaxEventSize+1))
		if _, err := Decode(garbage); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
}

func TestSentinelErrorsAreInvalid(t *testing.T) {
	for _, err := range []error{ErrUnknownType, ErrTooLarge, &InvalidError{Field: "data.x", Reason: "bad"}} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
		}
	}
	if errors.Is(ErrInvalid, ErrUnknownType) {
		t.Error("a plain ErrInvalid must not match ErrUnknownType")
	}
}

func TestEveryTypeRoundTripsThroughNewEncodeDecode(t *testing.T) {
	for typ, raw := range exampleEvents(t) {
		t.Run(string(typ), func(t *testing.T) {
			decoded, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			built, err := New(typ, decoded.Subject, decoded.Source, decoded.ID, decoded.Time, decoded.Payload)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			encoded, err := built.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := Decode(encoded)
			if err != nil {
				t.Fatalf("Decode(Encode(New(...))): %v\n%s", err, encoded)
			}
			if !reflect.DeepEqual(again, built) {
				t.Errorf("round trip changed the event\n got %+v\nwant %+v", again, built)
			}
		})
	}
}

func TestNewEncodeDecodeRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 16, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	expected := at.Add(48 * time.Hour).UTC()
	payload := &CaseStatusChangedData{
		CaseID: "wd-1", Kind: CaseWithdrawal, Status: StatusApprovedPendingTransfer, Previous: StatusInReview,
		Amount: MustAmount("200.50"), Reason: "approved", ExpectedBy: &expected,
	}
	built, err := New(CaseStatusChanged, "acct-42", "/refunds", "evt-1", at, payload)
	if err != nil {
		t.Fatal(err)
	}
	if built.SpecVersion != "1.0" || built.DataContentType != "application/json" || built.Time != at.UTC() {
		t.Errorf("New filled specversion %q, datacontenttype %q, time %v", built.SpecVersion, built.DataContentType, built.Time)
	}
	encoded, err := built.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(encoded), `"amount":"200.50"`) {
		t.Errorf("amount not encoded as a 2-digit string: %s", encoded)
	}
	decoded, err := Decode(encoded)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(decoded, built) {
		t.Errorf("round trip changed the event\n got %+v\nwant %+v", decoded, built)
	}
}

func TestNewRefuses(t *testing.T) {
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	reserve := func() *ReserveUnfrozenData { return &ReserveUnfrozenData{Amount: MustAmount("100")} }
	tests := []struct {
		name      string
		typ       Type
		account   string
		id        string
		at        time.Time
		payload   Payload
		wantField string
	}{
		{"an unknown type", "refunds.reserve.melted", "acct-42", "e1", at, reserve(), "type"},
		{"no payload", ReserveUnfrozen, "acct-42", "e1", at, nil, "data"},
		{"a nil payload pointer", ReserveUnfrozen, "acct-42", "e1", at, (*ReserveUnfrozenData)(nil), "data"},
		{"the payload of another type", ReserveFrozen, "acct-42", "e1", at, reserve(), "data"},
		{"an invalid payload", ReserveUnfrozen, "acct-42", "e1", at, &ReserveUnfrozenData{Amount: MustAmount("-100")}, "data.amount"},
		{"an amount finer than cents", ReserveUnfrozen, "acct-42", "e1", at, &ReserveUnfrozenData{Amount: thirdOf("100.00")}, "data.amount"},
		{"a bad account id", ReserveUnfrozen, "acct.42", "e1", at, reserve(), "subject"},
		{"no id", ReserveUnfrozen, "acct-42", "", at, reserve(), "id"},
		{"no time", ReserveUnfrozen, "acct-42", "e1", time.Time{}, reserve(), "time"},
		{"a designated payout without destination", PayoutRequested, "acct-42", "e1", at,
			&PayoutRequestedData{PayoutID: "po-1", CaseID: "wd-1", Amount: MustAmount("1"), Currency: "CNY", Route: RouteDesignated}, "data.destination"},
		{"a review without reasons", ReviewRequested, "acct-42", "e1", at,
			&ReviewRequestedData{CaseID: "wd-1", Kind: CaseWithdrawal, Amount: MustAmount("1")}, "data.reasons"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.typ, tt.account, "/refunds", tt.id, tt.at, tt.payload)
			assertInvalid(t, err, tt.wantField, nil)
		})
	}
}

// thirdOf gives an amount with more than 2 fraction digits, as arithmetic in
// the domain might, to check that New refuses it rather than rounds it.
func thirdOf(s string) Amount { return AmountOf(MustAmount(s).Div(MustAmount("3").Decimal)) }

func TestEncodeRefusesAnEventOverMaxEventSize(t *testing.T) {
	reasons := make([]string, 0, 1100)
	for range 1100 {
		reasons = append(reasons, strings.Repeat("r", 1000))
	}
	ev, err := New(ReviewRequested, "acct-42", "/refunds", "e1", time.Now(),
		&ReviewRequestedData{CaseID: "wd-1", Kind: CaseWithdrawal, Amount: MustAmount("1"), Reasons: reasons})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Encode(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Encode err = %v, want ErrTooLarge", err)
	}
}

func TestNATSSubject(t *testing.T) {
	if got := NATSSubject(ResourceReleased, "acct-42"); got != "billing.resource.released.acct-42" {
		t.Errorf("NATSSubject = %q", got)
	}
	ev, err := Decode(mustJSON(t, exampleEvent(t, TopupReceived)))
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.NATSSubject(); got != "billing.topup.received.acct-42" {
		t.Errorf("Event.NATSSubject = %q", got)
	}
	if got := DeadLetterSubject(ev.NATSSubject()); got != "deadletter.billing.topup.received.acct-42" {
		t.Errorf("DeadLetterSubject = %q", got)
	}
}

func TestValidAccountID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"acct-42", true},
		{"A_z-0", true},
		{"a", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"acct.42", false},
		{"acct 42", false},
		{"acct*", false},
		{"acct>", false},
		{"accté", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			if got := ValidAccountID(tt.id); got != tt.want {
				t.Errorf("ValidAccountID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestCatalog(t *testing.T) {
	all := []Type{
		AccountOpened, AccountStatusChanged, TopupReceived, ConsumptionRecorded, VoucherGranted,
		TransferReceived, TransferRecalled, UsageAccrued, CycleSettled, BillIssued, BillPaid,
		CreditNoteIssued, CreditNoteResolved, InvoiceIssued, InvoiceReversed, ResourceCreated,
		ResourceReleased, PackagePurchased, PackageConsumed, OrderPurchased, OrderUsed,
		WithdrawalRequested, DiscontinuationRequested, RefundRequested, RefundAppealed, CaseDecided, PayoutReported,
		CaseStatusChanged, CaseOverdue, ResourcesReleaseRequested, InvoiceReversalRequired, ReviewRequested, PayoutRequested, ReserveFrozen, ReserveUnfrozen, BalanceChanged,
	}
	catalog := Catalog()
	if len(catalog) != len(all) {
		t.Errorf("catalog has %d types, want %d", len(catalog), len(all))
	}
	if !slices.IsSortedFunc(catalog, func(a, b Spec) int { return strings.Compare(string(a.Type), string(b.Type)) }) {
		t.Error("catalog is not sorted by type")
	}
	for _, typ := range all {
		spec, ok := Lookup(typ)
		if !ok {
			t.Errorf("Lookup(%s) found nothing", typ)
			continue
		}
		wantDir := Inbound
		if strings.HasPrefix(string(typ), "refunds.") {
			wantDir = Outbound
		}
		if spec.Direction != wantDir {
			t.Errorf("%s direction = %v, want %v", typ, spec.Direction, wantDir)
		}
		if p1, p2 := spec.NewPayload(), spec.NewPayload(); p1 == p2 {
			t.Errorf("%s NewPayload returns the same payload twice", typ)
		}
	}
	catalog[0].Type = "changed"
	if Catalog()[0].Type == "changed" {
		t.Error("Catalog returns the package's own slice")
	}
}
