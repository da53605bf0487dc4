// Package tracing sets up wpm's OpenTelemetry traces: the SDK's tracer
// provider with an OTLP/HTTP exporter (tracing.endpoint), and the W3C
// trace-context propagator the HTTP API and the queue continue traces
// with. host and queue use only OpenTelemetry's API; the SDK and the
// exporter are this package's.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config is what Start needs: config.Tracing's fields.
type Config struct {
	// Endpoint is the collector's base URL (http://127.0.0.1:4318);
	// empty turns tracing off.
	Endpoint string
	// ServiceName is the spans' service.name.
	ServiceName string
	// SampleRatio is the share of new traces recorded.
	SampleRatio float64
	// Version is wpm's version, the spans' service.version.
	Version string
	// Instance names this host (nats.name), the spans'
	// service.instance.id: which host of a cluster made a span.
	Instance string
}

// Propagator is the one propagator wpm speaks: W3C trace context
// (traceparent, tracestate).
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracing is a started tracer provider; its zero value (tracing off)
// has a nil Provider and a Shutdown that does nothing.
type Tracing struct {
	// Provider is nil when tracing is off: hand it to host, queue and the
	// API, which then trace nothing at no cost.
	Provider trace.TracerProvider
	sdk      *sdktrace.TracerProvider
}

// Start starts the tracer provider cfg describes, or returns the zero
// Tracing when cfg.Endpoint is empty. Spans leave in batches; nothing
// is sent at start, so a collector that is down costs only dropped spans.
func Start(cfg Config) (Tracing, error) {
	if cfg.Endpoint == "" {
		return Tracing{}, nil
	}
	endpoint, err := tracesURL(cfg.Endpoint)
	if err != nil {
		return Tracing{}, err
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return Tracing{}, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	if cfg.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.Instance))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		res = resource.NewSchemaless(attrs...)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return Tracing{Provider: tp, sdk: tp}, nil
}

// Shutdown sends the spans not sent yet, within ctx, and stops the
// provider.
func (t Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// tracesURL is the OTLP/HTTP traces URL of base, a collector's base URL
// as OTEL_EXPORTER_OTLP_ENDPOINT gives it: /v1/traces is added unless the
// path ends with it already.
func tracesURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing.endpoint %q is not an http or https URL like http://127.0.0.1:4318", base)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// TraceID returns the trace id of the span ctx carries, or "" when it
// carries none (tracing off): what log lines and task records show.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}
