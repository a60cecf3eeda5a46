// Package decimaltext writes decimals as shopspring/decimal's String and StringFixed do,
// without a big.Int's conversion to text and the strings around it: the amounts of
// every outbound event and every stored account field are written on the hot path.
// A decimal whose coefficient has more than 18 digits, or a setting of the decimal
// package that changes String's form, goes to decimal's own methods. FuzzAppend holds
// both to decimal's bytes.
package decimaltext

import (
	"strconv"

	"github.com/shopspring/decimal"
)

// maxDigits is the most digits of a coefficient written here: it then fits an int64,
// and so does its absolute value.
const maxDigits = 18

// maxExponent bounds the exponents written here, on either side of zero: money never
// comes near it, and the arithmetic on an exponent stays far from int32's limits.
const maxExponent = 1000

// AppendString appends d.String().
func AppendString(dst []byte, d decimal.Decimal) []byte {
	if !decimal.TrimTrailingZeros || decimal.UseScientificNotation || d.NumDigits() > maxDigits || !ordinaryExponent(d.Exponent()) {
		return append(dst, d.String()...)
	}
	return appendCoefficient(dst, d.CoefficientInt64(), d.Exponent(), true)
}

// AppendFixed appends d.StringFixed(places) for places from 0 to 18. A decimal with more
// fraction digits than places is rounded, which decimal does.
func AppendFixed(dst []byte, d decimal.Decimal, places int32) []byte {
	exp := d.Exponent()
	if places < 0 || places > maxDigits || !ordinaryExponent(exp) || exp < -places || exp+places > maxDigits || d.NumDigits()+int(exp+places) > maxDigits {
		return append(dst, d.StringFixed(places)...)
	}
	// No digit is rounded away: the coefficient at exponent -places is exact.
	return appendCoefficient(dst, d.CoefficientInt64()*pow10[exp+places], -places, false)
}

func ordinaryExponent(exp int32) bool { return -maxExponent <= exp && exp <= maxExponent }

var pow10 = func() (p [maxDigits + 1]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// appendCoefficient appends c × 10^exp as decimal's string method writes it, trimming
// the fraction's trailing zeros when trim is set.
func appendCoefficient(dst []byte, c int64, exp int32, trim bool) []byte {
	switch {
	case exp == 0:
		return strconv.AppendInt(dst, c, 10)
	case exp > 0:
		dst = strconv.AppendInt(dst, c, 10)
		if c == 0 {
			return dst
		}
		for range exp {
			dst = append(dst, '0')
		}
		return dst
	}
	if c < 0 {
		dst = append(dst, '-')
		c = -c
	}
	var buf [maxDigits + 1]byte
	digits := strconv.AppendUint(buf[:0], uint64(c), 10)
	fraction := -int(exp)
	var whole []byte
	leadingZeros := 0
	if len(digits) > fraction {
		whole, digits = digits[:len(digits)-fraction], digits[len(digits)-fraction:]
	} else {
		whole, leadingZeros = []byte{'0'}, fraction-len(digits)
	}
	if trim {
		end := len(digits)
		for end > 0 && digits[end-1] == '0' {
			end--
		}
		if digits = digits[:end]; len(digits) == 0 {
			leadingZeros = 0
		}
	}
	dst = append(dst, whole...)
	if leadingZeros+len(digits) == 0 {
		return dst
	}
	dst = append(dst, '.')
	for range leadingZeros {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}
