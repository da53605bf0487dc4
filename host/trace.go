package host

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/internal/wire"
)

// Tracing: with [WithTracerProvider], each task has a span for its
// attempt (from acceptance to answer: pool, plugin, worker pid, code), a
// child for the time it waited for a worker, and for a one-shot one for
// its process's start. The attempt's span continues the span ctx carries
// (the HTTP request's, or the queue's submit), and its traceparent
// travels to the plugin (shared.TraceParent). host uses OpenTelemetry's
// API only: the SDK and the exporter are the embedding program's. Without
// a provider nothing of this runs, and a task costs what it did.

// tracerName is the instrumentation scope of host's spans.
const tracerName = "github.com/wpmdev/wpm/host"

// The attributes of host's spans.
const (
	AttrTaskID    = attribute.Key("wpm.task.id")
	AttrPool      = attribute.Key("wpm.pool")
	AttrPlugin    = attribute.Key("wpm.plugin")
	AttrWorkerPID = attribute.Key("wpm.worker.pid")
	AttrCode      = attribute.Key("wpm.code")
)

// The names of host's spans.
const (
	SpanAttempt      = "wpm.attempt"
	SpanQueueWait    = "wpm.queue_wait"
	SpanOneShotStart = "wpm.oneshot.start"
)

// WithTracerProvider makes the manager trace its tasks with tp's tracer
// (see the package's tracing notes). nil, the default, traces nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(m *Manager) {
		if tp != nil {
			m.tracer = tp.Tracer(tracerName)
		}
	}
}

// startAttempt starts the span of a task's attempt under the span ctx
// carries, and returns ctx carrying it and its traceparent for the
// plugin. Without a tracer it returns ctx and nil.
func (m *Manager) startAttempt(ctx context.Context, id, pool, plugin string) (context.Context, trace.Span) {
	if m.tracer == nil {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{AttrTaskID.String(id), AttrPlugin.String(plugin)}
	if pool != "" {
		attrs = append(attrs, AttrPool.String(pool))
	}
	ctx, span := m.tracer.Start(ctx, SpanAttempt, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return wire.WithTraceParent(ctx, TraceParent(span.SpanContext())), span
}

// endAttempt ends the attempt's span of b: its worker's pid and its code,
// and a child span for the time from acceptance until it had a worker.
func (b taskBook) endAttempt(pid int, wait time.Duration, err error) {
	if b.span == nil {
		return
	}
	if wait > 0 {
		_, w := b.m.tracer.Start(trace.ContextWithSpan(context.Background(), b.span), SpanQueueWait,
			trace.WithTimestamp(b.start))
		w.End(trace.WithTimestamp(b.start.Add(wait)))
	}
	code := "ok"
	if err != nil {
		code = string(Code(err))
		b.span.SetStatus(otelcodes.Error, err.Error())
	}
	if pid != 0 {
		b.span.SetAttributes(AttrWorkerPID.Int(pid))
	}
	b.span.SetAttributes(AttrCode.String(code))
	b.span.End()
}

// startChild starts a span named name under the recording span ctx
// carries, or returns nil when there is none (tracing is off).
func startChild(ctx context.Context, name string) trace.Span {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return nil
	}
	_, span := parent.TracerProvider().Tracer(tracerName).Start(ctx, name)
	return span
}

// endChild ends span, if any, with err's code.
func endChild(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(otelcodes.Error, err.Error())
		span.SetAttributes(AttrCode.String(string(Code(err))))
	}
	span.End()
}

// TraceParent returns sc as a W3C traceparent header value, or "" when sc
// is not valid.
func TraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	for _, c := range tid {
		b = append(b, hex[c>>4], hex[c&15])
	}
	b = append(b, '-')
	for _, c := range sid {
		b = append(b, hex[c>>4], hex[c&15])
	}
	f := byte(sc.TraceFlags())
	b = append(b, '-', hex[f>>4], hex[f&15])
	return string(b)
}
