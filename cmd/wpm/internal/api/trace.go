package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/cmd/wpm/internal/tracing"
)

// tracerName is the instrumentation scope of the API's spans.
const tracerName = "github.com/wpmdev/wpm/cmd/wpm/internal/api"

// traceRequests makes a server span of each request, continuing the
// trace of its W3C traceparent, if any; the request's context carries it
// to the handler, so a task's spans (host's, the queue's) join it. It is
// the outermost middleware, so that the request log line sees the trace.
// Without a tracer provider it is not installed.
func (s *Server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	tracer := s.opts.TracerProvider.Tracer(tracerName)
	return func(c echo.Context) error {
		r := c.Request()
		ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		route, name := c.Path(), r.Method
		if route != "" { // no route matched: the method alone, never the path (unbounded)
			name += " " + route
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route),
				attribute.String("url.path", r.URL.Path),
			))
		defer span.End()
		c.SetRequest(r.WithContext(ctx))
		err := next(c)
		st := c.Response().Status
		span.SetAttributes(attribute.Int("http.response.status_code", st))
		if v, ok := c.Get(ctxTaskID).(string); ok {
			span.SetAttributes(attribute.String("wpm.task.id", v))
		}
		if st >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(st))
		}
		return err
	}
}

// traceArgs are the log arguments naming the trace ctx's span is in:
// none when there is none.
func traceArgs(ctx context.Context, args []any) []any {
	if id := tracing.TraceID(ctx); id != "" {
		args = append(args, "trace", id)
	}
	return args
}
