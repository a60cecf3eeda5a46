// Package events is the wire contract of the refund engine: the CloudEvents
// envelope, one typed payload per event type, NATS subjects, and the rules
// that refuse a malformed event before it reaches the domain.
//
// Decode is the only way in and New the only way out, so every event the
// service acts on or publishes has passed the same checks. A refused event
// yields an error matching ErrInvalid; retrying it cannot help, so consumers
// park it as a dead letter (see DeadLetterSubject).
//
// The AsyncAPI document describing all of this is embedded as AsyncAPI; a
// test keeps it and this package in agreement.
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxEventSize is the largest encoded event, in bytes, that Decode accepts
// and Encode produces (1 MiB, the NATS default max_payload).
const MaxEventSize = 1 << 20

const (
	// SpecVersion is the only CloudEvents version spoken.
	SpecVersion = "1.0"
	// ContentType is the only datacontenttype accepted (it may also be omitted).
	ContentType = "application/json"

	maxEventIDLen = 256
	maxSourceLen  = 256
	maxAccountID  = 64
)

// NATS headers and subjects around an event.
const (
	// HeaderMsgID carries the event id so JetStream drops duplicates within
	// its window; processing is idempotent on the id beyond that.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderReason, on a dead letter, says why the event was refused.
	HeaderReason = "Refunds-Reason"
	// HeaderOriginalSubject, on a dead letter, is the subject it arrived on.
	HeaderOriginalSubject = "Refunds-Original-Subject"
	// DeadLetterPrefix starts the subject of every dead letter.
	DeadLetterPrefix = "deadletter."
	// HeaderTruncated, on a dead letter too large to carry its whole event, gives the
	// event's size and SHA-256; the body keeps its start.
	HeaderTruncated = "Refunds-Truncated"
)

// Envelope is one CloudEvents 1.0 event in structured JSON mode.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            Type            `json:"type"`
	Subject         string          `json:"subject"` // the account id
	Time            time.Time       `json:"time"`    // when it happened at the source, in UTC
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// Payload is the typed data of one event type; each validates itself.
// Validate reports the first problem as an *InvalidError whose Field starts
// with "data.".
type Payload interface{ Validate() error }

// Event is a decoded and validated envelope with its typed payload
// (a pointer to the type's struct, e.g. *TopupReceivedData).
type Event struct {
	Envelope
	// Payload is Data decoded; Data, not Payload, is what Encode sends.
	Payload Payload `json:"-"`
}

// wireEnvelope is Envelope with the time left raw, so that a bad time is
// reported as the "time" field rather than as an anonymous parse error.
type wireEnvelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            Type            `json:"type"`
	Subject         string          `json:"subject"`
	Time            json.RawMessage `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// fastReading lets Decode, Digests and Encode take their one-pass readings and writings
// of the plain case (scanEnvelope, scanPayload, plainJSONString, appendPlainPayload,
// compactJSON). It is always on; FuzzFastReadingChangesNothing turns it off to hold
// every result and every error to encoding/json's way.
var fastReading = true

// Decode parses and validates one structured CloudEvent: its size, the JSON,
// the envelope, that the type is known, and the payload of that type. Unknown
// fields, in the envelope (CloudEvents extensions) or in data, are ignored.
// Every refusal matches ErrInvalid and is an *InvalidError.
func Decode(raw []byte) (Event, error) {
	if len(raw) > MaxEventSize {
		return Event{}, tooLarge(len(raw))
	}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] != '{' {
		return Event{}, invalid("", "must be a JSON object, got %s", jsonKind(trimmed))
	}
	var w wireEnvelope
	var plain, unique bool
	if fastReading {
		w, plain, unique = scanEnvelope(raw)
	}
	if !plain {
		if err := json.Unmarshal(raw, &w); err != nil {
			return Event{}, jsonError("", err)
		}
	}
	if !plain || !unique {
		if err := checkKeys(raw, reflect.TypeFor[wireEnvelope](), ""); err != nil {
			return Event{}, err
		}
	}
	env := Envelope{
		SpecVersion:     w.SpecVersion,
		ID:              w.ID,
		Source:          w.Source,
		Type:            w.Type,
		Subject:         w.Subject,
		DataContentType: w.DataContentType,
		Data:            w.Data,
	}
	if err := parseTime(w.Time, &env.Time); err != nil {
		return Event{}, err
	}
	spec, err := validateEnvelope(env)
	if err != nil {
		return Event{}, err
	}
	p, err := decodePayload(spec, env.Data)
	if err != nil {
		return Event{}, err
	}
	return Event{Envelope: env, Payload: p}, nil
}

// New builds the event of type t about accountID, validating the envelope and
// p exactly as Decode would, and fills Data. p must be the type's payload
// struct as a pointer (e.g. *ReserveUnfrozenData for ReserveUnfrozen). at is
// stored in UTC.
func New(t Type, accountID, source, id string, at time.Time, p Payload) (Event, error) {
	spec, ok := Lookup(t)
	if !ok {
		return Event{}, unknownType(t)
	}
	if p == nil || reflect.ValueOf(p).IsNil() {
		return Event{}, invalid("data", "is required")
	}
	if got, want := reflect.TypeOf(p), reflect.TypeOf(spec.NewPayload()); got != want {
		return Event{}, invalid("data", "%s is not the payload of %s, which is %s", got, t, want)
	}
	if err := p.Validate(); err != nil {
		return Event{}, err
	}
	data, err := encodePayload(p)
	if err != nil {
		return Event{}, invalid("data", "cannot encode: %v", err)
	}
	env := Envelope{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            t,
		Subject:         accountID,
		Time:            at.UTC(),
		DataContentType: ContentType,
		Data:            data,
	}
	if _, err := validateEnvelope(env); err != nil {
		return Event{}, err
	}
	return Event{Envelope: env, Payload: p}, nil
}

// Encode returns the structured JSON of the event. It re-checks the envelope
// and the size so that nothing leaves that Decode would refuse.
func (e Event) Encode() ([]byte, error) {
	if _, err := validateEnvelope(e.Envelope); err != nil {
		return nil, err
	}
	raw, ok := appendEnvelope(make([]byte, 0, 256+len(e.Data)), e.Envelope)
	if !ok {
		var err error
		if raw, err = json.Marshal(e.Envelope); err != nil {
			return nil, invalid("", "cannot encode: %v", err)
		}
	}
	if len(raw) > MaxEventSize {
		return nil, tooLarge(len(raw))
	}
	return raw, nil
}

// NATSSubject is the subject the event is published on: "<type>.<subject>".
func (e Event) NATSSubject() string { return NATSSubject(e.Type, e.Subject) }

// NATSSubject is the subject of type t for one account: "<type>.<accountID>",
// e.g. "billing.resource.released.acct-42".
func NATSSubject(t Type, accountID string) string { return string(t) + "." + accountID }

// DeadLetterSubject is where a refused event received on subject is parked:
// "deadletter.<subject>", with the original bytes as body and the headers
// HeaderReason and HeaderOriginalSubject. A token that could not be published on (a
// wildcard, an empty token, whitespace) becomes "_", so a hostile subject can never
// make the dead letter a wildcard; the header keeps the subject as it was.
func DeadLetterSubject(subject string) string {
	if PublishableSubject(subject) {
		return DeadLetterPrefix + subject
	}
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		if !publishableToken(t) {
			tokens[i] = "_"
		}
	}
	return DeadLetterPrefix + strings.Join(tokens, ".")
}

// PublishableSubject reports whether subject names one subject, not a pattern: no
// wildcard, empty token or whitespace.
func PublishableSubject(subject string) bool {
	for t := range strings.SplitSeq(subject, ".") {
		if !publishableToken(t) {
			return false
		}
	}
	return subject != ""
}

func publishableToken(t string) bool {
	return t != "" && t != "*" && t != ">" && !strings.ContainsAny(t, " \t\r\n")
}

// ValidAccountID reports whether id is 1–64 of A-Z a-z 0-9 _ -. These are the
// characters that are safe as one NATS subject token: no '.', '*', '>' or
// whitespace that would change the subject's shape.
func ValidAccountID(id string) bool {
	if len(id) == 0 || len(id) > maxAccountID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validateEnvelope checks the envelope attributes in the order a reader
// would, and returns the spec of the (known) type.
func validateEnvelope(e Envelope) (Spec, error) {
	if e.SpecVersion != SpecVersion {
		return Spec{}, invalid("specversion", "must be %q, got %q", SpecVersion, excerpt(e.SpecVersion))
	}
	if e.ID == "" {
		return Spec{}, invalid("id", "is required")
	}
	if len(e.ID) > maxEventIDLen {
		return Spec{}, invalid("id", "must be at most %d bytes", maxEventIDLen)
	}
	if e.Source == "" {
		return Spec{}, invalid("source", "is required")
	}
	if len(e.Source) > maxSourceLen {
		return Spec{}, invalid("source", "must be at most %d bytes", maxSourceLen)
	}
	if e.Type == "" {
		return Spec{}, invalid("type", "is required")
	}
	spec, ok := Lookup(e.Type)
	if !ok {
		return Spec{}, unknownType(e.Type)
	}
	if !ValidAccountID(e.Subject) {
		return Spec{}, invalid("subject", "must be an account id of 1-64 of A-Z a-z 0-9 _ -, got %q", excerpt(e.Subject))
	}
	if e.Time.IsZero() {
		return Spec{}, invalid("time", "is required")
	}
	if e.DataContentType != "" && e.DataContentType != ContentType {
		return Spec{}, invalid("datacontenttype", "must be %q or absent, got %q", ContentType, excerpt(e.DataContentType))
	}
	if err := checkDataIsAnObject(e.Data); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// checkDataIsAnObject refuses data that is missing, null or not a JSON object: what an
// event's data, and a payload given alone (DecodePayload), must be.
func checkDataIsAnObject(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return invalid("data", "is required")
	}
	if data[0] != '{' {
		return invalid("data", "must be a JSON object, got %s", jsonKind(data))
	}
	return nil
}

func tooLarge(size int) error {
	return &InvalidError{
		Reason: "event of " + strconv.Itoa(size) + " bytes is over the limit of " + strconv.Itoa(MaxEventSize),
		Err:    ErrTooLarge,
	}
}

func unknownType(t Type) error {
	return &InvalidError{Field: "type", Reason: "unknown event type " + strconv.Quote(excerpt(string(t))), Err: ErrUnknownType}
}

// plainJSONString is the text of raw, one JSON value, when it is a string that holds no
// escape and is UTF-8 (keyScanner.plainText): what json.Unmarshal would read from it,
// without its reflection. Every event's time is one. raw must be valid JSON, as an
// envelope's time is once the envelope was read.
func plainJSONString(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	s := keyScanner{b: raw}
	text, ok := s.plainText()
	return text, ok && s.i == len(raw)
}

func parseTime(raw json.RawMessage, into *time.Time) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil // reported as "time: is required" by validateEnvelope
	}
	var s string
	var plain bool
	if fastReading {
		s, plain = plainJSONString(raw)
	}
	if !plain {
		if err := json.Unmarshal(raw, &s); err != nil {
			return invalid("time", "must be an RFC 3339 string, got %s", jsonKind(raw))
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return invalid("time", "must be an RFC 3339 time like 2026-11-23T08:00:00Z, got %q", excerpt(s))
	}
	if t.IsZero() {
		return invalid("time", "must be a real time, got %q (Go's zero time)", excerpt(s))
	}
	*into = t.UTC()
	return nil
}

// DecodePayload decodes and validates data as the payload of type t, with the checks
// Decode applies to an event's data: a JSON object, no key given twice or differing
// from a field only in case, every required field present, each value of its kind,
// and the type's own rules. A tool that builds an event from a payload it was given
// (refundctl publish -data) checks it so, and sends nothing the engine would refuse.
func DecodePayload(t Type, data []byte) (Payload, error) {
	spec, ok := Lookup(t)
	if !ok {
		return nil, unknownType(t)
	}
	if !validJSON(data) {
		var probe any
		return nil, jsonError("data", json.Unmarshal(data, &probe))
	}
	if err := checkDataIsAnObject(data); err != nil {
		return nil, err
	}
	return decodePayload(spec, data)
}

// decodePayload checks that every required field of the type is present,
// decodes data into the type's struct and validates it.
func decodePayload(spec Spec, data json.RawMessage) (Payload, error) {
	p := spec.NewPayload()
	t := reflect.TypeOf(p)
	var given uint64
	var ok bool
	if fastReading {
		given, ok = scanPayload(data, p)
	}
	if ok {
		// Read in one pass, with no key problem for payloadKeys to name.
		if err := payloadPlanOf(t.Elem()).requiredGiven(given); err != nil {
			return nil, err
		}
	} else if err := decodePayloadAsJSON(data, t, jsonFieldsOf(t).required, p); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// decodePayloadAsJSON is decodePayload's reading of what scanPayload does not read:
// the keys checked by payloadKeys, then json.Unmarshal into a fresh payload (scanPayload
// may have filled part of p before it gave up).
func decodePayloadAsJSON(data json.RawMessage, t reflect.Type, required []string, p Payload) error {
	// The envelope's decoding found data well-formed JSON; the key scanner needs no more.
	present, err := payloadKeys(data, t, "data")
	if err != nil {
		return err
	}
	// Presence is checked here, not in Validate, because a Go zero value
	// (false, "", 0) cannot tell "absent" from "given as zero".
	for _, name := range required {
		if !slices.Contains(present, name) {
			return invalid("data."+name, "is required")
		}
	}
	reflect.ValueOf(p).Elem().SetZero()
	if err := json.Unmarshal(data, p); err != nil {
		return jsonError("data", err)
	}
	return nil
}

// requiredFields lists the JSON names of a payload struct's required fields:
// those whose json tag lacks omitempty. The AsyncAPI test uses the same rule.
func requiredFields(t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		if !hasOption(opts, "omitempty") {
			names = append(names, name)
		}
	}
	return names
}

func hasOption(opts, want string) bool {
	for opt := range strings.SplitSeq(opts, ",") {
		if opt == want {
			return true
		}
	}
	return false
}

// jsonError turns an encoding/json error into an InvalidError naming the
// field, under prefix ("" for the envelope, "data" for the payload).
func jsonError(prefix string, err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if prefix != "" {
			field = strings.TrimSuffix(prefix+"."+field, ".")
		}
		if field == "" {
			return invalid(prefix, "must be a JSON object, got %s", typeErr.Value)
		}
		return invalid(field, "must be %s, got %s", describeType(typeErr.Type), typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return invalid(prefix, "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	}
	return invalid(prefix, "%v", err)
}

// describeType names what a field expects, in the words of the wire.
func describeType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == amountType:
		return `a decimal string with at most 2 fraction digits, like "100.00"`
	case t == reflect.TypeFor[time.Time]():
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return t.String()
	}
}
