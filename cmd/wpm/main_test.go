package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/internal/testkit"
)

// binDir holds bin/wpm and bin/plugins/, built once for this test binary.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testkit.RunMain(m, func(root string) error {
		binDir = filepath.Join(root, "bin")
		if err := testkit.BuildPlugins(filepath.Join(binDir, "plugins")); err != nil {
			return err
		}
		_, err := testkit.BuildWPM(binDir)
		return err
	}))
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// wpmServer is bin/wpm serve running as a child process.
type wpmServer struct {
	cmd  *exec.Cmd
	url  string
	logs *testkit.SyncBuffer
	done chan error
}

// startServe starts bin/wpm serve on the shipped config (plugins from the
// test build) and waits until /readyz answers 200.
func startServe(t *testing.T, extraEnv ...string) *wpmServer {
	t.Helper()
	return startServeConfig(t, filepath.Join(testkit.ModuleRoot(), "config", "default.yaml"), extraEnv...)
}

// misbehaveConfig is a config with one pool of the test plugin.
const misbehaveConfig = `
shutdown: {grace: 20s}
pools:
  - {name: M, plugin: misbehave, workers: 1, queueLimit: 8}
`

// startServeConfig starts bin/wpm serve on the config file path.
func startServeConfig(t *testing.T, path string, extraEnv ...string) *wpmServer {
	t.Helper()
	return startServeAt(t, freeAddr(t), nil, path, extraEnv...)
}

// startServeAt starts bin/wpm serve on the config file path (or text),
// listening on addr, as the argument of the command wrap (e.g. "ip netns
// exec NAME"; nil runs it directly).
func startServeAt(t *testing.T, addr string, wrap []string, path string, extraEnv ...string) *wpmServer {
	t.Helper()
	if !strings.HasSuffix(path, ".yaml") {
		file := filepath.Join(t.TempDir(), "wpm.yaml")
		require.NoError(t, os.WriteFile(file, []byte(path), 0o600))
		path = file
	}
	args := append(append([]string{}, wrap...), filepath.Join(binDir, "wpm"), "serve", "--config", path,
		"--addr", addr, "--plugins-dir", filepath.Join(binDir, "plugins"))
	cmd := exec.Command(args[0], args[1:]...)
	// The task store goes to a temporary directory unless extraEnv names one.
	cmd.Env = append(append(os.Environ(), "WPM_NATS_STOREDIR="+t.TempDir()), extraEnv...)
	s := &wpmServer{cmd: cmd, url: "http://" + addr, logs: new(testkit.SyncBuffer), done: make(chan error, 1)}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(s.logs, stderr)
	}()
	go func() { <-copied; s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			t.Logf("wpm serve log:\n%s", s.logs.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "wpm serve never became ready")
	return s
}

func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(raw, &v), "not JSON: %s", raw)
	return resp.StatusCode, v
}

// The seed's four example requests, durations shortened, against the built
// binary on the shipped config.
func TestServe_seedRequests(t *testing.T) {
	s := startServe(t)
	for _, c := range []struct{ path, body string }{
		{"/example/pool", `{"workerTask": {"duration": 300}, "poolName": "CPU"}`},
		{"/example/pool", `{"workerTask": {"duration": 300, "mb": 300}, "poolName": "MEM"}`},
		{"/example/oneShot", `{"workerTask": {"duration": 300}, "workerScript": "./workers/cpuload"}`},
		{"/example/oneShot", `{"workerTask": {"duration": 300, "mb": 300}, "workerScript": "memusage", "workerMemoryLimit": 4096}`},
	} {
		status, body := postJSON(t, s.url+c.path, c.body)
		require.Equal(t, http.StatusOK, status, "%s %s → %v", c.path, c.body, body)
		assert.Equal(t, true, body["ok"])
		assert.Equal(t, "workDone", body["type"])
		assert.NotEmpty(t, body["id"])
	}
}

// SIGTERM: new requests get 503 while a running task finishes, then wpm
// exits 0 and leaves no worker behind.
func TestServe_sigtermDrains(t *testing.T) {
	s := startServe(t)
	workers := workerPIDs(t, s.url)
	require.Len(t, workers, 4)

	slow := make(chan int, 1)
	go func() {
		status, _ := postJSON(t, s.url+"/v1/pools/CPU/tasks", `{"duration": 1000}`)
		slow <- status
	}()
	require.Eventually(t, func() bool { return poolRunning(t, s.url, "CPU") == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		status, body := postJSON(t, s.url+"/v1/pools/CPU/tasks", `{"duration": 1}`)
		return status == http.StatusServiceUnavailable && body["error"].(map[string]any)["code"] == "shutting_down"
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, http.StatusOK, <-slow, "the in-flight task finishes")
	select {
	case err := <-s.done:
		require.NoError(t, err, "wpm exits 0 after a graceful shutdown")
	case <-time.After(20 * time.Second):
		t.Fatal("wpm did not exit")
	}
	for _, pid := range workers {
		assert.False(t, testkit.Alive(pid), "worker %d outlived wpm", pid)
	}
}

// SIGKILL on wpm itself: its workers die with it (parent-death signal).
func TestServe_sigkillLeavesNoOrphans(t *testing.T) {
	s := startServe(t)
	workers := workerPIDs(t, s.url)
	require.Len(t, workers, 4)
	require.NoError(t, s.cmd.Process.Kill())
	<-s.done
	require.Eventually(t, func() bool {
		for _, pid := range workers {
			if testkit.Alive(pid) {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "workers outlived a killed wpm")
}

// SIGKILL on wpm while a plugin has started a child of its own that
// ignores SIGTERM: the worker and its child both die.
func TestServe_sigkillTakesPluginChildren(t *testing.T) {
	s := startServeConfig(t, misbehaveConfig)
	status, body := postJSON(t, s.url+"/v1/pools/M/tasks", `{"fault": "spawn"}`)
	require.Equal(t, http.StatusOK, status, body)
	result := body["result"].(map[string]any)
	worker, child := int(result["pid"].(float64)), int(result["childPid"].(float64))
	require.True(t, testkit.Alive(child))
	require.NoError(t, s.cmd.Process.Kill())
	<-s.done
	require.Eventually(t, func() bool { return !testkit.Alive(worker) && !testkit.Alive(child) }, 5*time.Second, 5*time.Millisecond,
		"worker %d or its child %d outlived a killed wpm", worker, child)
}

// A second signal ends the grace period at once: the hung task is cut off
// with 503 shutting_down and wpm exits 0 well before its 20 s grace.
func TestServe_secondSignalStopsAtOnce(t *testing.T) {
	s := startServeConfig(t, misbehaveConfig)
	hung := make(chan map[string]any, 1)
	go func() {
		_, body := postJSON(t, s.url+"/v1/pools/M/tasks", `{"fault": "hang"}`)
		hung <- body
	}()
	require.Eventually(t, func() bool { return poolRunning(t, s.url, "M") == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(s.logs.String(), "shutting down") }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-s.done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("wpm did not stop on the second signal")
	}
	body := <-hung
	assert.Equal(t, "shutting_down", body["error"].(map[string]any)["code"])
}

func workerPIDs(t *testing.T, url string) []int {
	t.Helper()
	resp, err := http.Get(url + "/v1/pools")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Pools []struct {
			Workers []struct {
				PID int `json:"pid"`
			} `json:"workers"`
		} `json:"pools"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	var pids []int
	for _, p := range body.Pools {
		for _, w := range p.Workers {
			pids = append(pids, w.PID)
		}
	}
	return pids
}

func poolRunning(t *testing.T, url, pool string) int {
	resp, err := http.Get(url + "/v1/pools/" + pool)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var body struct {
		Running int `json:"running"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Running
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
