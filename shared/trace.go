package shared

import (
	"context"

	"github.com/wpmdev/wpm/internal/wire"
)

// TraceParent returns the W3C traceparent of the task running under ctx
// ("00-<trace id>-<span id>-<flags>"), or "" when the host traces nothing
// (tracing.endpoint unset), the host is older, or ctx is no task's. It
// names the host's span of this attempt, so a plugin's own spans join the
// task's trace when the plugin extracts it with OpenTelemetry's
// propagator:
//
//	carrier := propagation.MapCarrier{"traceparent": shared.TraceParent(ctx)}
//	ctx = propagation.TraceContext{}.Extract(ctx, carrier)
//	ctx, span := tracer.Start(ctx, "resize")
//	defer span.End()
//
// The plugin exports its spans itself (its own OTLP exporter); wpm does
// not relay them.
func TraceParent(ctx context.Context) string { return wire.TraceParent(ctx) }
