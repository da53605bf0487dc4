package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/host"
)

// nodeScripts is host's folder of Node.js test scripts.
var nodeScripts = func() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "..", "..", "host", "testdata", "node")
}()

// withScripts adds pool JS, running host's test worker script, and makes
// its folder the one-shot scripts folder.
func withScripts() serverOption {
	return func(c *host.Config, _ *api.Options) {
		c.ScriptsDir = nodeScripts
		c.Pools = append(c.Pools, host.PoolConfig{Name: "JS", Script: filepath.Join(nodeScripts, "worker.js"), Workers: 1, Concurrency: 2})
	}
}

func TestAPI_nodeScripts_answerAsTheNodeProject(t *testing.T) {
	s := newServer(t, withScripts())

	a := s.post(t, "/example/pool", `{"poolName": "JS", "workerTask": {"duration": 0}}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "workDone", a.Body["type"])
	assert.Equal(t, map[string]any{"data": map[string]any{"duration": 0.0}, "id": a.Body["id"], "type": "work", "poolName": "JS"}, a.Body["data"],
		"the reply's data is what the script answered: the work message it was sent")

	a = s.post(t, "/example/pool", `{"poolName": "JS", "workerTask": {"mode": "fail"}}`)
	require.Equal(t, http.StatusInternalServerError, a.Status, a.Raw)
	assert.Equal(t, map[string]any{"ok": false, "id": a.Body["id"], "type": "error", "data": "the task failed on purpose"}, a.Body)

	a = s.post(t, "/v1/pools/JS/tasks", `{"mode": "sleep", "ms": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Contains(t, a.Body["result"], "pid", "the native API puts the reply's data in result")

	a = s.post(t, "/example/oneShot", `{"workerScript": "./workers/worker.js", "workerTask": {"n": 3}, "workerMemoryLimit": 256}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, map[string]any{"n": 3.0}, a.Body["data"].(map[string]any)["data"])

	a = s.post(t, "/example/oneShot", `{"workerScript": "worker.js", "workerTask": {"mode": "throw"}}`)
	require.Equal(t, http.StatusInternalServerError, a.Status, a.Raw)
	assert.Equal(t, "thrown on purpose", a.Body["data"])

	a = s.do(t, http.MethodGet, "/v1/plugins", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Regexp(t, `"name":"worker.js"[^}]*"protocol":"node"`, a.Raw)
}

// A script pool and a script one-shot take asynchronous tasks too, with
// the script's error kept in the record.
func TestAPI_nodeScripts_async(t *testing.T) {
	s := newServer(t, withScripts())
	ok := s.submitAsync(t, "/example/pool?async=true", `{"poolName": "JS", "workerTask": {"mode": "sleep", "ms": 1}}`)
	failed := s.submitAsync(t, "/v1/pools/JS/tasks?async=true", `{"mode": "fail"}`)
	oneShot := s.submitAsync(t, "/v1/plugins/worker.js/run?async=true&timeout=10s", `{"n": 4}`)

	a := s.do(t, http.MethodGet, "/v1/tasks/"+ok+"?wait=15s", nil)
	assert.Equal(t, "succeeded", a.Body["state"], a.Raw)
	a = s.do(t, http.MethodGet, "/v1/tasks/"+failed+"?wait=15s", nil)
	assert.Equal(t, "failed", a.Body["state"], a.Raw)
	assert.Contains(t, a.Raw, "the task failed on purpose")
	a = s.do(t, http.MethodGet, "/v1/tasks/"+oneShot+"?wait=15s", nil)
	assert.Equal(t, "succeeded", a.Body["state"], a.Raw)
	assert.Contains(t, a.Raw, `"n":4`)
}
