package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errorMessage is an error answer's message.
func errorMessage(a answer) string {
	e, _ := a.Body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// ?delay makes a scheduled task that runs later, ?runAt in the past runs
// now, and a scheduled task can be canceled.
func TestAPI_delayedTasks(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/CPU/tasks?async=true&delay=2s", `{"duration": 1}`)
	require.Equal(t, http.StatusAccepted, a.Status, a.Raw)
	assert.Equal(t, "scheduled", a.Body["state"])
	id := a.Body["id"].(string)
	got := s.do(t, http.MethodGet, "/v1/tasks/"+id, nil)
	assert.Equal(t, "scheduled", got.Body["state"], got.Raw)
	assert.NotEmpty(t, got.Body["runAt"])
	assert.EqualValues(t, 0, got.Body["attempts"])
	done := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=15s", nil)
	assert.Equal(t, "succeeded", done.Body["state"], done.Raw)

	past := s.post(t, "/v1/plugins/cpuload/run?async=true&runAt="+time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), `{"duration": 1}`)
	require.Equal(t, http.StatusAccepted, past.Status, past.Raw)
	assert.Equal(t, "queued", past.Body["state"])

	later := s.post(t, "/example/pool?async=true&runAt="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), `{"poolName": "CPU", "workerTask": {"duration": 1}}`)
	require.Equal(t, http.StatusAccepted, later.Status, later.Raw)
	canceled := s.do(t, http.MethodDelete, "/v1/tasks/"+later.Body["id"].(string), nil)
	require.Equal(t, http.StatusOK, canceled.Status, canceled.Raw)
	assert.Equal(t, "canceled", canceled.Body["state"])
	list := s.do(t, http.MethodGet, "/v1/tasks?state=scheduled", nil)
	require.Equal(t, http.StatusOK, list.Status, list.Raw)
}

// Bad delays are 400 naming the parameter.
func TestAPI_delayedTasks_badValues(t *testing.T) {
	s := newServer(t)
	for path, param := range map[string]string{
		"/v1/pools/CPU/tasks?async=true&delay=soon":                          "delay",
		"/v1/pools/CPU/tasks?async=true&delay=-1s":                           "delay",
		"/v1/pools/CPU/tasks?async=true&delay=721h":                          "delay",
		"/v1/pools/CPU/tasks?async=true&runAt=tomorrow":                      "runAt",
		"/v1/pools/CPU/tasks?async=true&runAt=2999-01-01T00:00:00Z":          "runAt",
		"/v1/pools/CPU/tasks?delay=1s":                                       "delay",
		"/v1/plugins/cpuload/run?runAt=2030-01-01T00:00:00Z":                 "runAt",
		"/v1/pools/CPU/tasks?async=true&delay=1s&runAt=2030-01-01T00:00:00Z": "delay",
	} {
		a := s.post(t, path, `{"duration": 1}`)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, errorMessage(a), param, path)
	}
}

// The schedules' routes: make, read, pause, resume, delete; each tick's
// task names the schedule.
func TestAPI_schedules(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/schedules", `{"name": "often", "pool": "CPU", "input": {"duration": 1}, "every": "1s"}`)
	require.Equal(t, http.StatusCreated, a.Status, a.Raw)
	assert.Equal(t, "/v1/schedules/often", a.Header.Get("Location"))
	assert.Equal(t, "api", a.Body["source"])
	assert.NotEmpty(t, a.Body["nextRun"])
	requireError(t, s.post(t, "/v1/schedules", `{"name": "often", "pool": "CPU", "every": "1s"}`), http.StatusConflict, "schedule_exists")

	var runs []any
	require.Eventually(t, func() bool {
		got := s.do(t, http.MethodGet, "/v1/schedules/often", nil)
		runs, _ = got.Body["lastRuns"].([]any)
		return len(runs) >= 2
	}, 10*time.Second, 100*time.Millisecond)
	first := runs[len(runs)-1].(map[string]any)["taskId"].(string)
	task := s.do(t, http.MethodGet, "/v1/tasks/"+first+"?wait=15s", nil)
	assert.Equal(t, "often", task.Body["schedule"], task.Raw)
	assert.Equal(t, "succeeded", task.Body["state"], task.Raw)

	paused := s.post(t, "/v1/schedules/often/pause", ``)
	require.Equal(t, http.StatusOK, paused.Status, paused.Raw)
	assert.Equal(t, true, paused.Body["paused"])
	assert.Nil(t, paused.Body["nextRun"])
	resumed := s.post(t, "/v1/schedules/often/resume", ``)
	require.Equal(t, http.StatusOK, resumed.Status, resumed.Raw)
	assert.Equal(t, false, resumed.Body["paused"])
	list := s.do(t, http.MethodGet, "/v1/schedules", nil)
	require.Equal(t, http.StatusOK, list.Status, list.Raw)
	assert.Len(t, list.Body["schedules"], 1)
	gone := s.do(t, http.MethodDelete, "/v1/schedules/often", nil)
	require.Equal(t, http.StatusOK, gone.Status, gone.Raw)
	requireError(t, s.do(t, http.MethodGet, "/v1/schedules/often", nil), http.StatusNotFound, "unknown_schedule")
	requireError(t, s.post(t, "/v1/schedules/often/pause", ``), http.StatusNotFound, "unknown_schedule")
}

// Bad schedules are 4xx naming the field.
func TestAPI_schedules_badValues(t *testing.T) {
	s := newServer(t)
	for body, field := range map[string]string{
		`{"pool": "CPU", "every": "1s"}`:                                          "name",
		`{"name": "", "pool": "CPU", "every": "1s"}`:                              "name",
		`{"name": "a/b", "pool": "CPU", "every": "1s"}`:                           "name",
		`{"name": "x", "every": "1s"}`:                                            "pool",
		`{"name": "x", "pool": "CPU"}`:                                            "cron",
		`{"name": "x", "pool": "CPU", "cron": "*/5 * * * *"}`:                     "cron",
		`{"name": "x", "pool": "CPU", "every": "100ms"}`:                          "every",
		`{"name": "x", "pool": "CPU", "cron": "0 * * * * *", "timezone": "Moon"}`: "timezone",
		`{"name": "x", "pool": "CPU", "every": 5}`:                                "every",
		`{"name": "x", "pool": "CPU", "every": "1s", "color": "red"}`:             "color",
		`[]`: "JSON object",
	} {
		a := s.post(t, "/v1/schedules", body)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, errorMessage(a), field, body)
	}
	a := s.post(t, "/v1/schedules", `{"name": "x", "pool": "GPU", "every": "1s"}`)
	requireError(t, a, http.StatusNotFound, "unknown_pool")
	a = s.post(t, "/v1/schedules", `{"name": "x", "plugin": "nope", "every": "1s"}`)
	requireError(t, a, http.StatusNotFound, "unknown_plugin")
	assert.True(t, strings.Contains(errorMessage(a), "nope"))
}
