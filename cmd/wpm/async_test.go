package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/client"
)

// asyncConfig has one pool of two test workers and a short ack wait, so
// that tasks running when wpm is killed run again soon after a restart.
const asyncConfig = `
shutdown: {grace: 5s}
async: {ackWait: 2s}
pools:
  - {name: M, plugin: misbehave, workers: 2, queueLimit: 8}
`

// taskRecord is the part of GET /v1/tasks/{id} the tests read.
type taskRecord struct {
	ID         string           `json:"id"`
	State      string           `json:"state"`
	Attempts   int              `json:"attempts"`
	FinishedAt string           `json:"finishedAt"`
	WorkerPID  int              `json:"workerPid"`
	Result     json.RawMessage  `json:"result"`
	History    []client.Attempt `json:"history"`
}

// getJSON gets url and decodes its JSON answer into v.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, v), "not JSON: %s", raw)
	return resp.StatusCode
}

// listTasks returns the tasks in state, by id.
func listTasks(t *testing.T, url, state string) map[string]taskRecord {
	t.Helper()
	var list struct{ Tasks []taskRecord }
	require.Equal(t, http.StatusOK, getJSON(t, url+"/v1/tasks?limit=1000&state="+state, &list))
	out := map[string]taskRecord{}
	for _, r := range list.Tasks {
		out[r.ID] = r
	}
	return out
}

// Durability: 200 asynchronous tasks, wpm SIGKILLed while some run and many
// are queued, then restarted on the same store: every task ends
// succeeded, those that had succeeded before the kill are not run again,
// and a task run twice shows a second attempt.
func TestServe_asyncTasksSurviveSIGKILL(t *testing.T) {
	const n = 200
	store := t.TempDir()
	env := "WPM_NATS_STOREDIR=" + store
	s := startServeConfig(t, asyncConfig, env)
	ids := make([]string, n)
	for i := range ids {
		status, body := postJSON(t, s.url+"/v1/pools/M/tasks?async=true", `{"fault": "sleep", "ms": 30}`)
		require.Equal(t, http.StatusAccepted, status, body)
		ids[i] = body["id"].(string)
	}
	// Once the sixth task ended, some run and most are queued.
	var rec taskRecord
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+ids[5]+"?wait=20s", &rec))
	require.Equal(t, "succeeded", rec.State)
	before := listTasks(t, s.url, "succeeded")
	require.NoError(t, s.cmd.Process.Kill())
	s.done <- <-s.done // wait for the exit; leave it for the cleanup
	require.Less(t, len(before), n-10, "too few tasks were queued at the kill")

	start := time.Now()
	s = startServeConfig(t, asyncConfig, env)
	reruns := 0
	for _, id := range ids {
		var r taskRecord
		require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id+"?wait=30s", &r))
		require.Equal(t, "succeeded", r.State, "task %s: %+v", id, r)
		assert.Contains(t, string(r.Result), `"pid"`, "the result is readable")
		if old, ok := before[id]; ok {
			assert.Equal(t, old, r, "a task that had succeeded before the kill ran again")
		}
		require.LessOrEqual(t, r.Attempts, 2, "task %s", id)
		require.Len(t, r.History, r.Attempts, "task %s", id)
		last := r.History[len(r.History)-1]
		assert.Equal(t, "ok", last.Cause, "task %s: %+v", id, r.History)
		assert.Equal(t, r.WorkerPID, last.WorkerPID, "task %s", id)
		if r.Attempts == 2 {
			reruns++
			// Its first attempt's host (this one, before the kill)
			// stopped answering: the restart found it open.
			assert.Equal(t, "lost", r.History[0].Cause, "task %s: %+v", id, r.History)
			assert.NotNil(t, r.History[0].FinishedAt, "task %s", id)
		}
	}
	assert.LessOrEqual(t, reruns, 2, "only the tasks running at the kill (two workers) run again")
	t.Logf("%d tasks, %d succeeded before the kill, %d ran again; all ended %s after the restart",
		n, len(before), reruns, time.Since(start).Round(time.Millisecond))
}

// A store directory wpm can not use stops it at start with a message
// naming nats.storeDir.
func TestServe_asyncStoreDirNotUsable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	var stderr strings.Builder
	code := run([]string{"serve", "--config", configFile(t, asyncConfig), "--plugins-dir", filepath.Join(binDir, "plugins"), "--addr", freeAddr(t)},
		env{stdout: io.Discard, stderr: &stderr, environ: []string{"WPM_NATS_STOREDIR=" + filepath.Join(file, "nats")}})
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "nats.storeDir")
	assert.Contains(t, stderr.String(), "can not create")
}

// configFile writes config to a temporary file and returns its path.
func configFile(t *testing.T, config string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wpm.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
	return path
}

// wpm tasks submit, wait, get, list and cancel against the built binary.
func TestCLI_tasks(t *testing.T) {
	s := startServeConfig(t, asyncConfig)
	code, out, errOut := runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{"fault": "echo"}`)
	require.Equal(t, 0, code, errOut)
	var queued struct{ ID, State string }
	require.NoError(t, json.Unmarshal([]byte(out), &queued), out)
	assert.Equal(t, "queued", queued.State)

	code, out, errOut = runCLI(t, "", "tasks", "wait", queued.ID, "--url", s.url)
	require.Equal(t, 0, code, errOut)
	var rec taskRecord
	require.NoError(t, json.Unmarshal([]byte(out), &rec), out)
	assert.Equal(t, "succeeded", rec.State)

	code, out, _ = runCLI(t, "", "tasks", "list", "--url", s.url, "--state", "succeeded")
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, []string{"ID", "STATE", "PRIORITY", "POOL", "PLUGIN", "ATTEMPTS", "CREATED", "ERROR"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{queued.ID, "succeeded", "normal", "M", "misbehave", "1"}, strings.Fields(lines[1])[:6])

	code, _, errOut = runCLI(t, "", "tasks", "cancel", queued.ID, "--url", s.url)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "task_ended")
	code, _, errOut = runCLI(t, "", "tasks", "get", "0123456789abcdef", "--url", s.url)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "unknown_task")

	code, out, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{"fault": "fail"}`)
	require.Equal(t, 0, code, errOut)
	var failed struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &failed), out)
	code, out, errOut = runCLI(t, "", "tasks", "wait", failed.ID, "--url", s.url)
	assert.Equal(t, 1, code, "a failed task: %s", errOut)
	assert.Contains(t, out, `"failed"`)

	// --timeout passing first is exit status 3, with the record so far.
	code, out, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{"fault": "sleep", "ms": 5000}`)
	require.Equal(t, 0, code, errOut)
	var slow struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &slow), out)
	code, out, errOut = runCLI(t, "", "tasks", "wait", slow.ID, "--url", s.url, "--timeout", "300ms")
	assert.Equal(t, 3, code, errOut)
	assert.Contains(t, out, slow.ID)
	assert.Contains(t, errOut, "--timeout")
	code, _, errOut = runCLI(t, "", "tasks", "wait", slow.ID, "--url", s.url, "--timeout", "1ns")
	assert.Equal(t, 3, code, errOut)
	code, _, _ = runCLI(t, "", "tasks", "frobnicate", "--url", s.url)
	assert.Equal(t, 2, code)
}

// An asynchronous cpuload task's record shows its progress while it runs,
// and its result once it ended.
func TestServe_asyncTaskProgress(t *testing.T) {
	s := startServe(t)
	status, body := postJSON(t, s.url+"/v1/pools/CPU/tasks?async=true", `{"duration": 1500}`)
	require.Equal(t, http.StatusAccepted, status, body)
	id := body["id"].(string)
	type progressRecord struct {
		taskRecord
		Progress *struct {
			Fraction float64 `json:"fraction"`
			Message  string  `json:"message"`
		} `json:"progress"`
	}
	var seen float64
	deadline := time.Now().Add(20 * time.Second)
	for {
		var r progressRecord
		require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id, &r))
		if r.State == "running" && r.Progress != nil && r.Progress.Fraction > 0 && r.Progress.Fraction < 1 {
			seen = r.Progress.Fraction
			break
		}
		require.False(t, r.State == "succeeded" || r.State == "failed", "the task ended before its record showed progress: %+v", r)
		require.True(t, time.Now().Before(deadline), "no progress in the record: %+v", r)
		time.Sleep(50 * time.Millisecond) // records change only with a write; nothing to wait on
	}
	var end progressRecord
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id+"?wait=20s", &end))
	require.Equal(t, "succeeded", end.State)
	assert.Contains(t, string(end.Result), `"requestedMs":1500`)
	require.NotNil(t, end.Progress)
	assert.GreaterOrEqual(t, end.Progress.Fraction, seen)
	t.Logf("progress seen while running: %.2f; at the end: %.2f %q", seen, end.Progress.Fraction, end.Progress.Message)
}

// waitShowsProgress submits task to pool with wpm tasks submit against
// the wpm at url, waits for it with wpm tasks wait, checks that the wait
// showed its progress up to 100 % and returns the record it printed.
func waitShowsProgress(t *testing.T, url, pool, task string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "", "tasks", "submit", "--url", url, "--pool", pool, "--task", task)
	require.Equal(t, 0, code, errOut)
	var submitted struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &submitted), out)
	code, out, errOut = runCLI(t, "", "tasks", "wait", submitted.ID, "--url", url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "progress", "progress lines on standard error")
	assert.Contains(t, errOut, "100%")
	return out
}

// retryConfig has a pool of the test plugin and one of cpuload.
const retryConfig = `
shutdown: {grace: 5s}
async: {ackWait: 2s}
pools:
  - {name: M, plugin: misbehave, workers: 1, queueLimit: 8}
  - {name: CPU, plugin: cpuload, workers: 1}
`

// wpm tasks wait shows a task's progress as wpm run does, then prints the
// record; wpm tasks retry makes a new task of a failed one (retryOf and
// retriedBy), refuses a running one (task_not_ended) and an unknown one;
// wpm tasks list pages with --cursor.
func TestCLI_tasksRetryWaitPages(t *testing.T) {
	s := startServeConfig(t, retryConfig)
	out := waitShowsProgress(t, s.url, "CPU", `{"duration": 1500}`)
	var rec struct {
		taskRecord
		Input     json.RawMessage `json:"input"`
		RetryOf   string          `json:"retryOf"`
		RetriedBy string          `json:"retriedBy"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rec), out)
	assert.Equal(t, "succeeded", rec.State)
	assert.JSONEq(t, `{"duration": 1500}`, string(rec.Input), "the record shows its input")

	code, out, errOut := runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{"fault": "fail"}`)
	require.Equal(t, 0, code, errOut)
	var failed struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &failed), out)
	code, _, errOut = runCLI(t, "", "tasks", "wait", failed.ID, "--url", s.url)
	require.Equal(t, 1, code, errOut)
	code, out, errOut = runCLI(t, "", "tasks", "retry", failed.ID, "--url", s.url)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &rec), out)
	assert.Equal(t, failed.ID, rec.RetryOf)
	retry := rec.ID
	code, out, errOut = runCLI(t, "", "tasks", "wait", retry, "--url", s.url)
	assert.Equal(t, 1, code, "the retry failed again: %s", errOut)
	assert.Contains(t, out, `"retryOf": "`+failed.ID+`"`)
	code, out, _ = runCLI(t, "", "tasks", "get", failed.ID, "--url", s.url)
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"retriedBy": "`+retry+`"`)

	code, out, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--priority", "low", "--task", `{"fault": "sleep", "ms": 5000}`)
	require.Equal(t, 0, code, errOut)
	var slow struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &slow), out)
	code, _, errOut = runCLI(t, "", "tasks", "retry", slow.ID, "--url", s.url)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "task_not_ended")
	code, _, errOut = runCLI(t, "", "tasks", "retry", "0123456789abcdef", "--url", s.url)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "unknown_task")

	// M's tasks, newest first, one a page: slow, the retry, the failed one.
	base := []string{"tasks", "list", "--url", s.url, "--pool", "M", "--plugin", "misbehave", "--limit", "1"}
	args := base
	var seen, priorities []string
	for range 3 {
		code, out, errOut = runCLI(t, "", args...)
		require.Equal(t, 0, code, errOut)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 2, out)
		seen = append(seen, strings.Fields(lines[1])[0])
		priorities = append(priorities, strings.Fields(lines[1])[2])
		_, next, ok := strings.Cut(errOut, "--cursor ")
		require.True(t, ok, errOut)
		args = append(slices.Clip(base), "--cursor", strings.Fields(next)[0])
	}
	assert.Equal(t, []string{slow.ID, retry, failed.ID}, seen)
	assert.Equal(t, []string{"low", "normal", "normal"}, priorities)
	runCLI(t, "", "tasks", "cancel", slow.ID, "--url", s.url)
}
