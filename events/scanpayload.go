package events

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/payinfra/refunds/internal/jsonappend"
)

// scanPayload fills p (a pointer to a payload struct) from data in one pass over it, as
// json.Unmarshal would, without encoding/json's reflection and second validation: the
// plain case, which nearly every event is. ok is false for anything else, and
// decodePayload then decodes data as before, with the same errors: a key is not plain
// ASCII, is not exactly a field's (json.Unmarshal ignores it, or matches it to a field
// by case folding), or is given twice; a string holds an escape or is not UTF-8; a value is not
// of its field's JSON kind or not in the wire's notation (an amount), or its field is
// not one of the plain kinds (a nested object such as a destination). p may be written
// to before ok turns out false: decode into a fresh payload then. data must be valid
// JSON (Decode has checked it). FuzzScanPayload holds it to json.Unmarshal.
//
// given has bit i set when the struct's field i was given a value other than null: what
// payloadKeys reports for the check of required fields, which, when ok, has nothing
// else to refuse.
func scanPayload(data []byte, p Payload) (given uint64, ok bool) {
	v, plan, ok := plainStruct(p)
	if !ok {
		return 0, false
	}
	s := keyScanner{b: data}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return 0, false
	}
	s.i++
	var seen uint64 // the fields whose key came, null or not
	for {
		s.space()
		switch {
		case s.i >= len(s.b):
			return 0, false
		case s.b[s.i] == '}':
			s.i++
			s.space()
			return given, s.i == len(s.b)
		case s.b[s.i] == ',':
			s.i++
			continue
		}
		key, plain := s.plainString()
		if !plain {
			return 0, false
		}
		s.space()
		s.i++ // ':' (data is valid JSON)
		s.space()
		f, known := plan.fields[string(key)]
		if !known {
			// A key of no field: json.Unmarshal ignores it, or matches it to a field by
			// case folding; payloadKeys refuses it given twice, or with a duplicate in
			// an object in its value. Rare enough to leave all of it to them.
			return 0, false
		}
		bit := uint64(1) << f.index
		if seen&bit != 0 {
			return 0, false // given twice: payloadKeys names the key
		}
		seen |= bit
		if s.i < len(s.b) && s.b[s.i] != 'n' { // valid JSON: 'n' starts null
			given |= bit
		}
		if !f.set(&s, v.Field(f.index)) {
			return 0, false
		}
	}
}

// requiredGiven checks the payload's required fields against given, as decodePayload
// checks payloadKeys' list: the first missing one, in the struct's order, is named.
func (plan payloadPlan) requiredGiven(given uint64) error {
	if given&plan.requiredBits == plan.requiredBits {
		return nil
	}
	for _, name := range plan.required {
		if given&(uint64(1)<<plan.fields[name].index) == 0 {
			return invalid("data."+name, "is required")
		}
	}
	return nil
}

// plainStruct is the struct p points to and its plan, when the plan says the fast
// paths may take it.
func plainStruct(p Payload) (reflect.Value, payloadPlan, bool) {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, payloadPlan{}, false
	}
	plan := payloadPlanOf(v.Elem().Type())
	return v.Elem(), plan, plan.plain
}

// payloadPlan is how scanPayload fills one payload struct, and appendPlainPayload
// writes it: its fields by exact JSON name, and in the struct's order.
type payloadPlan struct {
	fields  map[string]plannedField
	ordered []plannedField
	// plain is false when the struct has a field encoding/json reads or writes by a
	// rule the plan does not follow: an embedded struct, or an exported field without a
	// JSON name (json uses its Go name); or more fields than a uint64 has bits. Neither
	// fast path takes such a payload.
	plain bool
	// writable is true when every field is of a plain kind: appendPlainPayload writes
	// only such a payload.
	writable bool
	// required are the JSON names of the fields an event must give (requiredFields),
	// and requiredBits their fields' bits.
	required     []string
	requiredBits uint64
}

// plannedField is one field of a payload struct and the kind of JSON it takes.
type plannedField struct {
	index int
	kind  plainKind
	// key is the field's JSON name quoted, with its colon: what json.Marshal writes
	// before the value.
	key       string
	omitEmpty bool
}

// plainKind is a field's kind as scanPayload reads it.
type plainKind int

const (
	notPlain           plainKind = iota // anything else: json.Unmarshal reads it
	plainText                           // a string, written without escapes
	plainBool                           // true or false
	plainBoolPointer                    // true, false or null (nil)
	plainInt                            // a signed integer of the field's size
	plainAmount                         // an Amount: a string in the wire's notation
	plainAmountPointer                  // an *Amount, or null (nil)
)

var (
	payloadPlans    sync.Map // reflect.Type -> payloadPlan
	boolPointerType = reflect.TypeFor[*bool]()
	amountPtrType   = reflect.TypeFor[*Amount]()
	// A type that decodes or encodes itself is left to encoding/json, which calls it.
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	marshalerType       = reflect.TypeFor[json.Marshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

func payloadPlanOf(t reflect.Type) payloadPlan {
	if cached, ok := payloadPlans.Load(t); ok {
		return cached.(payloadPlan)
	}
	plan := payloadPlan{fields: map[string]plannedField{}, plain: t.NumField() <= 64, writable: true, required: requiredFields(t)}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Anonymous || sf.IsExported() && name == "" {
			plan.plain = false
		}
		if !sf.IsExported() || sf.Anonymous || name == "-" || name == "" {
			continue
		}
		f := plannedField{index: i, kind: plainKindOf(sf.Type), key: strconv.Quote(name) + ":", omitEmpty: hasOption(opts, "omitempty")}
		if hasOption(opts, "string") || hasOption(opts, "omitzero") || !plainName(name) {
			f.kind = notPlain // options and names json.Marshal writes its own way
		}
		plan.fields[name] = f
		plan.ordered = append(plan.ordered, f)
		plan.writable = plan.writable && f.kind != notPlain
	}
	for _, name := range plan.required {
		plan.requiredBits |= uint64(1) << plan.fields[name].index
	}
	payloadPlans.Store(t, plan)
	return plan
}

// plainName reports whether a JSON name is written as it is, quoted: letters, digits
// and underscores (json.Marshal escapes <, > and & in a key).
func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return name != ""
}

func plainKindOf(t reflect.Type) plainKind {
	switch {
	case t == amountType:
		return plainAmount
	case t == amountPtrType:
		return plainAmountPointer
	case t == boolPointerType:
		return plainBoolPointer
	case reflect.PointerTo(t).Implements(unmarshalerType), reflect.PointerTo(t).Implements(textUnmarshalerType),
		reflect.PointerTo(t).Implements(marshalerType), reflect.PointerTo(t).Implements(textMarshalerType):
		return notPlain // it reads or writes itself: encoding/json calls it
	}
	switch t.Kind() {
	case reflect.String:
		return plainText
	case reflect.Bool:
		return plainBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return plainInt
	}
	return notPlain
}

// set reads the value at s.i into field as json.Unmarshal would, and reports false
// (having read it or not) when only json.Unmarshal reads it right.
func (f plannedField) set(s *keyScanner, field reflect.Value) bool {
	if s.i >= len(s.b) {
		return false
	}
	if s.b[s.i] == 'n' { // null: a pointer becomes nil, anything else is left alone
		s.i += len("null")
		switch f.kind {
		case plainBoolPointer, plainAmountPointer:
			field.SetZero()
		case notPlain:
			return false
		}
		return true
	}
	switch f.kind {
	case plainText:
		text, ok := s.plainText()
		if ok {
			field.SetString(text)
		}
		return ok
	case plainBool, plainBoolPointer:
		var b bool
		switch {
		case bytes.HasPrefix(s.b[s.i:], []byte("true")):
			b = true
			s.i += len("true")
		case bytes.HasPrefix(s.b[s.i:], []byte("false")):
			s.i += len("false")
		default:
			return false
		}
		if f.kind == plainBool {
			field.SetBool(b)
		} else {
			*field.Addr().Interface().(**bool) = &b
		}
		return true
	case plainInt:
		start := s.i
		for s.i < len(s.b) && (s.b[s.i] == '-' || '0' <= s.b[s.i] && s.b[s.i] <= '9') {
			s.i++
		}
		n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, field.Type().Bits())
		if err != nil || s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
			return false
		}
		field.SetInt(n)
		return true
	case plainAmount, plainAmountPointer:
		text, ok := s.plainText()
		if !ok {
			return false
		}
		a, err := NewAmount(text)
		if err != nil {
			return false // json.Unmarshal words the refusal
		}
		if f.kind == plainAmount {
			*field.Addr().Interface().(*Amount) = a
		} else {
			*field.Addr().Interface().(**Amount) = &a
		}
		return true
	}
	return false
}

// plainText reads the string at s.i when it is one json.Unmarshal would read as the
// same bytes: no escape, valid UTF-8. ok is false for anything else.
func (s *keyScanner) plainText() (text string, ok bool) {
	if s.b[s.i] != '"' {
		return "", false
	}
	value, plain := s.plainString()
	if !plain || !utf8.Valid(value) {
		return "", false
	}
	return string(value), true
}

// appendPlainPayload appends p (a pointer to a payload struct) exactly as json.Marshal
// writes it, when every field is of a kind scanPayload reads and jsonappend writes its
// text; false for anything else, and json.Marshal writes it. An inbound event's digests
// hash this JSON, once per event: json.Marshal's reflection was most of their cost.
// FuzzPlainPayloadEncodesAsEncodingJSON holds the two to the same bytes.
func appendPlainPayload(dst []byte, p Payload) ([]byte, bool) {
	v, plan, ok := plainStruct(p)
	// Every field plain before any is written: json.Marshal omits by its own emptiness,
	// which a time or an array is never.
	if !ok || !plan.writable {
		return dst, false
	}
	dst = append(dst, '{')
	first := true
	for _, f := range plan.ordered {
		field := v.Field(f.index)
		if f.omitEmpty && field.IsZero() && f.kind != plainAmount {
			continue // json.Marshal never omits a struct, which an Amount is
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, f.key...)
		var ok bool
		switch f.kind {
		case plainText:
			if dst, ok = jsonappend.String(dst, field.String()); !ok {
				return dst, false
			}
		case plainBool:
			dst = strconv.AppendBool(dst, field.Bool())
		case plainInt:
			dst = strconv.AppendInt(dst, field.Int(), 10)
		case plainAmount:
			dst = field.Addr().Interface().(*Amount).appendJSON(dst)
		case plainAmountPointer, plainBoolPointer:
			if field.IsNil() {
				dst = append(dst, "null"...)
			} else if f.kind == plainAmountPointer {
				dst = field.Interface().(*Amount).appendJSON(dst)
			} else {
				dst = strconv.AppendBool(dst, field.Elem().Bool())
			}
		default:
			return dst, false
		}
	}
	return append(dst, '}'), true
}
