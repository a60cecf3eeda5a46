package state

import (
	"testing"

	"github.com/shopspring/decimal"
)

// plus and minus skip the arithmetic for a zero operand; the number, and every written
// form of it, is what Add and Sub give.
func TestPlusAndMinusAreAddAndSub(t *testing.T) {
	values := []string{"0", "0.00", "-0.00", "0.000", "1", "1.00", "12.5", "12.50", "-3.25", "1000000000000", "0.01"}
	for _, x := range values {
		for _, y := range values {
			a, b := decimal.RequireFromString(x), decimal.RequireFromString(y)
			for _, tc := range []struct {
				name      string
				got, want decimal.Decimal
			}{
				{"plus", plus(a, b), a.Add(b)},
				{"minus", minus(a, b), a.Sub(b)},
			} {
				if !tc.got.Equal(tc.want) || tc.got.String() != tc.want.String() || tc.got.StringFixed(2) != tc.want.StringFixed(2) {
					t.Errorf("%s(%s, %s) = %s, want %s", tc.name, x, y, tc.got, tc.want)
				}
			}
		}
	}
}

// Balances kept by an account are reused only under the rules they were computed under:
// another reserve amount, hold or default currency computes them again.
func TestKnownBalancesAreReusedOnlyUnderTheSameRules(t *testing.T) {
	rules := DefaultRules()
	a := NewAccount("acct-1")
	a.Opened = true
	a.TopUps = []TopUp{{ID: "t1", Amount: decimal.RequireFromString("1000.00")}}
	a.Resources = map[string]Resource{"ecs-1": {Created: true, PayAsYouGo: true}}
	// Kept balances no computation of this account gives, so a reuse shows.
	kept := decimal.RequireFromString("12345.67")
	a.knownBalances = &knownBalances{currency: "CNY", cash: kept, withdrawable: kept, under: balanceRulesOf(rules)}

	same := rules
	same.ReserveAmount = decimal.RequireFromString("100.0000") // the same amount, written otherwise
	if got := a.balances(same); !got.withdrawable.Equal(kept) {
		t.Errorf("under the same rules: withdrawable %s, want the kept %s", got.withdrawable, kept)
	}
	other := rules
	other.ReserveAmount = decimal.RequireFromString("250.00")
	if got, want := a.balances(other), a.ledger(other, false).Withdrawable; !got.withdrawable.Equal(want) || got.withdrawable.Equal(kept) {
		t.Errorf("under another reserve amount: withdrawable %s, want %s computed again", got.withdrawable, want)
	}
	other = rules
	other.DefaultCurrency = "USD"
	if got := a.balances(other); got.currency != "USD" {
		t.Errorf("under another default currency: %s, want USD", got.currency)
	}
}
