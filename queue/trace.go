package queue

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/host"
)

// Tracing (Options.TracerProvider): a submit is a producer span
// (wpm.submit) under the span its context carries, and its W3C trace
// context travels in the task's message headers (traceparent), which the
// runner that takes the task continues: the host's attempt span is the
// submit's child, on whichever host runs it. A forwarded synchronous task
// (RunRemote) is a client span (wpm.forward) around its submit and its
// wait. The task's record keeps the trace id (Task.TraceID). Without a
// provider none of this runs and messages carry no header.

// tracerName is the instrumentation scope of the queue's spans.
const tracerName = "github.com/wpmdev/wpm/queue"

// The names of the queue's spans.
const (
	SpanSubmit  = "wpm.submit"
	SpanForward = "wpm.forward"
)

// propagator is the one the queue speaks: W3C trace context.
var propagator = propagation.TraceContext{}

// noSpan is what the span helpers return with tracing off: its methods
// do nothing.
var noSpan = trace.SpanFromContext(context.Background())

// startSpan starts a span named name of kind under ctx's, for the task
// of pool or plugin; with tracing off it returns ctx and noSpan.
func (e *Engine) startSpan(ctx context.Context, name string, kind trace.SpanKind, pool, plugin string) (context.Context, trace.Span) {
	if e.opts.TracerProvider == nil {
		return ctx, noSpan
	}
	attrs := []attribute.KeyValue{host.AttrPlugin.String(plugin)}
	if pool != "" {
		attrs = append(attrs, host.AttrPool.String(pool))
	}
	return e.opts.TracerProvider.Tracer(tracerName).Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// endSpan ends span with the task's id and err, if any.
func endSpan(span trace.Span, id string, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if id != "" {
		span.SetAttributes(host.AttrTaskID.String(id))
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// publishTask stores a task's message data on subj, deduplicated by id,
// with ctx's trace context in its headers when tracing is on, and opts
// (a delayed task's schedule).
func (e *Engine) publishTask(ctx context.Context, subj string, data []byte, id string, opts ...jetstream.PublishOpt) error {
	msg := &nats.Msg{Subject: subj, Data: data}
	if e.opts.TracerProvider != nil && trace.SpanContextFromContext(ctx).IsValid() {
		h := http.Header{}
		propagator.Inject(ctx, propagation.HeaderCarrier(h))
		msg.Header = nats.Header(h)
	}
	_, err := e.js.PublishMsg(ctx, msg, append([]jetstream.PublishOpt{jetstream.WithMsgID(id)}, opts...)...)
	return err
}

// traceContext returns ctx continuing the trace context msg's headers
// carry, if tracing is on and they carry one.
func (e *Engine) traceContext(ctx context.Context, msg jetstream.Msg) context.Context {
	if e.opts.TracerProvider == nil {
		return ctx
	}
	h := msg.Headers()
	if len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(http.Header(h)))
}

// traceID is the trace id of ctx's span, or "" when tracing is off or
// ctx has none.
func (e *Engine) traceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if e.opts.TracerProvider == nil || !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}
