package main

import (
	"encoding/json"
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

// scheduleRecord is the part of GET /v1/schedules/{name} the tests read.
type scheduleRecord struct {
	Name     string
	Every    string
	Paused   bool
	Source   string
	NextRun  *time.Time
	LastRuns []struct{ TaskID string }
}

// A delayed task is scheduled, not started, across a SIGKILL of wpm; after
// the restart, past its time, it runs once.
func TestServe_delayedTaskSurvivesSIGKILL(t *testing.T) {
	store := t.TempDir()
	env := "WPM_NATS_STOREDIR=" + store
	s := startServeConfig(t, asyncConfig, env)
	status, body := postJSON(t, s.url+"/v1/pools/M/tasks?async=true&delay=3s", `{"fault": "echo"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "scheduled", body["state"])
	id := body["id"].(string)
	var rec map[string]any
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id, &rec))
	runAt, err := time.Parse(time.RFC3339, rec["runAt"].(string))
	require.NoError(t, err)
	require.NoError(t, s.cmd.Process.Kill())
	s.done <- <-s.done

	time.Sleep(time.Until(runAt) + 500*time.Millisecond) // due while wpm is down
	s = startServeConfig(t, asyncConfig, env)
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id+"?wait=20s", &rec))
	assert.Equal(t, "succeeded", rec["state"], rec)
	assert.EqualValues(t, 1, rec["attempts"])
	started, err := time.Parse(time.RFC3339Nano, rec["startedAt"].(string))
	require.NoError(t, err)
	assert.False(t, started.Before(runAt), "started %s before its time %s", started, runAt)
}

// A delayed task is not started before its time: its state stays
// scheduled and the pool's workers run nothing; canceled, it never runs.
func TestServe_delayedTaskWaitsAndCancels(t *testing.T) {
	s := startServeConfig(t, asyncConfig)
	status, body := postJSON(t, s.url+"/v1/pools/M/tasks?async=true&delay=2s", `{"fault": "echo"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	id := body["id"].(string)
	_, doomed := postJSON(t, s.url+"/v1/pools/M/tasks?async=true&delay=2s", `{"fault": "echo"}`)
	for until := time.Now().Add(1200 * time.Millisecond); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
		var rec taskRecord
		require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id, &rec))
		require.Equal(t, "scheduled", rec.State)
		require.Zero(t, rec.Attempts)
		require.Zero(t, poolRunning(t, s.url, "M"), "a worker runs a task before its time")
	}
	req, err := http.NewRequest(http.MethodDelete, s.url+"/v1/tasks/"+doomed["id"].(string), nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var rec taskRecord
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id+"?wait=15s", &rec))
	assert.Equal(t, "succeeded", rec.State)
	time.Sleep(time.Second)
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+doomed["id"].(string), &rec))
	assert.Equal(t, "canceled", rec.State)
	assert.Zero(t, rec.Attempts)
}

// scheduleOf reads the schedule name from host s; its status is returned.
func scheduleOf(t *testing.T, s *wpmServer, name string) (int, scheduleRecord) {
	t.Helper()
	var rec scheduleRecord
	status := getJSON(t, s.url+"/v1/schedules/"+name, &rec)
	return status, rec
}

// A schedule every 2s runs 3 to 5 times in 7.5s with two hosts on one
// NATS: each tick makes one task, whichever host takes it.
func TestCluster_scheduleOncePerTick(t *testing.T) {
	url := startNATS(t)
	a := clusterHost(t, url, "a", "all", hostAConfig)
	b := clusterHost(t, url, "b", "all", hostBConfig)
	waitCluster(t, a, "a", "b")
	status, body := postJSON(t, a.url+"/v1/schedules", `{"name": "two", "pool": "S", "input": {"fault": "echo"}, "every": "2s"}`)
	require.Equal(t, http.StatusCreated, status, body)
	time.Sleep(7500 * time.Millisecond)
	status, body = postJSON(t, b.url+"/v1/schedules/two/pause", ``)
	require.Equal(t, http.StatusOK, status, body)
	made := func() int {
		var list struct {
			Tasks []struct{ ID, Schedule, Host string }
		}
		require.Equal(t, http.StatusOK, getJSON(t, a.url+"/v1/tasks?limit=1000", &list))
		n := 0
		for _, task := range list.Tasks {
			if task.Schedule == "two" {
				n++
			}
		}
		return n
	}
	var rec scheduleRecord
	// A tick taken just before the pause is recorded in its schedule just
	// after its task is made.
	require.Eventually(t, func() bool { _, rec = scheduleOf(t, b, "two"); return len(rec.LastRuns) == made() },
		5*time.Second, 50*time.Millisecond, "one task per tick, not one per host")
	assert.GreaterOrEqual(t, len(rec.LastRuns), 3)
	assert.LessOrEqual(t, len(rec.LastRuns), 5)
}

// Schedules declared in the config are made at start, updated and removed
// on reload; one made through the API stays.
func TestServe_configSchedulesReconciledOnReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "wpm.yaml")
	write := func(schedules string) {
		require.NoError(t, os.WriteFile(file, []byte(asyncConfig+schedules), 0o600))
	}
	write(`schedules:
  - {name: cfg, pool: M, input: {fault: echo}, every: 1h}
`)
	s := startServeConfig(t, file)
	status, rec := scheduleOf(t, s, "cfg")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "config", rec.Source)
	assert.Equal(t, "1h0m0s", rec.Every)
	status, body := postJSON(t, s.url+"/v1/schedules", `{"name": "api", "pool": "M", "every": "1h"}`)
	require.Equal(t, http.StatusCreated, status, body)

	write(`schedules:
  - {name: cfg, pool: M, input: {fault: echo}, every: 2h}
`)
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { _, rec := scheduleOf(t, s, "cfg"); return rec.Every == "2h0m0s" }, 10*time.Second, 50*time.Millisecond)

	write("")
	status, body = postJSON(t, s.url+"/v1/admin/reload", ``)
	require.Equal(t, http.StatusOK, status, body)
	status, _ = scheduleOf(t, s, "cfg")
	assert.Equal(t, http.StatusNotFound, status, "a schedule taken out of the config is removed")
	status, rec = scheduleOf(t, s, "api")
	assert.Equal(t, http.StatusOK, status, "one made through the API stays")
	assert.Equal(t, "api", rec.Source)

	write(`schedules:
  - {name: bad, pool: M, every: 10ms}
`)
	status, body = postJSON(t, s.url+"/v1/admin/reload", ``)
	require.Equal(t, http.StatusBadRequest, status, body)
	assert.Contains(t, body["error"].(map[string]any)["message"], "schedules[0].every")
}

// wpm schedules add, list, get, pause, resume and rm, and wpm tasks submit
// --delay, against the built binary.
func TestCLI_schedules(t *testing.T) {
	s := startServeConfig(t, asyncConfig)
	code, out, errOut := runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{"fault": "echo"}`, "--delay", "1h")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"scheduled"`)
	code, out, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{}`, "--run-at", "2000-01-01T00:00:00Z")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"queued"`)
	code, _, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{}`, "--run-at", "tomorrow")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--run-at")
	code, _, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--task", `{}`, "--delay", "9999h")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "delay")

	code, out, errOut = runCLI(t, "", "schedules", "add", "nightly", "--url", s.url, "--pool", "M", "--cron", "0 0 3 * * *", "--timezone", "Europe/Paris", "--task", `{"fault": "echo"}`)
	require.Equal(t, 0, code, errOut)
	var rec scheduleRecord
	require.NoError(t, json.Unmarshal([]byte(out), &rec), out)
	assert.Equal(t, "nightly", rec.Name)
	require.NotNil(t, rec.NextRun)
	code, _, errOut = runCLI(t, "", "schedules", "add", "nightly", "--url", s.url, "--pool", "M", "--every", "1m")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "schedule_exists")
	code, _, errOut = runCLI(t, "", "schedules", "add", "bad", "--url", s.url, "--pool", "M", "--cron", "* * * * *")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "cron")
	code, out, errOut = runCLI(t, "", "schedules", "list", "--url", s.url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "nightly")
	assert.Contains(t, out, "0 0 3 * * * Europe/Paris")
	for _, sub := range []string{"pause", "get", "resume", "rm"} {
		code, out, errOut = runCLI(t, "", "schedules", sub, "nightly", "--url", s.url)
		require.Equal(t, 0, code, "%s: %s", sub, errOut)
		assert.Contains(t, out, `"nightly"`, sub)
		if sub == "pause" {
			assert.Contains(t, out, `"paused": true`)
		}
	}
	code, _, errOut = runCLI(t, "", "schedules", "get", "nightly", "--url", s.url)
	assert.Equal(t, 1, code)
	assert.True(t, strings.Contains(errOut, "unknown_schedule"), errOut)
	code, _, _ = runCLI(t, "", "schedules", "frobnicate", "--url", s.url)
	assert.Equal(t, 2, code)
}
