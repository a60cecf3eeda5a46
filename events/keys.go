package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// encoding/json matches object keys to fields ignoring case and lets the last of
// duplicate keys win. A reader that is strict (an audit tool, a JavaScript notifier)
// would then see other money than the engine for the same bytes:
// {"amount":"1.00","AMOUNT":"300.00"} is 300.00 here and 1.00 there. checkKeys refuses
// both ambiguities before anything is decoded.
//
// It scans the bytes itself rather than through json.Decoder's tokens, which cost a
// tenth of the intake's CPU: the input was already parsed once by encoding/json, so it
// is known to be well-formed JSON here, and the scanner only has to find keys.

// checkKeys refuses, in the JSON object raw and every object nested in it, a key that
// appears twice, and a key that matches a field of t (the struct the object decodes
// into) only when case is ignored. field names the object in errors ("" for the
// envelope, "data" for the payload). raw must be valid JSON.
func checkKeys(raw []byte, t reflect.Type, field string) error {
	s := keyScanner{b: raw}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil
	}
	return s.object(t, field)
}

// payloadKeys is checkKeys for a payload, and returns the keys of its top-level object
// whose value is not null, for the check of required fields. A payload that is not an
// object has none.
func payloadKeys(raw []byte, t reflect.Type, field string) (present []string, err error) {
	s := keyScanner{b: raw, present: &present}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, nil
	}
	return present, s.object(t, field)
}

type keyScanner struct {
	b []byte
	i int
	// present, when not nil, collects the keys of the first object scanned whose value
	// is not null (payloadKeys).
	present *[]string
}

func (s *keyScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object checks the object at s.i ('{') and leaves s.i after its '}'.
func (s *keyScanner) object(t reflect.Type, field string) error {
	fields := jsonFieldsOf(t)
	present := s.present
	s.present = nil   // the keys of nested objects are not the payload's
	var seen []string // objects here have a handful of keys: a slice beats a map
	s.i++             // '{'
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] == '}' {
			s.i++
			return nil
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		key := s.str()
		path := key
		if field != "" {
			path = field + "." + key
		}
		for _, k := range seen {
			if k == key {
				return invalid(path, "appears twice in the object; each key must appear once")
			}
		}
		seen = append(seen, key)
		exact, folded := fields.lookup(key)
		if !exact && folded != "" {
			return invalid(path, "differs from the field %q only in case; keys are case-sensitive", folded)
		}
		var child reflect.Type
		if exact {
			child = fields.types[key]
		}
		s.space()
		s.i++ // ':'
		s.space()
		if present != nil && s.i < len(s.b) && s.b[s.i] != 'n' { // well-formed: 'n' starts null
			*present = append(*present, key)
		}
		if child == rawMessageType {
			s.skip() // decoded, and checked, on its own later: the payload
			continue
		}
		if err := s.value(child, path); err != nil {
			return err
		}
	}
}

// value checks the value at s.i: objects and arrays are walked, anything else skipped.
func (s *keyScanner) value(t reflect.Type, field string) error {
	if s.i >= len(s.b) {
		return nil
	}
	switch s.b[s.i] {
	case '{':
		return s.object(t, field)
	case '[':
		var elem reflect.Type
		if t != nil {
			if t = deref(t); t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
				elem = t.Elem()
			}
		}
		s.i++
		for {
			s.space()
			if s.i >= len(s.b) || s.b[s.i] == ']' {
				s.i++
				return nil
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			if err := s.value(elem, field+"[]"); err != nil {
				return err
			}
		}
	}
	s.skip()
	return nil
}

// skip moves past the value at s.i without looking into it.
func (s *keyScanner) skip() {
	if s.i >= len(s.b) {
		return
	}
	switch s.b[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // a number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// skipString moves past the string at s.i ('"'), as str does, without reading it.
func (s *keyScanner) skipString() {
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return
		}
	}
}

// str reads the string at s.i ('"'), unescaped, and leaves s.i after its closing quote.
func (s *keyScanner) str() string {
	start := s.i
	s.i++
	escaped := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			if !escaped {
				return string(s.b[start+1 : s.i-1])
			}
			var out string
			_ = json.Unmarshal(s.b[start:s.i], &out) // rare: a key with escapes
			return out
		}
		s.i++
	}
	return string(s.b[start+1:])
}

// jsonFields are a struct's JSON field names, exactly and folded to lower case.
type jsonFields struct {
	types  map[string]reflect.Type
	folded map[string]string // lower case -> the exact name
	// required are the names of the fields an event must give (requiredFields).
	required []string
}

func (f jsonFields) lookup(key string) (exact bool, folded string) {
	if _, ok := f.types[key]; ok {
		return true, key
	}
	if len(f.folded) == 0 {
		return false, ""
	}
	return false, f.folded[strings.ToLower(key)]
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

var fieldCache sync.Map // reflect.Type -> jsonFields

func jsonFieldsOf(t reflect.Type) jsonFields {
	if t == nil {
		return jsonFields{}
	}
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return jsonFields{}
	}
	if cached, ok := fieldCache.Load(t); ok {
		return cached.(jsonFields)
	}
	f := jsonFields{types: map[string]reflect.Type{}, folded: map[string]string{}, required: requiredFields(t)}
	for sf := range t.Fields() {
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "-" || name == "" {
			continue
		}
		f.types[name] = sf.Type
		f.folded[strings.ToLower(name)] = name
	}
	fieldCache.Store(t, f)
	return f
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
