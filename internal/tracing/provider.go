package tracing

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the engine's tracer.
const InstrumentationName = "github.com/payinfra/refunds"

// The standard OpenTelemetry environment variables that switch the OTLP exporter on.
const (
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// ExporterConfig says whether and where spans are exported (OTLP over HTTP).
type ExporterConfig struct {
	// Endpoint is the base URL of an OTLP/HTTP collector, e.g. http://collector:4318;
	// spans are posted to its /v1/traces, as with OTEL_EXPORTER_OTLP_ENDPOINT. It wins
	// over the standard variables. "" leaves the choice to them.
	Endpoint string
	// FromEnv is true when OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set: the exporter then reads them (and the
	// other OTEL_EXPORTER_OTLP_* variables: headers, timeout, compression) itself.
	FromEnv bool
	// ServiceInstance is service.instance.id on every span; service.name is refundd
	// unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
	ServiceInstance string
}

// Enabled says an exporter is configured.
func (c ExporterConfig) Enabled() bool { return c.Endpoint != "" || c.FromEnv }

// Start returns the tracer the engine records spans with and a function that exports
// what is buffered and stops; call it on the way out.
//
// Without an exporter it returns a nil tracer: the engine then records no spans and
// only carries the trace context it receives (an outbound event's traceparent is its
// cause's, as received: the same trace id, the inbound span as parent). That is the
// cheap choice for the intake's hot path: a span from the SDK with nowhere to go, or
// even a no-op span, costs allocations per event for nothing anyone can see, while
// the remote span context is a value the intake already holds.
func Start(ctx context.Context, cfg ExporterConfig) (trace.Tracer, func(context.Context) error, error) {
	if !cfg.Enabled() {
		return nil, func(context.Context) error { return nil }, nil
	}
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(TracesURL(cfg.Endpoint)))
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", "refundd"),
			attribute.String("service.instance.id", cfg.ServiceInstance),
		),
		resource.WithFromEnv(), // after: OTEL_SERVICE_NAME wins
	)
	if err != nil {
		return nil, nil, fmt.Errorf("trace resource: %w", err)
	}
	// The default sampler, ParentBased(AlwaysSample) unless OTEL_TRACES_SAMPLER says
	// otherwise: an inbound event's publisher decides whether its trace is sampled.
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
	)
	return provider.Tracer(InstrumentationName), provider.Shutdown, nil
}

// TracesURL is where spans are posted for an OTLP/HTTP base URL: its /v1/traces.
func TracesURL(base string) string {
	return strings.TrimRight(base, "/") + "/v1/traces"
}
