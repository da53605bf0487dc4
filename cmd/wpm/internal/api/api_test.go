package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAPI_examplePool_ok(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/example/pool", `{"poolName": "CPU", "workerTask": {"duration": 5}}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, true, a.Body["ok"])
	assert.Equal(t, "workDone", a.Body["type"])
	assert.NotEmpty(t, a.Body["id"])
	data := a.Body["data"].(map[string]any)
	assert.EqualValues(t, 5, data["requestedMs"])
	assert.NotEmpty(t, a.Header.Get("X-Request-Id"))
}

func TestAPI_exampleOneShot_ok(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/example/oneShot", `{"workerScript": "./workers/memusage", "workerTask": {"mb": 8, "duration": 5}, "workerMemoryLimit": 256}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "workDone", a.Body["type"])
	assert.EqualValues(t, 8, a.Body["data"].(map[string]any)["mb"])
}

func TestAPI_native_ok(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/CPU/tasks", `{"duration": 2}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	for _, k := range []string{"ok", "id", "pool", "workerPid", "durationMs", "result"} {
		assert.Contains(t, a.Body, k)
	}
	assert.Equal(t, "CPU", a.Body["pool"])
	assert.Equal(t, a.Body["workerPid"], a.Body["result"].(map[string]any)["pid"])

	a = s.post(t, "/v1/plugins/cpuload/run?timeout=5s&memoryLimitMB=128", `{"duration": 2}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "cpuload", a.Body["plugin"])
	assert.NotContains(t, a.Body, "pool")
}

func TestAPI_status(t *testing.T) {
	s := newServer(t)
	a := s.do(t, http.MethodGet, "/v1/pools", nil)
	require.Equal(t, http.StatusOK, a.Status)
	pools := a.Body["pools"].([]any)
	require.Len(t, pools, 3)

	a = s.do(t, http.MethodGet, "/v1/pools/CPU", nil)
	require.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, "CPU", a.Body["name"])
	assert.Equal(t, "cpuload", a.Body["plugin"])
	assert.Contains(t, a.Body, "queueDepth")
	w := a.Body["workers"].([]any)[0].(map[string]any)
	for _, k := range []string{"pid", "state", "tasksDone", "rssBytes", "restarts"} {
		assert.Contains(t, w, k)
	}
	assert.Contains(t, []string{"starting", "idle", "busy", "stopping"}, w["state"])
	assert.Greater(t, w["rssBytes"].(float64), float64(1<<20), "a live worker has resident memory")

	a = s.do(t, http.MethodGet, "/v1/plugins", nil)
	require.Equal(t, http.StatusOK, a.Status)
	names := map[string]bool{}
	for _, p := range a.Body["plugins"].([]any) {
		names[p.(map[string]any)["name"].(string)] = true
	}
	assert.True(t, names["cpuload"] && names["memusage"], a.Raw)

	a = s.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
}

// One test per row of SPEC §3's error table.

func TestAPI_error_badRequest(t *testing.T) {
	s := newServer(t)
	for name, c := range map[string]struct{ path, body, want string }{
		"malformed JSON":      {"/example/pool", `{"poolName": "CPU", `, "not a valid JSON"},
		"not an object":       {"/example/pool", `[1,2]`, "JSON object"},
		"wrong type":          {"/example/pool", `{"poolName": 7, "workerTask": {}}`, "poolName"},
		"missing poolName":    {"/example/pool", `{"workerTask": {}}`, "poolName"},
		"missing workerTask":  {"/example/pool", `{"poolName": "CPU"}`, "workerTask"},
		"unknown field":       {"/example/pool", `{"poolname": "CPU", "workerTask": {}}`, "poolname"},
		"empty body":          {"/example/pool", ``, "empty"},
		"two values":          {"/example/pool", `{"poolName":"CPU","workerTask":{}} {}`, "more than one"},
		"oneShot memory type": {"/example/oneShot", `{"workerScript": "cpuload", "workerTask": {}, "workerMemoryLimit": "lots"}`, "workerMemoryLimit"},
		"oneShot memory <1":   {"/example/oneShot", `{"workerScript": "cpuload", "workerTask": {}, "workerMemoryLimit": 0}`, "workerMemoryLimit"},
		"oneShot missing":     {"/example/oneShot", `{"workerTask": {}}`, "workerScript"},
		"native not JSON":     {"/v1/pools/CPU/tasks", `duration=5`, "not valid JSON"},
		"native empty":        {"/v1/pools/CPU/tasks", ` `, "empty"},
		"bad timeout param":   {"/v1/plugins/cpuload/run?timeout=soon", `{}`, "timeout"},
		"bad memory param":    {"/v1/plugins/cpuload/run?memoryLimitMB=-5", `{}`, "memoryLimitMB"},
	} {
		t.Run(name, func(t *testing.T) {
			a := s.post(t, c.path, c.body)
			requireError(t, a, http.StatusBadRequest, "bad_request")
			assert.Contains(t, a.Raw, c.want)
		})
	}
	s.requireStillServes(t)
}

func TestAPI_error_invalidTask(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/example/pool", `{"poolName": "CPU", "workerTask": {"duration": -3}}`)
	requireError(t, a, http.StatusBadRequest, "invalid_task")
	assert.NotEmpty(t, a.Body["id"], "a task was made, so its id is given")
	a = s.post(t, "/v1/pools/MEM/tasks", `{"mb": "lots"}`)
	requireError(t, a, http.StatusBadRequest, "invalid_task")
	a = s.post(t, "/v1/plugins/cpuload/run", `{"duration": 99999999999}`)
	requireError(t, a, http.StatusBadRequest, "invalid_task")
	s.requireStillServes(t)
}

func TestAPI_error_unknownPool(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/v1/pools/GPU/tasks"} {
		a := s.post(t, path, `{}`)
		requireError(t, a, http.StatusNotFound, "unknown_pool")
		assert.Contains(t, a.Raw, "CPU, M, MEM", "the message lists the known pools")
	}
	a := s.post(t, "/example/pool", `{"poolName": "GPU", "workerTask": {}}`)
	requireError(t, a, http.StatusNotFound, "unknown_pool")
	a = s.do(t, http.MethodGet, "/v1/pools/GPU", nil)
	requireError(t, a, http.StatusNotFound, "unknown_pool")
	s.requireStillServes(t)
}

func TestAPI_error_unknownPlugin(t *testing.T) {
	s := newServer(t)
	for _, script := range []string{"nope", "../cpuload", "/bin/sh", "../../../../bin/sh", "/usr/bin/true", "cpuload/../../sh"} {
		a := s.post(t, "/example/oneShot", `{"workerScript": "`+script+`", "workerTask": {}}`)
		requireError(t, a, http.StatusNotFound, "unknown_plugin")
	}
	a := s.post(t, "/v1/plugins/nope/run", `{}`)
	requireError(t, a, http.StatusNotFound, "unknown_plugin")
	assert.Contains(t, a.Raw, "cpuload", "the message lists the known plugins")
	a = s.post(t, "/v1/plugins/..%2Fcpuload/run", `{}`)
	requireError(t, a, http.StatusNotFound, "unknown_plugin")
	s.requireStillServes(t)
}

func TestAPI_error_bodyTooLarge(t *testing.T) {
	s := newServer(t)
	a := s.do(t, http.MethodPost, "/v1/pools/M/tasks", bigBody(bodyLimit))
	requireError(t, a, http.StatusRequestEntityTooLarge, "body_too_large")
	a = s.do(t, http.MethodPost, "/example/pool", bigBody(bodyLimit*4))
	requireError(t, a, http.StatusRequestEntityTooLarge, "body_too_large")
	// Just under the limit is fine.
	a = s.do(t, http.MethodPost, "/v1/pools/M/tasks", bigBody(bodyLimit-100))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	s.requireStillServes(t)
}

func TestAPI_error_queueFull(t *testing.T) {
	s := newServer(t)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	wg.Go(func() { codes[0] = s.post(t, "/v1/pools/M/tasks", `{"fault": "sleep", "ms": 500}`).Status })
	require.Eventually(t, func() bool { p, _ := s.mgr.Pool("M"); return p.Running == 1 }, 5*time.Second, time.Millisecond)
	wg.Go(func() { codes[1] = s.post(t, "/v1/pools/M/tasks", `{"fault": "echo"}`).Status })
	require.Eventually(t, func() bool { p, _ := s.mgr.Pool("M"); return p.QueueDepth == 1 }, 5*time.Second, time.Millisecond)

	a := s.post(t, "/v1/pools/M/tasks", `{"fault": "echo"}`)
	requireError(t, a, http.StatusTooManyRequests, "queue_full")
	assert.NotEmpty(t, a.Header.Get("Retry-After"))
	wg.Wait()
	assert.Equal(t, []int{200, 200}, codes, "the running and the queued task both succeed")
	s.requireStillServes(t)
}

func TestAPI_error_oneShotCapacity(t *testing.T) {
	s := newServer(t)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { s.post(t, "/v1/plugins/misbehave/run", `{"fault": "sleep", "ms": 600}`) })
	}
	require.Eventually(t, func() bool { return len(childrenNotIn(s)) == 2 }, 5*time.Second, time.Millisecond)
	a := s.post(t, "/v1/plugins/misbehave/run", `{"fault": "echo"}`)
	requireError(t, a, http.StatusTooManyRequests, "queue_full")
	assert.Contains(t, a.Raw, "maxConcurrent")
	wg.Wait()
	s.requireStillServes(t)
}

func TestAPI_error_taskFailed(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/M/tasks", `{"fault": "fail"}`)
	requireError(t, a, http.StatusInternalServerError, "task_failed")
	assert.Contains(t, a.Raw, "asked to fail")
	s.requireStillServes(t)
}

func TestAPI_error_pluginOutputNotJSON(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{"/v1/pools/M/tasks", "/v1/plugins/misbehave/run"} {
		a := s.post(t, path, `{"fault": "badjson"}`)
		requireError(t, a, http.StatusInternalServerError, "task_failed")
		assert.Contains(t, a.Raw, "not valid JSON")
		assert.NotEmpty(t, a.Body["id"])
	}
	a := s.post(t, "/example/pool", `{"poolName": "M", "workerTask": {"fault": "badjson"}}`)
	requireError(t, a, http.StatusInternalServerError, "task_failed")
	s.requireStillServes(t)
}

func TestAPI_error_workerCrashed(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/M/tasks", `{"fault": "crash"}`)
	requireError(t, a, http.StatusBadGateway, "worker_crashed")
	assert.Contains(t, a.Body["error"].(map[string]any)["detail"], "panic")
	a = s.post(t, "/v1/plugins/misbehave/run", `{"fault": "sigkill"}`)
	requireError(t, a, http.StatusBadGateway, "worker_crashed")
	s.requireStillServes(t)
}

func TestAPI_error_taskTimeout(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/M/tasks", `{"fault": "hang"}`)
	requireError(t, a, http.StatusGatewayTimeout, "task_timeout")
	a = s.post(t, "/v1/plugins/misbehave/run?timeout=200ms", `{"fault": "busyhang"}`)
	requireError(t, a, http.StatusGatewayTimeout, "task_timeout")
	s.requireStillServes(t)
}

func TestAPI_error_shuttingDown(t *testing.T) {
	s := newServer(t)
	s.api.StartShutdown()
	a := s.post(t, "/v1/pools/CPU/tasks", `{"duration": 1}`)
	requireError(t, a, http.StatusServiceUnavailable, "shutting_down")
	a = s.do(t, http.MethodGet, "/readyz", nil)
	requireError(t, a, http.StatusServiceUnavailable, "shutting_down")
	a = s.do(t, http.MethodGet, "/healthz", nil)
	assert.Equal(t, http.StatusOK, a.Status, "healthz answers while the process serves")
}

func TestAPI_error_routes(t *testing.T) {
	s := newServer(t)
	a := s.do(t, http.MethodGet, "/nope", nil)
	requireError(t, a, http.StatusNotFound, "not_found")
	a = s.do(t, http.MethodGet, "/example/pool", nil)
	requireError(t, a, http.StatusMethodNotAllowed, "method_not_allowed")
	s.requireStillServes(t)
}

// childrenNotIn returns the test's child processes that are not pool workers.
func childrenNotIn(s *server) []int {
	pool := map[int]bool{}
	for _, p := range s.mgr.Pools() {
		for _, w := range p.Workers {
			pool[w.PID] = true
		}
	}
	var out []int
	for _, pid := range childPIDs() {
		if !pool[pid] {
			out = append(out, pid)
		}
	}
	return out
}

var _ = strings.Contains
