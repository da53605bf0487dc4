package api_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// POST /v1/tasks/{id}/retry: a failed task is retried as a new task (202,
// Location, retryOf), which runs and fails again; the old record has
// retriedBy; a repeat gives the same retry; a running or queued task is
// 409 task_not_ended, a succeeded one 409 task_not_retryable, an unknown
// one 404. The records show their input.
func TestAPI_retry(t *testing.T) {
	s := newServer(t)
	failed := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "fail"}`)
	a := s.do(t, http.MethodGet, "/v1/tasks/"+failed+"?wait=15s", nil)
	require.Equal(t, "failed", a.Body["state"], a.Raw)
	assert.Equal(t, map[string]any{"fault": "fail"}, a.Body["input"])

	a = s.do(t, http.MethodPost, "/v1/tasks/"+failed+"/retry", nil)
	require.Equal(t, http.StatusAccepted, a.Status, a.Raw)
	retry, _ := a.Body["id"].(string)
	require.Len(t, retry, 16)
	assert.NotEqual(t, failed, retry)
	assert.Equal(t, "/v1/tasks/"+retry, a.Header.Get("Location"))
	assert.Equal(t, failed, a.Body["retryOf"])
	assert.Equal(t, "M", a.Body["pool"])
	assert.Equal(t, map[string]any{"fault": "fail"}, a.Body["input"])
	a = s.do(t, http.MethodPost, "/v1/tasks/"+failed+"/retry", nil)
	require.Equal(t, http.StatusAccepted, a.Status, a.Raw)
	assert.Equal(t, retry, a.Body["id"], "a repeated retry gives the first")

	a = s.do(t, http.MethodGet, "/v1/tasks/"+retry+"?wait=15s", nil)
	assert.Equal(t, "failed", a.Body["state"], a.Raw)
	assert.EqualValues(t, 1, a.Body["attempts"], "the retry ran")
	a = s.do(t, http.MethodGet, "/v1/tasks/"+failed, nil)
	assert.Equal(t, retry, a.Body["retriedBy"], a.Raw)
	assert.Equal(t, "failed", a.Body["state"])

	ok := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "echo"}`)
	s.do(t, http.MethodGet, "/v1/tasks/"+ok+"?wait=15s", nil)
	requireError(t, s.do(t, http.MethodPost, "/v1/tasks/"+ok+"/retry", nil), http.StatusConflict, "task_not_retryable")

	running := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "hang"}`)
	queued := s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "echo"}`)
	waitRunning(t, s, running)
	a = s.do(t, http.MethodPost, "/v1/tasks/"+running+"/retry", nil)
	requireError(t, a, http.StatusConflict, "task_not_ended")
	assert.Equal(t, running, a.Body["id"])
	requireError(t, s.do(t, http.MethodPost, "/v1/tasks/"+queued+"/retry", nil), http.StatusConflict, "task_not_ended")
	requireError(t, s.do(t, http.MethodPost, "/v1/tasks/0123456789abcdef/retry", nil), http.StatusNotFound, "unknown_task")

	// A canceled task is retried too, and the retry succeeds.
	s.do(t, http.MethodDelete, "/v1/tasks/"+queued, nil)
	s.do(t, http.MethodDelete, "/v1/tasks/"+running, nil)
	a = s.do(t, http.MethodPost, "/v1/tasks/"+queued+"/retry", nil)
	require.Equal(t, http.StatusAccepted, a.Status, a.Raw)
	a = s.do(t, http.MethodGet, "/v1/tasks/"+a.Body["id"].(string)+"?wait=15s", nil)
	assert.Equal(t, "succeeded", a.Body["state"], a.Raw)
	assert.Equal(t, queued, a.Body["retryOf"])
}

// GET /v1/tasks pages newest first by cursor, across three pages or more,
// filtered by state, pool and plugin, with no duplicates or gaps while
// new tasks arrive; each listed task shows its input.
func TestAPI_tasksPages(t *testing.T) {
	s := newServer(t)
	type made struct{ id, pool, plugin, state string }
	var all []made
	submit := func(i int) {
		switch i % 3 {
		case 0:
			all = append(all, made{s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "fail"}`), "M", "misbehave", "failed"})
		case 1:
			all = append(all, made{s.submitAsync(t, "/v1/pools/M/tasks?async=true", `{"fault": "echo"}`), "M", "misbehave", "succeeded"})
		default:
			all = append(all, made{s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 1}`), "CPU", "cpuload", "succeeded"})
		}
	}
	for i := range 18 {
		submit(i)
	}
	for _, m := range all {
		a := s.do(t, http.MethodGet, "/v1/tasks/"+m.id+"?wait=15s", nil)
		require.Equal(t, m.state, a.Body["state"], a.Raw)
	}
	for _, c := range []struct {
		query url.Values
		keep  func(made) bool
	}{
		{url.Values{"state": {"failed"}, "limit": {"2"}}, func(m made) bool { return m.state == "failed" }},
		{url.Values{"pool": {"M"}, "state": {"succeeded"}, "limit": {"2"}}, func(m made) bool { return m.pool == "M" && m.state == "succeeded" }},
		{url.Values{"plugin": {"cpuload"}, "limit": {"2"}}, func(m made) bool { return m.plugin == "cpuload" }},
		{url.Values{"pool": {"M"}, "plugin": {"misbehave"}, "limit": {"4"}}, func(m made) bool { return m.pool == "M" }},
	} {
		var want []string
		for i := len(all) - 1; i >= 0; i-- {
			if c.keep(all[i]) {
				want = append(want, all[i].id)
			}
		}
		var got []string
		pages := 0
		for q := c.query; ; {
			a := s.do(t, http.MethodGet, "/v1/tasks?"+q.Encode(), nil)
			require.Equal(t, http.StatusOK, a.Status, a.Raw)
			pages++
			tasks, _ := a.Body["tasks"].([]any)
			for _, x := range tasks {
				rec := x.(map[string]any)
				got = append(got, rec["id"].(string))
				assert.NotNil(t, rec["input"], "a listed task shows its input")
			}
			next, _ := a.Body["next"].(string)
			if next == "" {
				break
			}
			q.Set("cursor", next)
			// New tasks arrive between pages: they are newer than the
			// cursor, so the pages that follow neither repeat nor skip
			// (one-shots that succeed: no case's filter keeps them).
			s.submitAsync(t, "/v1/plugins/misbehave/run?async=true", `{"fault": "echo"}`)
		}
		assert.Equal(t, want, got, "%v", c.query)
		assert.GreaterOrEqual(t, pages, 3, "%v", c.query)
	}
	requireError(t, s.do(t, http.MethodGet, "/v1/tasks?cursor=nope", nil), http.StatusBadRequest, "bad_request")
}
