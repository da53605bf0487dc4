package api_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ?priority= takes high, normal and low on every task route; any other
// value is 400 naming the parameter.
func TestAPI_priority_param(t *testing.T) {
	s := newServer(t)
	for _, path := range []string{
		"/v1/pools/CPU/tasks?priority=urgent",
		"/v1/pools/CPU/tasks?async=true&priority=HIGH",
		"/v1/plugins/cpuload/run?priority=1",
	} {
		a := s.post(t, path, `{"duration": 1}`)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, a.Raw, "query parameter priority must be one of high, normal, low", path)
	}
	a := s.sendWith(t, http.MethodPost, "/example/pool?priority=top", `{"poolName": "CPU", "workerTask": {"duration": 1}}`)
	requireError(t, a, http.StatusBadRequest, "bad_request")

	a = s.post(t, "/v1/pools/CPU/tasks?priority=high", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	a = s.post(t, "/v1/plugins/cpuload/run?priority=low", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)

	id := s.submitAsync(t, "/v1/pools/CPU/tasks?async=true&priority=low", `{"duration": 1}`)
	a = s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=15s", nil)
	assert.Equal(t, "low", a.Body["priority"], a.Raw)
	id = s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 1}`)
	a = s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=15s", nil)
	assert.Equal(t, "normal", a.Body["priority"], a.Raw)
}

// A high task submitted after eight low ones on a busy one-worker pool
// starts before them.
func TestAPI_priority_highOvertakesLow(t *testing.T) {
	s := newServer(t)
	busy := s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 600}`)
	require.Eventually(t, func() bool {
		a := s.do(t, http.MethodGet, "/v1/tasks/"+busy, nil)
		return a.Body["state"] == "running"
	}, 10*time.Second, 10*time.Millisecond)
	var lows []string
	for range 8 {
		lows = append(lows, s.submitAsync(t, "/v1/pools/CPU/tasks?async=true&priority=low", `{"duration": 20}`))
	}
	high := s.submitAsync(t, "/v1/pools/CPU/tasks?async=true&priority=high", `{"duration": 20}`)
	type started struct {
		id string
		at time.Time
	}
	var all []started
	for _, id := range append(append([]string{busy}, lows...), high) {
		a := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=30s", nil)
		require.Equal(t, "succeeded", a.Body["state"], a.Raw)
		at, err := time.Parse(time.RFC3339Nano, a.Body["startedAt"].(string))
		require.NoError(t, err)
		all = append(all, started{id, at})
	}
	slices.SortFunc(all, func(a, b started) int { return a.at.Compare(b.at) })
	var order []string
	for _, s := range all {
		order = append(order, s.id)
	}
	assert.Equal(t, append([]string{busy, high}, lows...), order)
}
