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
