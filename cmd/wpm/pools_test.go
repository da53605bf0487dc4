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
)

// wpm pools pause|resume on a real wpm serve: wpm status says paused, a
// synchronous task gets 503 pool_paused with Retry-After, an
// asynchronous one stays queued across a SIGKILL and restart (the pause
// with it), and runs once the pool is resumed.
func TestCLI_poolsPauseResume(t *testing.T) {
	store := t.TempDir()
	env := "WPM_NATS_STOREDIR=" + store
	s := startServeConfig(t, asyncConfig, env)
	code, out, errOut := runCLI(t, "", "pools", "pause", "M", "--url", s.url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "pool M paused")

	code, out, errOut = runCLI(t, "", "status", "--url", s.url)
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^M\s+misbehave\s+.*ok, paused$`, out)

	resp, err := http.Post(s.url+"/v1/pools/M/tasks", "application/json", strings.NewReader(`{"fault": "echo"}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"pool_paused"`)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))

	code, out, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--priority", "high", "--task", `{"fault": "echo"}`)
	require.Equal(t, 0, code, errOut)
	var queued struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &queued), out)
	id := queued.ID
	code, _, errOut = runCLI(t, "", "tasks", "submit", "--url", s.url, "--pool", "M", "--priority", "urgent", "--task", `{}`)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "priority")

	require.NoError(t, s.cmd.Process.Kill())
	s.done <- <-s.done
	s = startServeConfig(t, asyncConfig, env)
	var pool struct{ Paused bool }
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/pools/M", &pool))
	assert.True(t, pool.Paused, "the pause outlives the restart")
	time.Sleep(500 * time.Millisecond)
	var rec taskRecord
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id, &rec))
	assert.Equal(t, "queued", rec.State)

	code, out, errOut = runCLI(t, "", "pools", "resume", "M", "--url", s.url)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "pool M resumed")
	require.Equal(t, http.StatusOK, getJSON(t, s.url+"/v1/tasks/"+id+"?wait=20s", &rec))
	assert.Equal(t, "succeeded", rec.State)

	code, _, errOut = runCLI(t, "", "pools", "pause", "NOPE", "--url", s.url)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "unknown_pool")
	code, _, _ = runCLI(t, "", "pools", "frobnicate", "M", "--url", s.url)
	assert.Equal(t, 2, code)
}
