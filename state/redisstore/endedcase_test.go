package redisstore

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/events"
	"github.com/payinfra/refunds/state"
)

// endedCases are ended cases as the workload of the end-to-end bench ends them, and
// the other kinds.
func endedCases() []state.Case {
	at := time.Date(2026, 11, 23, 18, 51, 20, 0, time.UTC)
	expected := at.Add(15 * 24 * time.Hour)
	return []state.Case{
		{
			ID: "acct-000001-w2", Kind: events.CaseWithdrawal, Status: events.StatusSucceeded, Amount: decimal.RequireFromString("227.03"),
			TopupID: "t2", Route: events.RouteDesignated, OpenedAt: at, ExpectedBy: &expected, PayoutID: "po-acct-000001-w2",
			Destination: &events.Destination{Kind: events.DestinationAlipay, AccountNo: "6290243422144918", PayeeName: "Holder acct-000001"},
			History: []state.CaseEntry{
				{Status: events.StatusInReview, At: at, By: state.ByRules, Reason: "review: designated receiving account"},
				{Status: events.StatusApprovedPendingTransfer, At: at.Add(time.Second), By: state.ByReviewer, Reason: "approved by reviewer-1"},
				{Status: events.StatusSucceeded, At: at.Add(5 * time.Second), By: state.ByPayout, Reason: "payout succeeded"},
			},
		},
		{
			ID: "acct-000002-w1", Kind: events.CaseWithdrawal, Status: events.StatusSucceeded, Amount: decimal.RequireFromString("180.11"),
			TopupID: "t2", Route: events.RouteOriginal, OpenedAt: at, ExpectedBy: &expected, PayoutID: "po-acct-000002-w1",
			History: []state.CaseEntry{
				{Status: events.StatusApprovedPendingTransfer, At: at, By: state.ByRules, Reason: "original payment route"},
				{Status: events.StatusSucceeded, At: at.Add(15 * time.Second), By: state.ByPayout, Reason: "payout succeeded"},
			},
		},
		{
			ID: "r-order-7", Kind: events.CaseOrder, Status: events.StatusRejected, Amount: decimal.RequireFromString("49.90"),
			Subject: "ord-7", PaymentMethod: "card", Appealed: true, OpenedAt: at,
			History: []state.CaseEntry{
				{Status: events.StatusInReview, At: at, By: state.ByRules, Reason: "review: the outage lasted 30 hours"},
				{Status: events.StatusRejected, At: at.Add(time.Hour), By: state.ByReviewer, Code: "used_service", Reason: "rejected by reviewer-2"},
			},
		},
	}
}

func TestAnEndedCaseIsStoredDeflatedAndReadsBackTheSame(t *testing.T) {
	for _, c := range endedCases() {
		plain, err := json.Marshal(storeCase(c))
		if err != nil {
			t.Fatal(err)
		}
		stored, err := encodeEndedCase(c, true)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeCase(c.ID, stored)
		if err != nil {
			t.Fatalf("case %s: %v", c.ID, err)
		}
		again, _ := json.Marshal(storeCase(back))
		if back.ID != c.ID || !bytes.Equal(again, plain) {
			t.Errorf("case %s read back as\n%s\nwant\n%s", c.ID, again, plain)
		}
		// The point of deflating: well under the JSON, and under the 512 bytes up to
		// which the hash of ended cases stays a listpack.
		if len(stored) > len(plain)/2 || len(stored) > 512 {
			t.Errorf("case %s: %d bytes stored for %d of JSON", c.ID, len(stored), len(plain))
		}
		t.Logf("case %s: %d bytes of JSON stored in %d", c.ID, len(plain), len(stored))
	}
}

func TestAnEndedCaseWrittenAsJSONByAnEarlierVersionReadsTheSame(t *testing.T) {
	c := endedCases()[0]
	plain, err := json.Marshal(storeCase(c))
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeCase(c.ID, plain)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(storeCase(back)); !bytes.Equal(again, plain) {
		t.Errorf("read back as %s, want %s", again, plain)
	}
}

// Earlier versions deflated ended cases with the standard library's compressor at its
// best compression, under the same mark and dictionary. Those stay in Redis for as
// long as their accounts.
func TestAnEndedCaseDeflatedByAnEarlierVersionReadsTheSame(t *testing.T) {
	for _, c := range endedCases() {
		plain, err := json.Marshal(storeCase(c))
		if err != nil {
			t.Fatal(err)
		}
		stored := bytes.NewBuffer([]byte{endedCaseDeflatedV1})
		w, err := flate.NewWriterDict(stored, flate.BestCompression, []byte(endedCaseDictionary))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		back, err := decodeCase(c.ID, stored.Bytes())
		if err != nil {
			t.Fatalf("case %s: %v", c.ID, err)
		}
		if again, _ := json.Marshal(storeCase(back)); !bytes.Equal(again, plain) {
			t.Errorf("case %s read back as\n%s\nwant\n%s", c.ID, again, plain)
		}
	}
}

func TestADamagedEndedCaseIsAnErrorNotAPanic(t *testing.T) {
	stored, err := encodeEndedCase(endedCases()[0], true)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"cut short":  stored[:len(stored)/2],
		"mark alone": stored[:1],
		"flipped":    append(append([]byte{stored[0]}, 0xff, 0xff), stored[3:]...),
	} {
		if _, err := decodeCase("w", b); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
}

// BenchmarkEncodeEndedCase is what deflating costs the step that ends a case.
func BenchmarkEncodeEndedCase(b *testing.B) {
	c := endedCases()[0]
	for b.Loop() {
		if _, err := encodeEndedCase(c, true); err != nil {
			b.Fatal(err)
		}
	}
}
