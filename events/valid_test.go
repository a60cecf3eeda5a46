package events

import (
	"bytes"
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

// FuzzPlainJSONString holds plainJSONString to json.Unmarshal: what it reads, json.Unmarshal
// reads the same from the same bytes.
func FuzzPlainJSONString(f *testing.F) {
	for _, seed := range []string{`"2026-11-23T08:00:00Z"`, `"a\"b"`, `"a\\b"`, "\"\xff\"", "\"\x01\"", `""`, `"`, `5`, `"a"b"`, `null`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // an envelope's time, once the envelope was read, is valid JSON
		}
		got, ok := plainJSONString(raw)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("plainJSONString read %q from %q, which json.Unmarshal refuses: %v", got, raw, err)
		}
		if got != want {
			t.Fatalf("from %q plainJSONString read %q, json.Unmarshal %q", raw, got, want)
		}
	})
}

// FuzzCompactJSON holds compactJSON to json.Compact: what it finds compact, Compact
// writes back byte for byte.
func FuzzCompactJSON(f *testing.F) {
	for _, seed := range []string{`{"a":"b c","d":[1,2]}`, `{"a": 1}`, "{\"a\":\"x\\\" y\"}", `[ ]`, `"\\"`, `{"a":"\t"}`, `1`, ` 1`, `{"a":1}x`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !compactJSON(raw) {
			return
		}
		var out bytes.Buffer
		if err := json.Compact(&out, raw); err != nil {
			t.Fatalf("compactJSON(%q) is true, json.Compact refuses it: %v", raw, err)
		}
		if !bytes.Equal(out.Bytes(), raw) {
			t.Fatalf("compactJSON(%q) is true, json.Compact writes %q", raw, out.Bytes())
		}
	})
}
