package state_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/payinfra/refunds/state"
)

func TestTheStoredAccountListsEachPayerOnceAndReadsBackTheSame(t *testing.T) {
	a := newHistory(t).topUp("t1", "1.00").topUp("t2", "2.00").account()
	other := topUp("t3", "3.00")
	other.PayerType, other.PayerName = "company", "Acme Ltd"
	a = applyAll(t, a, event(t, "billing.topup.received", "e-t3", day0, other))

	doc, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(doc), "Zhang San"); n != 1 {
		t.Errorf("payer Zhang San stored %d times in %s", n, doc)
	}
	var back state.Account
	if err := json.Unmarshal(doc, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.TopUps) != len(a.TopUps) {
		t.Fatalf("read back %d top-ups, want %d", len(back.TopUps), len(a.TopUps))
	}
	for i, got := range back.TopUps {
		want := a.TopUps[i]
		sameAmount := got.Amount.Equal(want.Amount)
		got.Amount = want.Amount
		if !sameAmount || !reflect.DeepEqual(got, want) {
			t.Errorf("top-up %d read back as %+v, want %+v", i, back.TopUps[i], a.TopUps[i])
		}
	}
	if back.TopUps[0].PayerName != "Acme Ltd" || back.TopUps[1].PayerName != "Zhang San" {
		t.Errorf("payers read back %q, %q", back.TopUps[0].PayerName, back.TopUps[1].PayerName)
	}
}
