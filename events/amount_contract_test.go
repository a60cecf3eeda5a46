package events

import (
	"regexp"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The Amount schema of asyncapi.yaml and the code that decodes amounts accept exactly
// the same strings.
func TestAmountsAcceptedAreExactlyThoseTheContractDescribes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				Amount struct {
					Pattern   string `yaml:"pattern"`
					MaxLength int    `yaml:"maxLength"`
				} `yaml:"Amount"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(AsyncAPI, &doc); err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas.Amount
	pattern := regexp.MustCompile(schema.Pattern)
	documented := func(s string) bool {
		return pattern.MatchString(s) && len(s) <= schema.MaxLength && MustAmountOrZero(s).LessThanOrEqual(maxAmount)
	}
	corpus := []string{
		"0", "0.00", "0.5", "5", "5.1", "5.10", "100.00", "999999999999.99", "1000000000000", "1000000000000.00",
		"1000000000000.01", "00005", "05.00", "000000000000000000000000000001.00", "5.100", "-0.00", "-0", "-1",
		"-12.50", "1e3", "1E3", " 1", "1 ", "1,000", "+1", ".5", "5.", "", "NaN", "Infinity", "0x10", "1_000",
		"12345678901234567890123456789012345678901234567890",
	}
	for _, s := range corpus {
		_, err := Decode(consumptionWithAmount(t, s))
		if accepted, want := err == nil, documented(s); accepted != want {
			t.Errorf("amount %q: decoded %t (err %v), the contract says %t", s, accepted, err, want)
		}
	}
}

// MustAmountOrZero is the amount s, or zero when it does not parse (for the bound check).
func MustAmountOrZero(s string) Amount {
	a, err := NewAmount(s)
	if err != nil {
		return Amount{}
	}
	return a
}

func consumptionWithAmount(t *testing.T, amount string) []byte {
	t.Helper()
	ev := `{"specversion":"1.0","id":"e1","source":"/billing","type":"billing.consumption.recorded","subject":"acct-1",` +
		`"time":"` + time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC).Format(time.RFC3339) + `",` +
		`"data":{"consumption_id":"c1","amount":` + quote(amount) + `,"voucher_amount":"1.00"}}`
	return []byte(ev)
}

func quote(s string) string {
	b := []byte{'"'}
	for _, r := range s {
		if r == '"' || r == '\\' {
			b = append(b, '\\')
		}
		b = append(b, string(r)...)
	}
	return string(append(b, '"'))
}
