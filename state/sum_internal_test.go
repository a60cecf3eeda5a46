package state

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// The sum of top-up amounts is exact whatever their exponents and sizes: the integer
// path and decimal's own arithmetic agree, including sums past an int64.
func TestTheSumOfTopUpAmountsIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	amounts := []string{"0", "0.01", "12345.67", "100", "1e3", "1000000000000", "999999999999.99", "0.000001", "-5.5",
		"9223372036854775807", "92233720368547758.07", "123456789012345678901234567890"}
	for run := range 2000 {
		var ts []TopUp
		for range 1 + r.IntN(40) {
			ts = append(ts, TopUp{Amount: decimal.RequireFromString(amounts[r.IntN(len(amounts))])})
		}
		if run%2 == 0 { // many of one big amount: the integer sum overflows
			for range 1 + r.IntN(200) {
				ts = append(ts, TopUp{Amount: decimal.RequireFromString("9999999999999999.99")})
			}
		}
		got, want := sumOfAmounts(ts), sumOfAmountsExactly(ts)
		if !got.Equal(want) {
			t.Fatalf("run %d: sum of %v is %s, want %s", run, fmt.Sprint(ts), got, want)
		}
	}
}
