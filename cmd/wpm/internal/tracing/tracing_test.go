package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// Off without an endpoint: no provider, and Shutdown does nothing.
func TestTracing_offWithoutEndpoint(t *testing.T) {
	tr, err := Start(Config{ServiceName: "wpm", SampleRatio: 1})
	require.NoError(t, err)
	assert.Nil(t, tr.Provider)
	assert.NoError(t, tr.Shutdown(context.Background()))
}

// Spans reach an OTLP/HTTP collector at the endpoint's /v1/traces, with
// the service's name and version; Shutdown sends what is left.
func TestTracing_exportsToTheEndpoint(t *testing.T) {
	rec := testkit.NewOTLPReceiver(t)
	tr, err := Start(Config{Endpoint: rec.URL, ServiceName: "svc", SampleRatio: 1, Version: "v9", Instance: "h1"})
	require.NoError(t, err)
	_, span := tr.Provider.Tracer("test").Start(context.Background(), "hello")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, tr.Shutdown(ctx))
	got, ok := rec.WaitSpan(time.Second, func(s testkit.Span) bool { return s.Name == "hello" })
	require.True(t, ok, "no span received: %v", rec.Spans())
	assert.Equal(t, "svc", got.Service)
	assert.Equal(t, "h1", got.Instance)
	assert.Equal(t, span.SpanContext().TraceID().String(), got.TraceID)
}

// A sample ratio of 0 records no new trace.
func TestTracing_sampleRatio(t *testing.T) {
	rec := testkit.NewOTLPReceiver(t)
	tr, err := Start(Config{Endpoint: rec.URL, ServiceName: "svc", SampleRatio: 0})
	require.NoError(t, err)
	_, span := tr.Provider.Tracer("test").Start(context.Background(), "dropped")
	assert.False(t, span.IsRecording())
	span.End()
	require.NoError(t, tr.Shutdown(context.Background()))
	assert.Empty(t, rec.Spans())
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4318":            "http://127.0.0.1:4318/v1/traces",
		"http://127.0.0.1:4318/":           "http://127.0.0.1:4318/v1/traces",
		"https://c.example/otlp":           "https://c.example/otlp/v1/traces",
		"https://c.example/otlp/v1/traces": "https://c.example/otlp/v1/traces",
	} {
		got, err := tracesURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := tracesURL("127.0.0.1:4318")
	assert.Error(t, err)
}
