package wire

import "context"

// A task's trace context travels with it as a W3C traceparent
// ("00-<trace id>-<span id>-<flags>"): the host puts the span of the
// task's attempt in RunArgs.TraceParent, and the plugin's RPCServer puts
// it in the task's context, where shared.TraceParent reads it. The wire
// carries only the string, so that neither side needs OpenTelemetry to
// speak the protocol; a plugin built before the field existed ignores it
// (gob matches fields by name).

type traceParentKey struct{}

// WithTraceParent returns ctx carrying tp, the W3C traceparent of the
// task run under it: given to an [RPCClient]'s Run it travels to the
// plugin; on the plugin's side it is what [TraceParent] returns. An
// empty tp returns ctx.
func WithTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return context.WithValue(ctx, traceParentKey{}, tp)
}

// TraceParent returns the W3C traceparent ctx carries, or "".
func TraceParent(ctx context.Context) string {
	tp, _ := ctx.Value(traceParentKey{}).(string)
	return tp
}
