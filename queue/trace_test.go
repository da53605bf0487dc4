package queue

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// callerContext carries a sampled remote span, as an incoming
// traceparent does.
func callerContext(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

// tracedEngine is an engine over testPools whose manager and engine
// trace to the returned recorder (none when traced is false).
func tracedEngine(t *testing.T, traced bool) (*Engine, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.Pools = testPools()
	var hostOpts []host.Option
	opts := testOptions(t.TempDir())
	if traced {
		hostOpts = append(hostOpts, host.WithTracerProvider(tp))
		opts.TracerProvider = tp
	}
	mgr, err := host.New(cfg, hostOpts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, mgr.Shutdown(ctx))
		testkit.RequireNoChildren(t)
	})
	return startEngine(t, mgr, opts), rec
}

// recorded returns the ended span called name, failing when there is
// not exactly one.
func recorded(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %s", name)
	return found[0]
}

// A submit is a producer span under the caller's; its trace context
// travels in the task's message, so the attempt the runner starts is the
// submit's child; the record keeps the trace id.
func TestTracing_submitThenRun(t *testing.T) {
	e, rec := tracedEngine(t, true)
	ctx, caller := callerContext(t)
	task, err := e.Submit(ctx, Request{Pool: "M", Input: []byte(`{"fault": "echo"}`)})
	require.NoError(t, err)
	assert.Equal(t, caller.TraceID().String(), task.TraceID)
	done := waitFor(t, e, task.ID, ended)
	require.Equal(t, StateSucceeded, done.State)
	assert.Equal(t, caller.TraceID().String(), done.TraceID, "the record keeps its trace id")

	submit := recorded(t, rec, SpanSubmit)
	assert.Equal(t, trace.SpanKindProducer, submit.SpanKind())
	assert.Equal(t, caller.SpanID(), submit.Parent().SpanID())
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == host.SpanAttempt {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	attempt := recorded(t, rec, host.SpanAttempt)
	assert.Equal(t, caller.TraceID(), attempt.SpanContext().TraceID())
	assert.Equal(t, submit.SpanContext().SpanID(), attempt.Parent().SpanID())
	assert.True(t, attempt.Parent().IsRemote(), "continued from the message's headers")
}

// Without a tracer provider the record has no trace id, even under a
// caller's span, and nothing is recorded.
func TestTracing_offLeavesNoTrace(t *testing.T) {
	e, rec := tracedEngine(t, false)
	ctx, _ := callerContext(t)
	task, err := e.Submit(ctx, Request{Pool: "M", Input: []byte(`{"fault": "echo"}`)})
	require.NoError(t, err)
	done := waitFor(t, e, task.ID, ended)
	assert.Equal(t, StateSucceeded, done.State)
	assert.Empty(t, done.TraceID)
	assert.Empty(t, rec.Ended())
}
