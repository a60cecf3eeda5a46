// Package tracing carries W3C trace context (the traceparent and tracestate headers)
// through NATS messages and the outbox, and sets up the OpenTelemetry tracer the
// engine records its spans with. It is the one place that knows the header format;
// state/ stays free of it (a step carries the two header values as opaque strings).
package tracing

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The W3C Trace Context header names, as propagation.TraceContext writes them.
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// propagator is W3C Trace Context only: no baggage is carried, so nothing a caller
// puts in baggage can leak into the engine's outbound events.
var propagator = propagation.TraceContext{}

// Header is a propagation.TextMapCarrier over NATS message headers.
type Header nats.Header

var _ propagation.TextMapCarrier = Header(nil)

// Get returns the first value of key. NATS header names are case-sensitive; a
// publisher that canonicalised the name (Traceparent, as net/http would) is still
// understood. The exact name is looked up first, so the common case costs one map
// lookup and allocates nothing.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces the values of key.
func (h Header) Set(key, value string) { nats.Header(h).Set(key, value) }

// Keys lists the header names.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// FromHeader is the remote span context a message's publisher sent in its headers;
// it is not valid (IsValid false) when the message has none or a malformed one.
func FromHeader(h nats.Header) trace.SpanContext {
	if len(h) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), Header(h)))
}

// Inject writes the trace context of ctx's span (or of the remote span context it
// carries) into h. It writes nothing when ctx has none.
func Inject(ctx context.Context, h nats.Header) {
	propagator.Inject(ctx, Header(h))
}

// Format is sc as the traceparent and tracestate header values, "" when sc is not
// valid (tracestate is also "" when sc has none).
func Format(sc trace.SpanContext) (traceParent, traceState string) {
	if !sc.IsValid() {
		return "", ""
	}
	var f fields
	propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), &f)
	return f.parent, f.state
}

// Parse is the span context that traceParent and traceState describe, marked remote;
// not valid when traceParent is empty or malformed.
func Parse(traceParent, traceState string) trace.SpanContext {
	if traceParent == "" {
		return trace.SpanContext{}
	}
	f := fields{parent: traceParent, state: traceState}
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), &f))
}

// SetHeaders writes traceParent and traceState into h as they are, each only when it
// is not empty.
func SetHeaders(h nats.Header, traceParent, traceState string) {
	if traceParent == "" {
		return
	}
	h.Set(HeaderTraceParent, traceParent)
	if traceState != "" {
		h.Set(HeaderTraceState, traceState)
	}
}

// CopyHeaders copies the trace context headers of src, if any, into dst.
func CopyHeaders(dst, src nats.Header) {
	if len(src) == 0 {
		return
	}
	c := Header(src)
	SetHeaders(dst, c.Get(HeaderTraceParent), c.Get(HeaderTraceState))
}

// fields is a carrier of just the two trace context values, for the outbox.
type fields struct{ parent, state string }

func (f *fields) Get(key string) string {
	switch key {
	case HeaderTraceParent:
		return f.parent
	case HeaderTraceState:
		return f.state
	}
	return ""
}

func (f *fields) Set(key, value string) {
	switch key {
	case HeaderTraceParent:
		f.parent = value
	case HeaderTraceState:
		f.state = value
	}
}

func (f *fields) Keys() []string { return []string{HeaderTraceParent, HeaderTraceState} }
