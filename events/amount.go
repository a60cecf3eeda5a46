package events

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/payinfra/refunds/internal/decimaltext"
)

// MaxAmount bounds every amount on the wire (1e12). Nothing real comes close,
// so a larger value is a bug or an attack, not money.
const MaxAmount = "1000000000000"

// maxFractionDigits is the precision of money on the wire: cents.
const maxFractionDigits = 2

var maxAmount = decimal.RequireFromString(MaxAmount)

// plainDecimal is the only notation accepted on the wire: no exponent, no
// spaces, no thousands separators, no leading "+", no leading zeros, at most
// maxFractionDigits. It is the Amount pattern of asyncapi.yaml with a sign
// allowed, so that a negative amount is refused by the field's rule with a
// clear reason ("must not be negative"); a test keeps the two in agreement.
var plainDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]{1,2})?$`)

// Amount is money on the wire. In JSON it is a string of plain decimal
// notation with at most 2 fraction digits ("100.00", "7", "0.5"); a JSON
// number is refused so that no float ever carries money. It is written with
// exactly 2 fraction digits.
//
// Decoding checks only the notation; sign and bounds belong to each payload's
// Validate, because the rule differs by field.
type Amount struct{ decimal.Decimal }

// NewAmount parses s in the wire notation.
func NewAmount(s string) (Amount, error) {
	if !plainDecimal.MatchString(s) || fractionDigits(s) > maxFractionDigits {
		return Amount{}, invalid("", "%q is not a decimal with at most %d fraction digits and no leading zeros, like \"100.00\"", excerpt(s), maxFractionDigits)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Amount{}, invalid("", "%q is not a decimal: %v", excerpt(s), err)
	}
	if d.IsZero() && strings.HasPrefix(s, "-") {
		// "-0.00" would pass every "must not be negative" rule while saying otherwise.
		return Amount{}, invalid("", "%q is a negative zero", s)
	}
	return Amount{d}, nil
}

// MustAmount is NewAmount for constants in code and tests; it panics on a bad s.
func MustAmount(s string) Amount {
	a, err := NewAmount(s)
	if err != nil {
		panic(err)
	}
	return a
}

// AmountOf wraps d. Whether d fits the wire (cents, bounds) is checked when
// the payload holding it is validated.
func AmountOf(d decimal.Decimal) Amount { return Amount{d} }

// MarshalJSON writes the amount as a string with exactly 2 fraction digits.
// Payload validation refuses finer amounts first, so nothing is rounded here.
func (a Amount) MarshalJSON() ([]byte, error) {
	return a.appendJSON(nil), nil
}

// appendJSON appends what MarshalJSON writes.
func (a Amount) appendJSON(dst []byte) []byte {
	dst = append(dst, '"')
	dst = decimaltext.AppendFixed(dst, a.Decimal, maxFractionDigits)
	return append(dst, '"')
}

// UnmarshalJSON accepts only a JSON string in plain decimal notation. It
// fails with a *json.UnmarshalTypeError so that encoding/json records which
// field held the bad value; Decode turns that into an InvalidError.
func (a *Amount) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // like encoding/json: null leaves the value alone; presence is checked by Decode
	}
	var s string
	if len(b) == 0 || b[0] != '"' || json.Unmarshal(b, &s) != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b) + " " + excerpt(string(b)), Type: amountType}
	}
	parsed, err := NewAmount(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string " + excerpt(string(b)), Type: amountType}
	}
	*a = parsed
	return nil
}

var amountType = reflect.TypeFor[Amount]()

func fractionDigits(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// jsonKind names the JSON kind of a raw value for an error message.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// excerpt keeps error messages short: the value comes from the sender and may be huge.
func excerpt(s string) string {
	const max = 40
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max]) + "…"
}
