package api_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// newBrokenServer serves pools OK (cpuload) and BROKEN, whose plugin
// exits at once every time it is started.
func newBrokenServer(t *testing.T, opts ...serverOption) *server {
	t.Helper()
	dir := t.TempDir()
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "cpuload"), dir, "cpuload")
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "failstart")
	return newServer(t, append(opts, func(cfg *host.Config, _ *api.Options) {
		cfg.PluginDir = dir
		cfg.Pools = []host.PoolConfig{
			{Name: "OK", Plugin: "cpuload", Workers: 1, QueueLimit: 8},
			{Name: "BROKEN", Plugin: "failstart", Workers: 2, QueueLimit: 8, StartTimeout: 5 * time.Second},
		}
	})...)
}

// A pool whose workers fail to start shows why: lastError and lastErrorAt
// on the pool, start_failed and a restart count on each slot.
func TestAPI_pool_lastError(t *testing.T) {
	s := newBrokenServer(t)
	a := s.do(t, http.MethodGet, "/v1/pools/BROKEN", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Contains(t, a.Body["lastError"], "failstart", a.Raw)
	at, err := time.Parse(time.RFC3339Nano, a.Body["lastErrorAt"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), at, time.Minute)
	assert.EqualValues(t, 0, a.Body["ready"])
	assert.Equal(t, true, a.Body["degraded"])
	for _, w := range a.Body["workers"].([]any) {
		w := w.(map[string]any)
		assert.Equal(t, "start_failed", w["lastExit"], a.Raw)
		assert.GreaterOrEqual(t, w["restarts"], float64(1), a.Raw)
		assert.Contains(t, []any{"starting", "stopping"}, w["state"])
	}

	a = s.do(t, http.MethodGet, "/v1/pools", nil)
	require.Equal(t, http.StatusOK, a.Status)
	for _, p := range a.Body["pools"].([]any) {
		p := p.(map[string]any)
		if p["name"] == "OK" {
			assert.NotContains(t, p, "lastError", "a healthy pool has no lastError")
		} else {
			assert.NotEmpty(t, p["lastError"])
		}
	}
}

// A pool that sizes itself shows its bounds and target; at 0 workers it is
// ready, its first task starts a worker, and its idle worker goes again,
// even though the asynchronous-task runner of the pool keeps looking for
// tasks.
func TestAPI_pool_scalesToZero(t *testing.T) {
	s := newServer(t, func(cfg *host.Config, _ *api.Options) {
		cfg.Pools = append(cfg.Pools, host.PoolConfig{Name: "Z", Plugin: "cpuload", MaxWorkers: 2, ScaleDownAfter: 300 * time.Millisecond, QueueLimit: 8})
	})
	pool := func() map[string]any {
		a := s.do(t, http.MethodGet, "/v1/pools/Z", nil)
		require.Equal(t, http.StatusOK, a.Status, a.Raw)
		return a.Body
	}
	p := pool()
	assert.EqualValues(t, 0, p["minWorkers"])
	assert.EqualValues(t, 2, p["maxWorkers"])
	assert.EqualValues(t, 0, p["target"])
	assert.Equal(t, "300ms", p["scaleDownAfter"])
	assert.Equal(t, false, p["degraded"])

	a := s.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Contains(t, a.Body["pools"].(map[string]any)["Z"], "ready: no worker running")

	a = s.do(t, http.MethodPost, "/v1/pools/Z/tasks", strings.NewReader(`{"duration": 1}`))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	// Polled from the test goroutine: do requires.
	for deadline := time.Now().Add(5 * time.Second); pool()["target"] != float64(0); time.Sleep(20 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the idle worker was never stopped")
	}
	for until := time.Now().Add(500 * time.Millisecond); time.Now().Before(until); time.Sleep(20 * time.Millisecond) {
		require.Equal(t, float64(0), pool()["target"], "nothing starts a worker while no task comes")
	}
}
