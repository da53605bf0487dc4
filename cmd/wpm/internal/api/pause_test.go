package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// poolOf finds pool name in GET /v1/pools.
func (s *server) poolOf(t *testing.T, name string) map[string]any {
	t.Helper()
	a := s.do(t, http.MethodGet, "/v1/pools", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	for _, p := range a.Body["pools"].([]any) {
		if p := p.(map[string]any); p["name"] == name {
			return p
		}
	}
	t.Fatalf("no pool %s in %s", name, a.Raw)
	return nil
}

// clusterPaused returns, by pool, the paused flag of this host's pools
// in GET /v1/cluster.
func (s *server) clusterPaused(t *testing.T) map[string]any {
	t.Helper()
	a := s.do(t, http.MethodGet, "/v1/cluster", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	out := map[string]any{}
	for _, h := range a.Body["hosts"].([]any) {
		if h := h.(map[string]any); h["self"] == true {
			for _, p := range h["pools"].([]any) {
				p := p.(map[string]any)
				out[p["name"].(string)] = p["paused"]
			}
		}
	}
	return out
}

// Pause: queued tasks wait, a synchronous task gets 503 pool_paused with
// Retry-After, /v1/pools, /v1/cluster, the pool and the metrics say
// paused; resume
// runs the queued tasks.
func TestAPI_pauseResume(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/CPU/pause", "")
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, map[string]any{"pool": "CPU", "paused": true}, a.Body)
	assert.Equal(t, true, s.poolOf(t, "CPU")["paused"])
	assert.Equal(t, false, s.poolOf(t, "MEM")["paused"])
	a = s.do(t, http.MethodGet, "/v1/pools/CPU", nil)
	assert.Equal(t, true, a.Body["paused"], a.Raw)
	a = s.do(t, http.MethodGet, "/v1/pools", nil)
	cluster, _ := a.Body["cluster"].(map[string]any)
	cpu, _ := cluster["CPU"].(map[string]any)
	assert.Equal(t, true, cpu["paused"], a.Raw)
	assert.Equal(t, map[string]any{"CPU": true, "M": false, "MEM": false}, s.clusterPaused(t), "this host's pools in /v1/cluster")

	var ids []string
	for range 3 {
		ids = append(ids, s.submitAsync(t, "/v1/pools/CPU/tasks?async=true", `{"duration": 1}`))
	}
	a = s.post(t, "/v1/pools/CPU/tasks", `{"duration": 1}`)
	requireError(t, a, http.StatusServiceUnavailable, "pool_paused")
	assert.Equal(t, "5", a.Header.Get("Retry-After"))
	requireError(t, s.post(t, "/example/pool", `{"poolName": "CPU", "workerTask": {"duration": 1}}`), http.StatusServiceUnavailable, "pool_paused")

	require.NoError(t, s.metrics.Registry().Register(s.tasks.Collector()))
	m := s.doRaw(t, http.MethodGet, "/metrics", nil, s.token)
	assert.Contains(t, m.Raw, `wpm_pool_paused{pool="CPU"} 1`)
	assert.Contains(t, m.Raw, `wpm_pool_paused{pool="MEM"} 0`)

	time.Sleep(300 * time.Millisecond)
	for _, id := range ids {
		a := s.do(t, http.MethodGet, "/v1/tasks/"+id, nil)
		assert.Equal(t, "queued", a.Body["state"], a.Raw)
	}
	requireError(t, s.post(t, "/v1/pools/GPU/pause", ""), http.StatusNotFound, "unknown_pool")

	a = s.post(t, "/v1/pools/CPU/resume", "")
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, false, a.Body["paused"])
	assert.Equal(t, map[string]any{"CPU": false, "M": false, "MEM": false}, s.clusterPaused(t))
	for _, id := range ids {
		a := s.do(t, http.MethodGet, "/v1/tasks/"+id+"?wait=15s", nil)
		assert.Equal(t, "succeeded", a.Body["state"], a.Raw)
	}
	a = s.post(t, "/v1/pools/CPU/tasks", `{"duration": 1}`)
	assert.Equal(t, http.StatusOK, a.Status, a.Raw)
	m = s.doRaw(t, http.MethodGet, "/metrics", nil, s.token)
	assert.True(t, strings.Contains(m.Raw, `wpm_pool_paused{pool="CPU"} 0`), "resumed in the metrics")
}
