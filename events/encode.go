package events

import (
	"bytes"
	"encoding/json"

	"github.com/payinfra/refunds/internal/jsonappend"
)

// appendEnvelope appends env to dst exactly as json.Marshal(env) writes it, without
// reflection: every outbound event is encoded once when it is saved, and
// encoding/json's reflection was a twentieth of the intake's own CPU. It covers what
// every event of this service holds (text JSON writes as it is, a time within years
// 0–9999, data that needs no HTML escaping) and reports false for anything else,
// which the caller then encodes with json.Marshal. A fuzz test holds the two to the
// same bytes.
func appendEnvelope(dst []byte, env Envelope) ([]byte, bool) {
	dst, ok := appendStrings(dst,
		[2]string{`{"specversion":`, env.SpecVersion}, [2]string{`,"id":`, env.ID}, [2]string{`,"source":`, env.Source},
		[2]string{`,"type":`, string(env.Type)}, [2]string{`,"subject":`, env.Subject})
	if !ok {
		return nil, false
	}
	dst = append(dst, `,"time":`...)
	if dst, ok = jsonappend.Time(dst, env.Time); !ok {
		return nil, false // json.Marshal refuses it: let it say why
	}
	if env.DataContentType != "" {
		dst = append(dst, `,"datacontenttype":`...)
		if dst, ok = jsonappend.String(dst, env.DataContentType); !ok {
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
		if fastReading && compactJSON(env.Data) {
			// What this service's encoders write: Compact would copy it unchanged.
			dst = append(dst, env.Data...)
		} else {
			buf := bytes.NewBuffer(dst)
			if err := json.Compact(buf, env.Data); err != nil {
				return nil, false
			}
			dst = buf.Bytes()
		}
		if written := dst[start:]; bytes.IndexAny(written, "<>&") >= 0 || bytes.Contains(written, lineSeparator) || bytes.Contains(written, paragraphSeparator) {
			return nil, false
		}
	}
	return append(dst, '}'), true
}

// U+2028 and U+2029 in UTF-8. They are looked for as bytes: bytes.ContainsAny with a
// set outside ASCII decodes every rune of the data.
var lineSeparator, paragraphSeparator = []byte("\u2028"), []byte("\u2029")

// payloadAppender is a payload that writes its own JSON, exactly as json.Marshal
// writes it, or reports false (and json.Marshal writes it). The payloads the intake
// publishes most, on nearly every event, are written so: json.Marshal's reflection
// was most of what building an outbound event cost.
type payloadAppender interface {
	appendJSON(dst []byte) ([]byte, bool)
}

var (
	_ payloadAppender = (*BalanceChangedData)(nil)
	_ payloadAppender = (*CaseStatusChangedData)(nil)
)

// encodePayload is p's JSON, as json.Marshal writes it.
func encodePayload(p Payload) ([]byte, error) {
	if a, ok := p.(payloadAppender); ok {
		if data, ok := a.appendJSON(make([]byte, 0, 192)); ok {
			return data, nil
		}
	}
	return json.Marshal(p)
}

func (d *BalanceChangedData) appendJSON(dst []byte) ([]byte, bool) {
	dst, ok := appendStrings(dst,
		[2]string{`{"cause_id":`, d.CauseID}, [2]string{`,"cause_type":`, string(d.CauseType)}, [2]string{`,"currency":`, d.Currency})
	if !ok {
		return dst, false
	}
	dst = d.Cash.appendJSON(append(dst, `,"cash":`...))
	dst = d.Withdrawable.appendJSON(append(dst, `,"withdrawable":`...))
	return append(dst, '}'), true
}

func (d *CaseStatusChangedData) appendJSON(dst []byte) ([]byte, bool) {
	dst, ok := appendStrings(dst,
		[2]string{`{"case_id":`, d.CaseID}, [2]string{`,"kind":`, d.Kind}, [2]string{`,"status":`, d.Status}, [2]string{`,"previous":`, d.Previous})
	if !ok {
		return dst, false
	}
	dst = d.Amount.appendJSON(append(dst, `,"amount":`...))
	if d.Reason != "" {
		if dst, ok = jsonappend.String(append(dst, `,"reason":`...), d.Reason); !ok {
			return dst, false
		}
	}
	if d.ReasonCode != "" {
		if dst, ok = jsonappend.String(append(dst, `,"reason_code":`...), d.ReasonCode); !ok {
			return dst, false
		}
	}
	if d.ExpectedBy != nil {
		if dst, ok = jsonappend.Time(append(dst, `,"expected_by":`...), *d.ExpectedBy); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// appendStrings appends each key, as it is, and its value, as jsonappend.String
// writes it; false at the first value it cannot write.
func appendStrings(dst []byte, keyValues ...[2]string) ([]byte, bool) {
	var ok bool
	for _, kv := range keyValues {
		if dst, ok = jsonappend.String(append(dst, kv[0]...), kv[1]); !ok {
			return dst, false
		}
	}
	return dst, true
}

// compactJSON reports whether raw is valid JSON with no white space outside its strings:
// what json.Compact writes back unchanged. It walks raw with validJSON's loop, not
// encoding/json's state machine. FuzzCompactJSON holds it to json.Compact.
func compactJSON(raw []byte) bool {
	if !validJSON(raw) {
		return false
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString && c == '\\':
			i++ // the escaped byte, whatever it is
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}
