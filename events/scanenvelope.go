package events

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// envelopeKeys are the envelope's keys, as wireEnvelope names them (and field knows
// them), for the check of a key that differs from one only in case.
var envelopeKeys = [...]string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}

// scanEnvelope reads the envelope in one pass over raw, as json.Unmarshal into a
// wireEnvelope would, without its reflection: the plain case, which nearly every event
// is. ok is false for anything else, and Decode then decodes raw as before, with the
// same errors: raw is not valid JSON or not an object; a key is not plain ASCII
// (encoding/json matches keys by Unicode case folding) or differs from an envelope
// key only in case; a string field's value is not a string (null, a number...),
// holds an escape, or is not UTF-8. FuzzScanEnvelope holds it to json.Unmarshal.
//
// unique, when ok, says that every key is one of the envelope's and came once: then
// checkKeys, which would walk raw again, has nothing to refuse (data's keys are
// decodePayload's to check).
func scanEnvelope(raw []byte) (w wireEnvelope, ok, unique bool) {
	if !validJSON(raw) {
		return wireEnvelope{}, false, false
	}
	s := keyScanner{b: raw}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return wireEnvelope{}, false, false
	}
	s.i++
	unique = true
	var seen uint16 // bit i: envelopeKeys[i] came (field's at)
	for {
		s.space()
		switch {
		case s.i >= len(s.b):
			return wireEnvelope{}, false, false
		case s.b[s.i] == '}':
			return w, true, unique
		case s.b[s.i] == ',':
			s.i++
			continue
		}
		key, plain := s.plainString()
		if !plain || !isASCII(key) { // key is a []byte: it is compared, never kept
			return wireEnvelope{}, false, false
		}
		s.space()
		s.i++ // ':' (raw is valid JSON)
		s.space()
		at, text, asJSON := w.field(string(key))
		if at < 0 || seen&(1<<at) != 0 {
			unique = false // an extension (whose objects checkKeys walks), or a key given twice
		} else {
			seen |= 1 << at
		}
		if at < 0 {
			for _, name := range envelopeKeys {
				if strings.EqualFold(string(key), name) {
					return wireEnvelope{}, false, false
				}
			}
			s.skip() // an extension: ignored
			continue
		}
		// A key given twice: the last wins, as in json.Unmarshal (checkKeys refuses it).
		if asJSON != nil {
			start := s.i
			s.skip()
			*asJSON = append(json.RawMessage(nil), s.b[start:s.i]...)
			continue
		}
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return wireEnvelope{}, false, false
		}
		value, plain := s.plainString()
		if !plain || !utf8.Valid(value) {
			return wireEnvelope{}, false, false
		}
		*text = string(value)
	}
}

// field is where the envelope keeps key's value, a string or the JSON as it came (time,
// data), and at is key's place in envelopeKeys; at is -1, and neither is given, for a
// key that is not the envelope's.
func (w *wireEnvelope) field(key string) (at int, text *string, raw *json.RawMessage) {
	switch key {
	case "specversion":
		return 0, &w.SpecVersion, nil
	case "id":
		return 1, &w.ID, nil
	case "source":
		return 2, &w.Source, nil
	case "type":
		return 3, (*string)(&w.Type), nil
	case "subject":
		return 4, &w.Subject, nil
	case "time":
		return 5, nil, &w.Time
	case "datacontenttype":
		return 6, &w.DataContentType, nil
	case "data":
		return 7, nil, &w.Data
	}
	return -1, nil, nil
}

// plainString reads the string at s.i ('"'), as the bytes between its quotes, and
// leaves s.i after it; plain is false when it holds an escape, which only
// json.Unmarshal reads right.
func (s *keyScanner) plainString() (value []byte, plain bool) {
	start := s.i + 1
	for s.i = start; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			return nil, false
		case '"':
			s.i++
			return s.b[start : s.i-1], true
		}
	}
	return nil, false
}

func isASCII(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
