// Package jsonappend writes the JSON of strings and times exactly as encoding/json
// does, without reflection, for the hot paths that encode a small struct per event.
// Each function reports false, and writes nothing that counts, for a value it cannot
// write byte for byte as encoding/json would; the caller then uses json.Marshal.
package jsonappend

import (
	"time"
	"unicode/utf8"
)

// String appends s quoted when JSON writes it as it is: no control character, quote,
// backslash, HTML-sensitive character (<, >, &, which encoding/json escapes), invalid
// UTF-8 or U+2028/U+2029 (escaped too). Other UTF-8 text, a Chinese payee name say,
// goes as it is. DEL, which encoding/json writes as it is, is left to it: no text of
// this service holds one.
func String(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b < 0x20 || b == 0x7f, b == '"', b == '\\', b == '<', b == '>', b == '&':
				return dst, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return dst, false
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// Time appends t quoted in RFC 3339 with nanoseconds, as time.Time's MarshalJSON does,
// when encoding/json can write it: a year within 0–9999, and an offset of whole minutes
// under 24 hours.
func Time(dst []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	if _, offset := t.Zone(); offset%60 != 0 || offset <= -24*3600 || offset >= 24*3600 {
		return dst, false
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), true
}
