package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/host"
)

// withTracing makes the API trace its requests to rec.
func withTracing(t *testing.T, rec *tracetest.SpanRecorder) serverOption {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return func(_ *host.Config, o *api.Options) { o.TracerProvider = tp }
}

// getTraced gets url with a caller's traceparent and returns the status.
func getTraced(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// A request is a server span named by its route, continuing the
// caller's traceparent; a request no route matches is named by its
// method alone (a path would make names without bound).
func TestTracing_requestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	s := newServer(t, withTracing(t, rec))
	require.Equal(t, http.StatusOK, getTraced(t, s.URL+"/v1/pools/CPU"))
	require.Equal(t, http.StatusNotFound, getTraced(t, s.URL+"/no/such/route/42"))

	spans := rec.Ended()
	require.Len(t, spans, 2)
	pool, missing := spans[0], spans[1]
	assert.Equal(t, "GET /v1/pools/:pool", pool.Name())
	assert.Equal(t, trace.SpanKindServer, pool.SpanKind())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", pool.SpanContext().TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", pool.Parent().SpanID().String())
	assert.Contains(t, pool.Attributes(), attribute.Int("http.response.status_code", 200))
	assert.NotContains(t, missing.Name(), "42", "no path in a span's name")
	assert.True(t, strings.HasPrefix(missing.Name(), "GET"), missing.Name())
	assert.Contains(t, missing.Attributes(), attribute.Int("http.response.status_code", 404))
}
