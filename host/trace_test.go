package host_test

import (
	"context"
	"encoding/json"
	"sync"
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

// newTracedManager starts a manager with pools whose spans go to the
// returned recorder.
func newTracedManager(t *testing.T, pools ...host.PoolConfig) (*host.Manager, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := host.DefaultConfig()
	cfg.Pools = pools
	return newManagerWith(t, cfg, testLogger(t), host.WithTracerProvider(tp)), rec
}

// remoteParent returns ctx carrying a sampled remote span context, as an
// incoming traceparent makes it.
func remoteParent(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

// spansNamed returns the ended spans called name.
func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// attr returns the value of the span's attribute key, or nil.
func attr(s sdktrace.ReadOnlySpan, key string) any {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsInterface()
		}
	}
	return nil
}

func traceParentOf(t *testing.T, out []byte) string {
	t.Helper()
	var v struct {
		TraceParent string `json:"traceparent"`
	}
	require.NoError(t, json.Unmarshal(out, &v), "output %s", out)
	return v.TraceParent
}

// A pool task's attempt is a span under the caller's, with its pool,
// plugin, worker and code; the plugin reads the attempt's traceparent.
func TestTracing_poolTask(t *testing.T) {
	m, rec := newTracedManager(t, misbehavePool("traced", 1))
	ctx, parent := remoteParent(t)
	res, err := m.Submit(ctx, "traced", fault("trace"))
	require.NoError(t, err)

	attempts := spansNamed(rec, host.SpanAttempt)
	require.Len(t, attempts, 1)
	a := attempts[0]
	assert.Equal(t, parent.TraceID(), a.SpanContext().TraceID())
	assert.Equal(t, parent.SpanID(), a.Parent().SpanID())
	assert.Equal(t, "traced", attr(a, "wpm.pool"))
	assert.Equal(t, "misbehave", attr(a, "wpm.plugin"))
	assert.Equal(t, res.TaskID, attr(a, "wpm.task.id"))
	assert.EqualValues(t, res.WorkerPID, attr(a, "wpm.worker.pid"))
	assert.Equal(t, "ok", attr(a, "wpm.code"))
	assert.Equal(t, host.TraceParent(a.SpanContext()), traceParentOf(t, res.Output),
		"the plugin's traceparent names the attempt's span")
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-"+a.SpanContext().SpanID().String()+"-01", traceParentOf(t, res.Output))

	// A failed task's span says how.
	_, err = m.Submit(ctx, "traced", fault("fail"))
	require.Error(t, err)
	attempts = spansNamed(rec, host.SpanAttempt)
	require.Len(t, attempts, 2)
	assert.Equal(t, "task_failed", attr(attempts[1], "wpm.code"))
}

// A task that waits for a worker has a queue-wait span under its attempt.
func TestTracing_queueWait(t *testing.T) {
	m, rec := newTracedManager(t, misbehavePool("one", 1))
	waitReady(t, m, "one")
	ctx, _ := remoteParent(t)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, err := m.Submit(ctx, "one", fault("sleep", "ms", 200))
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	waits := spansNamed(rec, host.SpanQueueWait)
	require.NotEmpty(t, waits)
	var longest time.Duration
	for _, w := range waits {
		longest = max(longest, w.EndTime().Sub(w.StartTime()))
		var parent sdktrace.ReadOnlySpan
		for _, a := range spansNamed(rec, host.SpanAttempt) {
			if a.SpanContext().SpanID() == w.Parent().SpanID() {
				parent = a
			}
		}
		require.NotNil(t, parent, "a queue wait's parent is its attempt")
	}
	assert.Greater(t, longest, 100*time.Millisecond, "the second task waited for the first")
}

// A one-shot's attempt has a child span for its process's start.
func TestTracing_oneShot(t *testing.T) {
	m, rec := newTracedManager(t)
	ctx, parent := remoteParent(t)
	res, err := m.RunOnce(ctx, "misbehave", fault("trace"), host.RunOptions{})
	require.NoError(t, err)
	attempts := spansNamed(rec, host.SpanAttempt)
	require.Len(t, attempts, 1)
	assert.Equal(t, parent.TraceID(), attempts[0].SpanContext().TraceID())
	assert.Nil(t, attr(attempts[0], "wpm.pool"))
	starts := spansNamed(rec, host.SpanOneShotStart)
	require.Len(t, starts, 1)
	assert.Equal(t, attempts[0].SpanContext().SpanID(), starts[0].Parent().SpanID())
	assert.Equal(t, host.TraceParent(attempts[0].SpanContext()), traceParentOf(t, res.Output))
}

// Without a tracer provider nothing is traced and the plugin sees no
// traceparent, even under a caller's span.
func TestTracing_offByDefault(t *testing.T) {
	m := newManager(t, misbehavePool("plain", 1))
	ctx, _ := remoteParent(t)
	res, err := m.Submit(ctx, "plain", fault("trace"))
	require.NoError(t, err)
	assert.Empty(t, traceParentOf(t, res.Output))
}

// A pool that pipelines (prefetch) sends the traceparent in its task
// frames (pipelining version 3).
func TestTracing_pipelined(t *testing.T) {
	pc := misbehavePool("piped", 1)
	pc.Prefetch = 4
	m, rec := newTracedManager(t, pc)
	ctx, _ := remoteParent(t)
	for range 3 {
		res, err := m.Submit(ctx, "piped", fault("trace"))
		require.NoError(t, err)
		attempts := spansNamed(rec, host.SpanAttempt)
		assert.Equal(t, host.TraceParent(attempts[len(attempts)-1].SpanContext()), traceParentOf(t, res.Output))
	}
}

// A gRPC plugin gets the attempt's traceparent as metadata of its Run
// call; the Python SDK's wpm_plugin.traceparent() reads it.
func TestTracing_grpcPlugin(t *testing.T) {
	testkit.RequirePython(t)
	m, rec := newTracedManager(t, pyfaultsPool("py", 1))
	ctx, _ := remoteParent(t)
	res, err := m.Submit(ctx, "py", pyfaults("trace"))
	require.NoError(t, err)
	attempts := spansNamed(rec, host.SpanAttempt)
	require.Len(t, attempts, 1)
	assert.Equal(t, host.TraceParent(attempts[0].SpanContext()), traceParentOf(t, res.Output))
}

// Without tracing a gRPC plugin gets no traceparent.
func TestTracing_grpcPluginOff(t *testing.T) {
	testkit.RequirePython(t)
	m := newManager(t, pyfaultsPool("py", 1))
	ctx, _ := remoteParent(t)
	res, err := m.Submit(ctx, "py", pyfaults("trace"))
	require.NoError(t, err)
	assert.Empty(t, traceParentOf(t, res.Output))
}

// What tracing costs a trivial task when on: BenchmarkTrivial's
// callers=1/via=submit with a tracer provider whose spans are recorded
// (sampled) and dropped, and with a caller's span or without.
func BenchmarkTraced(b *testing.B) {
	requireNoChildrenAtEnd(b)
	tp := sdktrace.NewTracerProvider() // records sampled spans, exports none
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.Pools = []host.PoolConfig{{Name: "T", Plugin: "cpuload", Workers: 1, Concurrency: 64, QueueLimit: 1024, MemoryLimitMB: 4048, TaskTimeout: 5 * time.Minute}}
	m, err := host.New(cfg, host.WithTracerProvider(tp))
	require.NoError(b, err)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(b, m.Shutdown(ctx))
	})
	require.Eventually(b, func() bool {
		s, err := m.Pool("T")
		return err == nil && s.Ready == 1
	}, 10*time.Second, time.Millisecond)
	caller, span := tp.Tracer("bench").Start(context.Background(), "caller")
	defer span.End()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"root", context.Background()}, {"under-caller", caller}} {
		b.Run(c.name, func(b *testing.B) {
			benchCalls(b, 1, func(_ context.Context, in []byte) ([]byte, error) {
				res, err := m.Submit(c.ctx, "T", in)
				return res.Output, err
			}, trivialInput)
		})
	}
}
