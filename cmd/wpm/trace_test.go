package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// Tracing (issue 21) end to end: wpm serve exports to an OTLP/HTTP
// receiver in the test, and a request's W3C traceparent is continued
// through the HTTP span, the queue and the task's attempt, to the plugin.

// The incoming trace: what a caller's traceparent names.
const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
	traceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// postTraced posts body to url with the caller's traceparent and returns
// the status and the decoded answer.
func postTraced(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(raw, &v), "not JSON: %s", raw)
	return resp.StatusCode, v
}

// waitSpan waits for the span of the caller's trace named name (on
// service, when not empty) and returns it.
func waitSpan(t *testing.T, rec *testkit.OTLPReceiver, service, name string) testkit.Span {
	t.Helper()
	s, ok := rec.WaitSpan(15*time.Second, func(s testkit.Span) bool {
		return s.TraceID == callerTrace && s.Name == name && (service == "" || s.Service == service)
	})
	require.True(t, ok, "no span %q of service %q in the caller's trace; received: %+v", name, service, rec.Spans())
	return s
}

// pluginTraceparent is the traceparent the misbehave plugin's "trace"
// fault answered, read from a task's result.
func pluginTraceparent(t *testing.T, result any) string {
	t.Helper()
	m, ok := result.(map[string]any)
	require.True(t, ok, "result %v", result)
	tp, _ := m["traceparent"].(string)
	return tp
}

// A synchronous pool task: the HTTP span continues the caller's trace,
// the attempt span is its child, and the plugin's traceparent names the
// attempt; the request's and the task's log lines carry the trace id.
func TestTracing_syncTask(t *testing.T) {
	rec := testkit.NewOTLPReceiver(t)
	s := startServeConfig(t, misbehaveConfig, "WPM_TRACING_ENDPOINT="+rec.URL, "WPM_LOG_LEVEL=debug")
	status, answer := postTraced(t, s.url+"/v1/pools/M/tasks", `{"fault": "trace"}`)
	require.Equal(t, http.StatusOK, status, "%v", answer)

	httpSpan := waitSpan(t, rec, "wpm", "POST /v1/pools/:pool/tasks")
	assert.Equal(t, callerSpan, httpSpan.ParentSpanID, "the HTTP span continues the caller's")
	assert.Equal(t, "SPAN_KIND_SERVER", httpSpan.Kind)
	assert.Equal(t, "200", httpSpan.Attrs["http.response.status_code"])
	attempt := waitSpan(t, rec, "wpm", "wpm.attempt")
	assert.Equal(t, httpSpan.SpanID, attempt.ParentSpanID)
	assert.Equal(t, "M", attempt.Attrs["wpm.pool"])
	assert.Equal(t, "misbehave", attempt.Attrs["wpm.plugin"])
	assert.Equal(t, answer["id"], attempt.Attrs["wpm.task.id"])
	assert.Equal(t, "ok", attempt.Attrs["wpm.code"])
	assert.NotEmpty(t, attempt.Attrs["wpm.worker.pid"])
	assert.Equal(t, "00-"+callerTrace+"-"+attempt.SpanID+"-01", pluginTraceparent(t, answer["result"]))

	assert.Eventually(t, func() bool {
		logs := s.logs.String()
		return strings.Contains(logs, "task done") && strings.Count(logs, "trace="+callerTrace) >= 2
	}, 5*time.Second, 50*time.Millisecond, "the request and task log lines name the trace:\n%s", s.logs.String())
}

// An asynchronous task: its record keeps the trace id, the submit is a
// producer span under the HTTP span, and the attempt is the submit's
// child.
func TestTracing_asyncTask(t *testing.T) {
	rec := testkit.NewOTLPReceiver(t)
	s := startServeConfig(t, misbehaveConfig, "WPM_TRACING_ENDPOINT="+rec.URL)
	status, answer := postTraced(t, s.url+"/v1/pools/M/tasks?async=true", `{"fault": "trace"}`)
	require.Equal(t, http.StatusAccepted, status, "%v", answer)
	id := answer["id"].(string)

	var record map[string]any
	require.Eventually(t, func() bool {
		record = nil
		getJSON(t, s.url+"/v1/tasks/"+id, &record)
		return record["state"] == "succeeded"
	}, 15*time.Second, 50*time.Millisecond, "the task never succeeded: %v", record)
	assert.Equal(t, callerTrace, record["traceId"])

	httpSpan := waitSpan(t, rec, "", "POST /v1/pools/:pool/tasks")
	submit := waitSpan(t, rec, "", "wpm.submit")
	assert.Equal(t, httpSpan.SpanID, submit.ParentSpanID)
	assert.Equal(t, "SPAN_KIND_PRODUCER", submit.Kind)
	assert.Equal(t, id, submit.Attrs["wpm.task.id"])
	attempt := waitSpan(t, rec, "", "wpm.attempt")
	assert.Equal(t, submit.SpanID, attempt.ParentSpanID, "the attempt continues the trace context of the task's message")
	assert.Equal(t, id, attempt.Attrs["wpm.task.id"])
	assert.Equal(t, "00-"+callerTrace+"-"+attempt.SpanID+"-01", pluginTraceparent(t, record["result"]))
}

// A forwarded task: a host of role api forwards the synchronous task
// through NATS to a worker host; the worker's attempt span is in the api
// host's trace, under the forward and the submit.
func TestTracing_forwardedTask(t *testing.T) {
	rec := testkit.NewOTLPReceiver(t)
	url := startNATS(t)
	worker := clusterHost(t, url, "w", "worker", hostBConfig, "WPM_TRACING_ENDPOINT="+rec.URL, "WPM_TRACING_SERVICENAME=wpm-worker")
	api := clusterHost(t, url, "a", "api", hostBConfig, "WPM_TRACING_ENDPOINT="+rec.URL, "WPM_TRACING_SERVICENAME=wpm-api")
	waitCluster(t, api, "a", "w")
	_ = worker

	status, answer := postTraced(t, api.url+"/v1/pools/S/tasks", `{"fault": "trace"}`)
	require.Equal(t, http.StatusOK, status, "%v", answer)

	httpSpan := waitSpan(t, rec, "wpm-api", "POST /v1/pools/:pool/tasks")
	assert.Equal(t, callerSpan, httpSpan.ParentSpanID)
	forward := waitSpan(t, rec, "wpm-api", "wpm.forward")
	assert.Equal(t, httpSpan.SpanID, forward.ParentSpanID)
	assert.Equal(t, "SPAN_KIND_CLIENT", forward.Kind)
	assert.Equal(t, "w", forward.Attrs["wpm.host"])
	submit := waitSpan(t, rec, "wpm-api", "wpm.submit")
	assert.Equal(t, forward.SpanID, submit.ParentSpanID)
	attempt := waitSpan(t, rec, "wpm-worker", "wpm.attempt")
	assert.Equal(t, submit.SpanID, attempt.ParentSpanID, "the worker host continues the api host's trace")
	assert.Equal(t, "w", attempt.Instance, "service.instance.id names the host")
	assert.Equal(t, "a", forward.Instance)
	assert.Equal(t, "S", attempt.Attrs["wpm.pool"])
	assert.Equal(t, "00-"+callerTrace+"-"+attempt.SpanID+"-01", pluginTraceparent(t, answer["result"]))
}
