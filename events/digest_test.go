package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"
)

func TestARecordedDigestIsTheWholeDigestOrItsFirst16HexDigits(t *testing.T) {
	const digest = "0123456789abcdef01234567"
	for _, tc := range []struct {
		name     string
		recorded string
		same     bool
	}{
		{"the whole digest", digest, true},
		{"its first 16 hex digits, as a short record keeps them", digest[:16], true},
		{"another digest", "fedcba9876543210fedcba98", false},
		{"the first 16 hex digits of another", "fedcba9876543210", false},
		{"fewer than 16 of its digits: too few to tell contents apart", digest[:15], false},
		{"nothing", "", false},
		{"longer than the digest", digest + "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SameDigest(tc.recorded, digest); got != tc.same {
				t.Fatalf("SameDigest(%q, %q) = %v, want %v", tc.recorded, digest, got, tc.same)
			}
		})
	}
}

// TestDigestsAreThoseOfJSONMarshal: the digests an idempotency record keeps were
// computed over json.Marshal's bytes of the payload; a redelivery after an upgrade must
// find the same ones, or it would be parked as a reused id.
func TestDigestsAreThoseOfJSONMarshal(t *testing.T) {
	for _, raw := range []string{
		string(benchEvent),
		`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00.5+08:00","data":{"consumption_id":"c","amount":"0","voucher_amount":"2.5"}}`,
		`{"specversion":"1.0","id":"e1","source":"/b","type":"console.withdrawal.requested","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"withdrawal_id":"w1","amount":"10.00","method":"designated","destination":{"kind":"alipay","account_no":"13800000000","payee_name":"李伟"}}}`,
	} {
		ev, err := Decode([]byte(raw))
		if err != nil {
			t.Fatalf("Decode(%s): %v", raw, err)
		}
		canonical, err := json.Marshal(ev.Payload)
		if err != nil {
			t.Fatal(err)
		}
		factSum := sha256.Sum256(canonical)
		h := sha256.New()
		h.Write([]byte(string(ev.Type) + "\x00" + ev.Subject + "\x00" + ev.Time.UTC().Format(time.RFC3339Nano) + "\x00"))
		h.Write(canonical)
		wantContent, wantFact := hex.EncodeToString(h.Sum(nil)[:12]), hex.EncodeToString(factSum[:12])
		if content, fact := ev.Digests(); content != wantContent || fact != wantFact {
			t.Errorf("%s: digests %s %s, want %s %s", ev.Type, content, fact, wantContent, wantFact)
		}
	}
}

// The digests idempotency records keep, pinned as e6f04cf (before the fast paths and
// decimaltext) computed them: every writer of these bytes may change, these may not.
func TestDigestsAreThoseRecordsAlreadyHold(t *testing.T) {
	for _, tc := range []struct{ raw, content, fact string }{
		{string(benchEvent), "4bf76460f574aaa5a8e85c24", "e53c683d8a373cd2fa9d5172"},
		{`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.consumption.recorded","subject":"acct-1","time":"2026-11-23T08:00:00.5+08:00","data":{"consumption_id":"c","amount":"0","voucher_amount":"2.5"}}`,
			"a331f734b9f0b8e5bfd1da44", "ccbd2678a3cdb2722aa80107"},
		{`{"specversion":"1.0","id":"e1","source":"/b","type":"billing.package.purchased","subject":"acct-1","time":"2026-11-23T08:00:00Z","data":{"package_id":"p","price":"30","units":12}}`,
			"63be2fb7bfdccb739d6375c6", "9428779eb59f1fe3f2c3a1f3"},
	} {
		ev, err := Decode([]byte(tc.raw))
		if err != nil {
			t.Fatal(err)
		}
		if content, fact := ev.Digests(); content != tc.content || fact != tc.fact {
			t.Errorf("%s: digests %s %s, want %s %s", ev.Type, content, fact, tc.content, tc.fact)
		}
	}
}
