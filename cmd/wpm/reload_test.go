package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
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

// On a host of role worker, whose HTTP serves only the probes, a pool that
// SIGHUP adds takes the tasks submitted for it through another host; once
// a reload removes the pool, its runner stops.
func TestCluster_workerReloadMatchesRunners(t *testing.T) {
	url := startNATS(t)
	file := configFile(t, hostBConfig)
	w := clusterHost(t, url, "w", "worker", file)
	c := clusterHost(t, url, "c", "api", "pools: []")
	waitCluster(t, c, "c", "w")

	require.NoError(t, os.WriteFile(file, []byte(hostBConfig+"  - {name: N, plugin: misbehave, workers: 1, queueLimit: 8}\n"), 0o600))
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGHUP))
	var id string
	require.Eventually(t, func() bool {
		status, _, answer, err := postTask(c.url+"/v1/pools/N/tasks?async=true", `{"fault": "echo"}`)
		if err != nil || status != http.StatusAccepted {
			return false
		}
		id = answer["id"].(string)
		return true
	}, 20*time.Second, 100*time.Millisecond, "the api host never saw pool N")
	rec := waitEnded(t, c, id)
	assert.Equal(t, "succeeded", rec["state"], "%v", rec)
	assert.Equal(t, "w", rec["host"])

	require.NoError(t, os.WriteFile(file, []byte(hostBConfig), 0o600))
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(w.logs.String(), "runner stopped: the pool was removed: pool=N")
	}, 20*time.Second, 50*time.Millisecond, "the removed pool's runner never stopped")
}
