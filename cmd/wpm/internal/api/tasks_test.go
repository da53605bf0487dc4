package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// submitAsync posts body to path with headers and returns the 202's id.
func (s *server) submitAsync(t *testing.T, path, body string, headers ...string) string {
	t.Helper()
	a := s.sendWith(t, http.MethodPost, path, body, headers...)
	require.Equal(t, http.StatusAccepted, a.Status, a.Raw)
	assert.Equal(t, true, a.Body["ok"])
	assert.Equal(t, "queued", a.Body["state"])
	id, _ := a.Body["id"].(string)
	require.Len(t, id, 16, a.Raw)
	assert.Equal(t, "/v1/tasks/"+id, a.Header.Get("Location"))
	return id
}

// sendWith makes a request with extra headers (name, value, ...), checks
// the answer against the OpenAPI document and decodes it.
func (s *server) sendWith(t *testing.T, method, path, body string, headers ...string) answer {
	t.Helper()
	a := s.sendHeaders(t, method, path, strings.NewReader(body), headers...)
	require.NoError(t, json.Unmarshal([]byte(a.Raw), &a.Body), a.Raw)
	return a
}

// 202 at once, then the record with the result, read by polling with wait.
func TestAPI_async_submitThenWait(t *testing.T) {
	s := newServer(t)
	id := s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 5}`)
	a := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=15s", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "succeeded", a.Body["state"], a.Raw)
	assert.Equal(t, "CPU", a.Body["pool"])
	assert.EqualValues(t, 1, a.Body["attempts"])
	result, _ := a.Body["result"].(map[string]any)
	assert.EqualValues(t, 5, result["requestedMs"], a.Raw)

	// Prefer: respond-async, the seed endpoints and one-shots too.
	ids := []string{
		s.submitAsync(t, "/v1/pools/CPU/tasks", `{"duration": 1}`, "Prefer", "respond-async"),
		s.submitAsync(t, "/example/pool?async=true", `{"poolName": "CPU", "workerTask": {"duration": 1}}`),
		s.submitAsync(t, "/example/oneShot?async=true", `{"workerScript": "cpuload", "workerTask": {"duration": 1}}`),
		s.submitAsync(t, "/v1/plugins/cpuload/run?async=true&timeout=5s", `{"duration": 1}`),
	}
	for _, id := range ids {
		a := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=15s", nil)
		assert.Equal(t, "succeeded", a.Body["state"], a.Raw)
	}
	a = s.do(t, http.MethodGet, "/v1/tasks?state=succeeded&pool=CPU", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Len(t, a.Body["tasks"], 3)
	a = s.sendWith(t, http.MethodPost, "/v1/pools/CPU/tasks", `{"duration": 1}`, "Prefer", "respond-async, wait=5")
	assert.Equal(t, "respond-async", a.Header.Get("Preference-Applied"))
}

// Bad input judged without running still answers at once with its 4xx,
// and the synchronous path answers as before.
func TestAPI_async_refusedAtOnce(t *testing.T) {
	s := newServer(t)
	requireError(t, s.post(t, "/v1/pools/nope/tasks?async=true", `{}`), http.StatusNotFound, "unknown_pool")
	requireError(t, s.post(t, "/v1/plugins/nope/run?async=true", `{}`), http.StatusNotFound, "unknown_plugin")
	requireError(t, s.post(t, "/v1/pools/CPU/tasks?async=yes", `{}`), http.StatusBadRequest, "bad_request")
	requireError(t, s.post(t, "/v1/pools/CPU/tasks?async=true", `{"dur`), http.StatusBadRequest, "bad_request")
	requireError(t, s.post(t, "/v1/pools/CPU/tasks?asynch=true", `{}`), http.StatusBadRequest, "bad_request")
	requireError(t, s.do(t, http.MethodGet, "/v1/tasks/0123456789abcdef", nil), http.StatusNotFound, "unknown_task")
	requireError(t, s.do(t, http.MethodGet, "/v1/tasks/x?wait=forever", nil), http.StatusBadRequest, "bad_request")
	requireError(t, s.do(t, http.MethodGet, "/v1/tasks?limit=0", nil), http.StatusBadRequest, "bad_request")

	a := s.post(t, "/v1/pools/CPU/tasks?async=false", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.NotNil(t, a.Body["result"])
}

// DELETE cancels a running task (its worker is replaced) and a queued one
// (it never runs); an ended task is 409 task_ended.
func TestAPI_async_cancel(t *testing.T) {
	s := newServer(t)
	running := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "hang"}`)
	queued := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "echo"}`)
	waitRunning(t, s, running)

	a := s.do(t, http.MethodDelete, "/v1/tasks/"+queued, nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "canceled", a.Body["state"])
	a = s.do(t, http.MethodDelete, "/v1/tasks/"+running, nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "canceled", a.Body["state"])
	requireError(t, s.do(t, http.MethodDelete, "/v1/tasks/"+running, nil), http.StatusConflict, "task_ended")

	next := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "echo"}`)
	a = s.do(t, http.MethodGet, "/v1/tasks/"+next+"?wait=15s", nil)
	assert.Equal(t, "succeeded", a.Body["state"], a.Raw)
	a = s.do(t, http.MethodGet, "/v1/tasks/"+queued, nil)
	assert.Equal(t, "canceled", a.Body["state"])
	assert.EqualValues(t, 0, a.Body["attempts"], "a canceled queued task never ran")
}

// An Idempotency-Key returns the first task.
func TestAPI_async_idempotencyKey(t *testing.T) {
	s := newServer(t)
	first := s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 1}`, "Idempotency-Key", "k1")
	a := s.sendWith(t, http.MethodPost, "/v1/pools/CPU/tasks?async=true", `{"duration": 1}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, a.Status, a.Raw)
	assert.Equal(t, first, a.Body["id"])

	// The key is bound to its request: another pool, or another body, is
	// 422 naming the key, and makes no task.
	for path, body := range map[string]string{
		"/v1/pools/M/tasks?async=true":   `{"duration": 1}`,
		"/v1/pools/CPU/tasks?async=true": `{"duration": 2}`,
	} {
		a = s.sendWith(t, http.MethodPost, path, body, "Idempotency-Key", "k1")
		requireError(t, a, http.StatusUnprocessableEntity, "idempotency_key_reused")
		assert.Contains(t, a.Raw, `\"k1\"`, "the message names the key")
	}
	a = s.do(t, http.MethodGet, "/v1/tasks?limit=10", nil)
	assert.Len(t, a.Body["tasks"], 1, a.Raw)
}

// waitRunning waits until the task's record says running.
func waitRunning(t *testing.T, s *server, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		// Each wait returns at the task's end or after 50 ms: a bounded
		// long-poll, not a sleep.
		a := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=50ms", nil)
		if a.Body["state"] == "running" {
			return
		}
	}
	t.Fatalf("task %s never ran", id)
}

// A callbackUrl is refused unless async.callbackAllow allows it, and
// needs an asynchronous submit.
func TestAPI_async_callbackRefused(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/CPU/tasks?async=true&callbackUrl=http://127.0.0.1:1/x", `{"duration": 1}`)
	requireError(t, a, http.StatusBadRequest, "bad_request")
	assert.Contains(t, a.Raw, "async.callbackAllow")
	a = s.post(t, "/v1/pools/CPU/tasks?callbackUrl=http://127.0.0.1:1/x", `{"duration": 1}`)
	requireError(t, a, http.StatusBadRequest, "bad_request")
	assert.Contains(t, a.Raw, "needs async=true")
}

// With the embedded NATS server the cluster is this host alone.
func TestAPI_clusterIsThisHost(t *testing.T) {
	s := newServer(t)
	a := s.do(t, "GET", "/v1/cluster", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	hosts, _ := a.Body["hosts"].([]any)
	require.Len(t, hosts, 1, a.Raw)
	h, _ := hosts[0].(map[string]any)
	assert.Equal(t, true, h["self"])
	var pools []string
	for _, p := range h["pools"].([]any) {
		pools = append(pools, p.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"CPU", "M", "MEM"}, pools)
	requireError(t, s.do(t, "GET", "/v1/cluster?x=1", nil), http.StatusBadRequest, "bad_request")
}

// A wait too short for even one read of the record still answers with the
// record, or 404 for an unknown task: the wait bounds the waiting, not the
// read (it was 500 internal).
func TestAPI_async_tinyWait(t *testing.T) {
	s := newServer(t)
	running := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "sleep", "ms": 3000}`)
	ended := s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 1}`)
	a := s.do(t, http.MethodGet, "/v1/tasks/"+ended+"?wait=15s", nil)
	require.Equal(t, "succeeded", a.Body["state"], a.Raw)
	for _, wait := range []string{"1ns", "1µs", "10us", "50µs", "200µs", "1ms"} {
		requireError(t, s.do(t, http.MethodGet, "/v1/tasks/0123456789abcdef?wait="+wait, nil), http.StatusNotFound, "unknown_task")
		for _, id := range []string{running, ended} {
			a := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait="+wait, nil)
			require.Equal(t, http.StatusOK, a.Status, "wait=%s: %s", wait, a.Raw)
			assert.Equal(t, id, a.Body["id"])
		}
	}
}

// An async body of <, > and & under http.bodyLimit is taken, and its
// result comes back as it was: it is measured as sent, not escaped six
// times larger.
func TestAPI_async_bodyOfAngleBrackets(t *testing.T) {
	s := newServer(t)
	body := `{"fault": "rawecho", "lines": ["` + strings.Repeat("<&>", (bodyLimit-100)/3) + `"]}`
	id := s.submitAsync(t, "/v1/pools/M/tasks?async=true", body)
	a := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=15s", nil)
	require.Equal(t, "succeeded", a.Body["state"], a.Raw[:min(len(a.Raw), 300)])
	got, err := json.Marshal(a.Body["result"])
	require.NoError(t, err)
	assert.JSONEq(t, body, string(got))
}
