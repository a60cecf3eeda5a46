package events

import (
	"bytes"
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

// checkKeys refuses, in the JSON object raw and every object nested in it, a key that
// appears twice, and a key that matches a field of t (the struct the object decodes
// into) only when case is ignored. field names the object in errors ("" for the
// envelope, "data" for the payload).
func checkKeys(raw []byte, t reflect.Type, field string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the opening '{'
		return nil // not an object: the decoder reports it
	}
	return checkObject(dec, t, field)
}

func checkObject(dec *json.Decoder, t reflect.Type, field string) error {
	fields := jsonFieldsOf(t)
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil // malformed JSON: the decoder reports it with its position
		}
		key, _ := tok.(string)
		path := strings.TrimPrefix(field+"."+key, ".")
		if seen[key] {
			return invalid(path, "appears twice in the object; each key must appear once")
		}
		seen[key] = true
		exact, folded := fields.lookup(key)
		if !exact && folded != "" {
			return invalid(path, "differs from the field %q only in case; keys are case-sensitive", folded)
		}
		var child reflect.Type
		if exact {
			child = fields.types[key]
		}
		if child == rawMessageType {
			// Decoded (and checked) on its own later: the payload.
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil
			}
			continue
		}
		if err := checkValue(dec, child, path); err != nil {
			return err
		}
	}
	_, _ = dec.Token() // the closing '}'
	return nil
}

// checkValue checks the next value: objects and arrays are walked, anything else skipped.
func checkValue(dec *json.Decoder, t reflect.Type, field string) error {
	tok, err := dec.Token()
	if err != nil {
		return nil // malformed JSON: the decoder reports it with its position
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, t, field)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil {
			if t = deref(t); t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
				elem = t.Elem()
			}
		}
		for dec.More() {
			if err := checkValue(dec, elem, field+"[]"); err != nil {
				return err
			}
		}
		_, _ = dec.Token() // the closing ']'
	}
	return nil
}

// jsonFields are a struct's JSON field names, exactly and folded to lower case.
type jsonFields struct {
	types  map[string]reflect.Type
	folded map[string]string // lower case -> the exact name
}

func (f jsonFields) lookup(key string) (exact bool, folded string) {
	if _, ok := f.types[key]; ok {
		return true, key
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
	f := jsonFields{types: map[string]reflect.Type{}, folded: map[string]string{}}
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
