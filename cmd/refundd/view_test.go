package main

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/state"
)

func TestEveryNonWithdrawablePartSaysHowToResolveIt(t *testing.T) {
	l := state.Ledger{
		Cash:        decimal.NewFromInt(1000),
		Transferred: decimal.NewFromInt(100), Held: decimal.NewFromInt(50), Reserve: decimal.NewFromInt(100),
		Overdue: decimal.NewFromInt(150), Unsettled: decimal.NewFromInt(60), CreditNotes: decimal.NewFromInt(70),
		ReserveHold: 24 * time.Hour,
	}
	views := nonWithdrawableViews(l)
	if len(views) != 6 {
		t.Fatalf("parts %+v, want all six", views)
	}
	for _, v := range views {
		if v.Resolution == "" || strings.Contains(v.Resolution, "%!") {
			t.Errorf("part %s has resolution %q", v.Part, v.Resolution)
		}
	}
}

func TestTheReserveResolutionSaysTheConfiguredHold(t *testing.T) {
	for hold, words := range map[time.Duration]string{24 * time.Hour: "unfreezes 24 hours after", time.Hour: "unfreezes 1 hour after", 3 * time.Second: "unfreezes 3s after"} {
		l := state.Ledger{Cash: decimal.NewFromInt(300), Reserve: decimal.NewFromInt(100), ReserveHold: hold}
		views := nonWithdrawableViews(l)
		if len(views) != 1 || !strings.Contains(views[0].Resolution, words) {
			t.Errorf("hold %s: resolution %+v does not say %q", hold, views, words)
		}
	}
}
