package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// quietConfig logs JSON; its CPU workers are recycled every few tasks.
const quietConfig = `
log: {format: json, level: info}
shutdown: {grace: 20s}
pools:
  - {name: CPU, plugin: cpuload, workers: 2, maxTasksPerWorker: 3}
  - {name: M, plugin: misbehave, workers: 1, queueLimit: 8}
`

// Issue 14: with log.format json every line wpm serve writes is JSON,
// through one-shots, pool tasks with recycled workers, a worker SIGKILLed
// mid-task, a reload and a shutdown; and nothing but the killed worker
// logs at error level.
func TestServe_jsonLogsStayJSON(t *testing.T) {
	s := startServeConfig(t, quietConfig)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 10 {
				path := "/v1/pools/CPU/tasks"
				if i%2 == 0 {
					path = "/v1/plugins/cpuload/run"
				}
				status, body := postJSON(t, s.url+path, `{"duration": 0}`)
				assert.Equal(t, http.StatusOK, status, "%s: %v", path, body)
			}
		})
	}
	wg.Wait()

	killed := make(chan map[string]any, 1)
	go func() {
		_, body := postJSON(t, s.url+"/v1/pools/M/tasks", `{"fault": "sleep", "ms": 10000}`)
		killed <- body
	}()
	require.Eventually(t, func() bool { return poolRunning(t, s.url, "M") == 1 }, 5*time.Second, 5*time.Millisecond)
	pid := poolWorkerPID(t, s.url, "M")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	body := <-killed
	assert.Equal(t, "worker_crashed", body["error"].(map[string]any)["code"])

	status, body := postJSON(t, s.url+"/v1/admin/reload", ``)
	require.Equal(t, http.StatusOK, status, body)
	status, body = postJSON(t, s.url+"/v1/pools/CPU/tasks", `{"duration": 0}`)
	require.Equal(t, http.StatusOK, status, body)

	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("wpm did not exit")
	}

	lines := 0
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		var entry map[string]any
		if !assert.NoError(t, json.Unmarshal(sc.Bytes(), &entry), "line %d is not JSON: %s", lines, sc.Text()) {
			continue
		}
		if entry["@level"] == "error" {
			assert.Equal(t, float64(pid), entry["pid"], "an error line not about the killed worker: %s", sc.Text())
		}
	}
	require.NoError(t, sc.Err())
	assert.Greater(t, lines, 5)
}

// poolWorkerPID returns the pid of pool's one worker.
func poolWorkerPID(t *testing.T, url, pool string) int {
	t.Helper()
	resp, err := http.Get(url + "/v1/pools/" + pool)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Workers []struct {
			PID int `json:"pid"`
		} `json:"workers"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Len(t, body.Workers, 1)
	return body.Workers[0].PID
}

// Issue 14: a successful `wpm run` writes its answer and nothing on stderr,
// 50 times over.
func TestRun_nothingOnStderr(t *testing.T) {
	for i := range 50 {
		cmd := exec.Command(filepath.Join(binDir, "wpm"), "run", "cpuload", "--task", `{"duration":0}`,
			"--config", filepath.Join(testkit.ModuleRoot(), "config", "default.yaml"),
			"--plugins-dir", filepath.Join(binDir, "plugins"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, runBoundedCmd(cmd, 30*time.Second), "run %d: %s", i, stderr.String())
		require.Empty(t, stderr.String(), "run %d wrote to stderr", i)
		require.Contains(t, stdout.String(), `"iterations"`, "run %d", i)
	}
}

// runBoundedCmd runs cmd and kills it if it takes longer than bound.
func runBoundedCmd(cmd *exec.Cmd, bound time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not end within %s", cmd.Path, bound)
	}
}
