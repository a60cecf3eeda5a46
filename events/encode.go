package events

import (
	"bytes"
	"encoding/json"
	"time"
)

// appendEnvelope appends env to dst exactly as json.Marshal(env) writes it, without
// reflection: every outbound event is encoded once when it is saved, and
// encoding/json's reflection was a twentieth of the intake's own CPU. It covers what
// every event of this service holds (ASCII text, a time within years 0–9999, data
// that needs no HTML escaping) and reports false for anything else, which the caller
// then encodes with json.Marshal. A fuzz test holds the two to the same bytes.
func appendEnvelope(dst []byte, env Envelope) ([]byte, bool) {
	if y := env.Time.Year(); y < 0 || y > 9999 {
		return nil, false // json.Marshal refuses it: let it say why
	}
	if _, offset := env.Time.Zone(); offset%60 != 0 || offset <= -24*3600 || offset >= 24*3600 {
		return nil, false // an offset RFC 3339 cannot write: json.Marshal's to refuse
	}
	var ok bool
	dst = append(dst, `{"specversion":`...)
	if dst, ok = appendPlainString(dst, env.SpecVersion); !ok {
		return nil, false
	}
	dst = append(dst, `,"id":`...)
	if dst, ok = appendPlainString(dst, env.ID); !ok {
		return nil, false
	}
	dst = append(dst, `,"source":`...)
	if dst, ok = appendPlainString(dst, env.Source); !ok {
		return nil, false
	}
	dst = append(dst, `,"type":`...)
	if dst, ok = appendPlainString(dst, string(env.Type)); !ok {
		return nil, false
	}
	dst = append(dst, `,"subject":`...)
	if dst, ok = appendPlainString(dst, env.Subject); !ok {
		return nil, false
	}
	dst = append(dst, `,"time":"`...)
	dst = env.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if env.DataContentType != "" {
		dst = append(dst, `,"datacontenttype":`...)
		if dst, ok = appendPlainString(dst, env.DataContentType); !ok {
			return nil, false
		}
	}
	dst = append(dst, `,"data":`...)
	if env.Data == nil {
		dst = append(dst, "null"...)
	} else {
		// encoding/json writes a RawMessage compacted, with <, >, & and U+2028/9
		// escaped in its strings; Compact does the first, and data holding any of
		// those goes the slow way.
		start := len(dst)
		buf := bytes.NewBuffer(dst)
		if err := json.Compact(buf, env.Data); err != nil {
			return nil, false
		}
		dst = buf.Bytes()
		if written := dst[start:]; bytes.IndexAny(written, "<>&") >= 0 || bytes.Contains(written, lineSeparator) || bytes.Contains(written, paragraphSeparator) {
			return nil, false
		}
	}
	return append(dst, '}'), true
}

// U+2028 and U+2029 in UTF-8. They are looked for as bytes: bytes.ContainsAny with a
// set outside ASCII decodes every rune of the data.
var lineSeparator, paragraphSeparator = []byte("\u2028"), []byte("\u2029")

// appendPlainString appends s quoted, when it is printable ASCII that JSON writes as
// it is (no quote, backslash or HTML-sensitive character), and reports whether it was.
func appendPlainString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b < 0x20 || b >= 0x7f, b == '"', b == '\\', b == '<', b == '>', b == '&':
			return dst, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}
