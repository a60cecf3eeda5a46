package events

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValidJSON holds validJSON to json.Valid: the envelope's fast reading trusts it to
// have refused what encoding/json would. In CI it runs over its seeds; `go test -fuzz
// FuzzValidJSON ./events/` explores.
func FuzzValidJSON(f *testing.F) {
	for _, seed := range []string{
		string(benchEvent), `{}`, `[]`, ` [1, -0, 0.5e+3, -12E-1, "a\"\\\/\b\f\n\r\t\u00e9", true, false, null, {"a":{}}] `,
		`01`, `1.`, `.5`, `-`, `1e`, `1e+`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"\x01\"", "\"\xff\"", `{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`,
		`tru`, `nul`, `falsey`, `"unterminated`, `{"a":[}`, "\t\n\r 1 \t\n\r", ``, ` `, `1 2`, `{"a":1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if got, want := validJSON(raw), json.Valid(raw); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", raw, got, want)
		}
	})
}

func TestValidJSONKeepsEncodingJSONsDepthLimit(t *testing.T) {
	for _, depth := range []int{maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := map[string]string{"[": "]", `{"a":`: "}"}[open]
			raw := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth))
			if got, want := validJSON(raw), json.Valid(raw); got != want {
				t.Errorf("%d levels of %s: validJSON %v, json.Valid %v", depth, open, got, want)
			}
		}
	}
}
