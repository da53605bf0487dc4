package main

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func poolNames(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url + "/v1/pools")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Pools []struct {
			Name string `json:"name"`
			Size int    `json:"size"`
		} `json:"pools"`
	}
	require.NoError(t, jsonDecode(resp, &body))
	var names []string
	for _, p := range body.Pools {
		names = append(names, p.Name)
	}
	return names
}

// SIGHUP and POST /v1/admin/reload re-read the config file while a task
// runs: pools are added and removed, the task finishes, and a bad file is
// refused with the running config kept.
func TestServe_reload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "wpm.yaml")
	require.NoError(t, os.WriteFile(file, []byte(misbehaveConfig), 0o600))
	s := startServeConfig(t, file)

	running := make(chan int, 1)
	go func() {
		status, _ := postJSON(t, s.url+"/v1/pools/M/tasks", `{"fault": "sleep", "ms": 1500}`)
		running <- status
	}()
	require.Eventually(t, func() bool { return poolRunning(t, s.url, "M") == 1 }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, os.WriteFile(file, []byte(`
shutdown: {grace: 20s}
pools:
  - {name: M, plugin: misbehave, workers: 2, queueLimit: 8}
  - {name: N, plugin: cpuload, workers: 1}
`), 0o600))
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return len(poolNames(t, s.url)) == 2 }, 10*time.Second, 10*time.Millisecond)
	status, body := postJSON(t, s.url+"/v1/pools/N/tasks", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, status, body)

	require.NoError(t, os.WriteFile(file, []byte(misbehaveConfig), 0o600))
	status, body = postJSON(t, s.url+"/v1/admin/reload", ``)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, []any{"M"}, body["pools"])
	status, _ = postJSON(t, s.url+"/v1/pools/N/tasks", `{"duration": 1}`)
	assert.Equal(t, http.StatusNotFound, status, "a removed pool is gone")

	require.NoError(t, os.WriteFile(file, []byte("pools:\n  - {name: M, plugin: misbehave, workers: 0}\n"), 0o600))
	status, body = postJSON(t, s.url+"/v1/admin/reload", ``)
	require.Equal(t, http.StatusBadRequest, status, body)
	e := body["error"].(map[string]any)
	assert.Equal(t, "invalid_config", e["code"])
	assert.Contains(t, e["message"], "pools[0].workers")
	assert.Equal(t, []string{"M"}, poolNames(t, s.url), "a refused config changes nothing")

	assert.Equal(t, http.StatusOK, <-running, "the task that ran across every reload succeeded")
}
