package tracing_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/payinfra/refunds/internal/tracing"
)

const (
	inboundParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	inboundState  = "vendor=opaque"
)

func TestFromHeader(t *testing.T) {
	tests := []struct {
		name       string
		header     nats.Header
		wantValid  bool
		wantTrace  string
		wantSpan   string
		wantState  string
		wantRemote bool
	}{
		{name: "no headers", header: nil},
		{name: "no trace context", header: nats.Header{nats.MsgIdHdr: {"evt-1"}}},
		{name: "malformed traceparent", header: nats.Header{"traceparent": {"00-nothex-00f067aa0ba902b7-01"}}},
		{name: "all-zero trace id", header: nats.Header{"traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}},
		{
			name: "traceparent and tracestate", header: nats.Header{"traceparent": {inboundParent}, "tracestate": {inboundState}},
			wantValid: true, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7", wantState: inboundState, wantRemote: true,
		},
		{
			// NATS header names are case-sensitive; a publisher that canonicalised them
			// as net/http does is still understood.
			name: "canonicalised names", header: nats.Header{"Traceparent": {inboundParent}},
			wantValid: true, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7", wantRemote: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := tracing.FromHeader(tt.header)
			if sc.IsValid() != tt.wantValid {
				t.Fatalf("valid %v, want %v (%+v)", sc.IsValid(), tt.wantValid, sc)
			}
			if !tt.wantValid {
				return
			}
			if sc.TraceID().String() != tt.wantTrace || sc.SpanID().String() != tt.wantSpan || sc.TraceState().String() != tt.wantState || sc.IsRemote() != tt.wantRemote || !sc.IsSampled() {
				t.Fatalf("span context %s/%s state %q remote %v sampled %v", sc.TraceID(), sc.SpanID(), sc.TraceState(), sc.IsRemote(), sc.IsSampled())
			}
		})
	}
}

func TestFormatAndParseRoundTrip(t *testing.T) {
	sc := tracing.FromHeader(nats.Header{"traceparent": {inboundParent}, "tracestate": {inboundState}})
	parent, state := tracing.Format(sc)
	if parent != inboundParent || state != inboundState {
		t.Fatalf("Format: %q %q, want %q %q", parent, state, inboundParent, inboundState)
	}
	back := tracing.Parse(parent, state)
	if !back.Equal(sc) {
		t.Fatalf("Parse(Format(sc)) = %+v, want %+v", back, sc)
	}
	if p, s := tracing.Format(trace.SpanContext{}); p != "" || s != "" {
		t.Fatalf("Format of no span context: %q %q, want empty", p, s)
	}
	if tracing.Parse("", "").IsValid() || tracing.Parse("garbage", "").IsValid() {
		t.Fatal("Parse of an empty or malformed traceparent is valid")
	}
}

func TestInjectAndCopyHeaders(t *testing.T) {
	sc := tracing.FromHeader(nats.Header{"traceparent": {inboundParent}, "tracestate": {inboundState}})

	h := nats.Header{}
	tracing.Inject(trace.ContextWithRemoteSpanContext(context.Background(), sc), h)
	if h.Get("traceparent") != inboundParent || h.Get("tracestate") != inboundState {
		t.Fatalf("Inject wrote %v", h)
	}
	empty := nats.Header{}
	tracing.Inject(context.Background(), empty)
	if len(empty) != 0 {
		t.Fatalf("Inject without a span context wrote %v", empty)
	}

	copied := nats.Header{}
	tracing.CopyHeaders(copied, nats.Header{"Traceparent": {inboundParent}, nats.MsgIdHdr: {"evt-1"}})
	if copied.Get("traceparent") != inboundParent || len(copied) != 1 {
		t.Fatalf("CopyHeaders copied %v, want only the traceparent", copied)
	}
}

// The intake reads the trace context of every inbound message and formats one per
// event that causes outbound events: for a message without one that must cost nothing.
func TestNoTraceContextAllocatesNothing(t *testing.T) {
	h := nats.Header{nats.MsgIdHdr: {"evt-1"}}
	allocs := testing.AllocsPerRun(100, func() {
		sc := tracing.FromHeader(h)
		if p, s := tracing.Format(sc); p != "" || s != "" {
			t.Fatal("a trace context out of nothing")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message without a trace context, want 0", allocs)
	}
}
