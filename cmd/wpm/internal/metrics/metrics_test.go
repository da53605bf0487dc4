package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/cmd/wpm/internal/metrics"
	"github.com/wpmdev/wpm/host"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pools is a fixed PoolSource.
type pools []host.PoolStats

func (p pools) Pools() []host.PoolStats { return p }

func TestMetrics_observer(t *testing.T) {
	m := metrics.New()
	m.TaskFinished(host.TaskEvent{Pool: "CPU", Plugin: "cpuload", Code: "ok", QueueWait: 2 * time.Millisecond, Duration: 30 * time.Millisecond})
	m.TaskFinished(host.TaskEvent{Pool: "CPU", Plugin: "cpuload", Code: "ok", Duration: 3 * time.Second})
	m.TaskFinished(host.TaskEvent{Pool: "CPU", Plugin: "cpuload", Code: "task_timeout", Duration: time.Minute})
	m.TaskFinished(host.TaskEvent{Plugin: "memusage", Code: "memory_limit_exceeded", Duration: time.Second})
	m.WorkerReplaced("CPU", "cpuload", "task_timeout")
	m.WorkerReplaced("CPU", "cpuload", "exited")
	m.WorkerReplaced("CPU", "cpuload", "exited")
	m.PoolScaled("CPU", "cpuload", true, 2)
	m.PoolScaled("CPU", "cpuload", true, 3)
	m.PoolScaled("CPU", "cpuload", false, 2)

	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wpm_tasks_total Tasks run on pools that finished, by pool, plugin and outcome code ("ok" or the API error code).
# TYPE wpm_tasks_total counter
wpm_tasks_total{code="ok",plugin="cpuload",pool="CPU"} 2
wpm_tasks_total{code="task_timeout",plugin="cpuload",pool="CPU"} 1
# HELP wpm_oneshots_total One-shot runs that finished, by plugin and outcome code ("ok" or the API error code).
# TYPE wpm_oneshots_total counter
wpm_oneshots_total{code="memory_limit_exceeded",plugin="memusage"} 1
# HELP wpm_worker_restarts_total Pool workers replaced, by pool, plugin and reason ("exited", "recycled", "start_failed", or the error code that got the worker killed, like "task_timeout").
# TYPE wpm_worker_restarts_total counter
wpm_worker_restarts_total{plugin="cpuload",pool="CPU",reason="exited"} 2
wpm_worker_restarts_total{plugin="cpuload",pool="CPU",reason="task_timeout"} 1
# HELP wpm_pool_scale_events_total Times a pool that sizes itself changed its target, by pool, plugin and direction ("up": workers started for waiting tasks; "down": idle workers stopped).
# TYPE wpm_pool_scale_events_total counter
wpm_pool_scale_events_total{direction="down",plugin="cpuload",pool="CPU"} 1
wpm_pool_scale_events_total{direction="up",plugin="cpuload",pool="CPU"} 2
`), "wpm_tasks_total", "wpm_oneshots_total", "wpm_worker_restarts_total", "wpm_pool_scale_events_total")
	require.NoError(t, err)

	n, err := testutil.GatherAndCount(m.Registry(), "wpm_task_duration_seconds", "wpm_oneshot_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one histogram for CPU, one for memusage")
}

func TestMetrics_pools(t *testing.T) {
	m := metrics.New()
	require.NoError(t, m.WatchPools(pools{{
		Config:       host.PoolConfig{Name: "MEM", Plugin: "memusage", MinWorkers: 1, MaxWorkers: 4, MemoryLimitMB: 64},
		Target:       3,
		QueueDepth:   4,
		OldestQueued: 1500 * time.Millisecond,
		Running:      1,
		Ready:        1,
		Workers: []host.WorkerStats{
			{Slot: 0, PID: 10, State: host.StateBusy, RSSBytes: 30 << 20},
			{Slot: 1, State: host.StateStarting},
			{Slot: 2, PID: 12, State: host.StateStopping, RSSBytes: 0},
		},
	}}))
	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP wpm_pool_workers The pool's workers, by state (starting, idle, busy, stopping).
# TYPE wpm_pool_workers gauge
wpm_pool_workers{pool="MEM",state="busy"} 1
wpm_pool_workers{pool="MEM",state="idle"} 0
wpm_pool_workers{pool="MEM",state="starting"} 1
wpm_pool_workers{pool="MEM",state="stopping"} 1
# HELP wpm_pool_queue_depth Tasks waiting in the pool's queue for a worker.
# TYPE wpm_pool_queue_depth gauge
wpm_pool_queue_depth{pool="MEM"} 4
# HELP wpm_pool_oldest_queued_seconds How long the oldest task in the pool's queue has waited; 0 when the queue is empty.
# TYPE wpm_pool_oldest_queued_seconds gauge
wpm_pool_oldest_queued_seconds{pool="MEM"} 1.5
# HELP wpm_pool_size Workers the pool keeps running now: its target (a fixed-size pool's workers).
# TYPE wpm_pool_size gauge
wpm_pool_size{plugin="memusage",pool="MEM"} 3
# HELP wpm_pool_target_workers Workers the pool wants now, from its minWorkers to its maxWorkers.
# TYPE wpm_pool_target_workers gauge
wpm_pool_target_workers{pool="MEM"} 3
# HELP wpm_pool_min_workers The fewest workers the pool keeps (minWorkers; workers for a fixed size).
# TYPE wpm_pool_min_workers gauge
wpm_pool_min_workers{pool="MEM"} 1
# HELP wpm_pool_max_workers The most workers the pool starts for waiting tasks (maxWorkers; workers for a fixed size).
# TYPE wpm_pool_max_workers gauge
wpm_pool_max_workers{pool="MEM"} 4
# HELP wpm_pool_resident_memory_bytes Sum of the resident memory of the pool's live workers.
# TYPE wpm_pool_resident_memory_bytes gauge
wpm_pool_resident_memory_bytes{pool="MEM"} 3.145728e+07
# HELP wpm_pool_worker_memory_limit_bytes The memory limit of each of the pool's workers; 0 means none.
# TYPE wpm_pool_worker_memory_limit_bytes gauge
wpm_pool_worker_memory_limit_bytes{pool="MEM"} 6.7108864e+07
`), "wpm_pool_workers", "wpm_pool_queue_depth", "wpm_pool_oldest_queued_seconds", "wpm_pool_size",
		"wpm_pool_target_workers", "wpm_pool_min_workers", "wpm_pool_max_workers",
		"wpm_pool_resident_memory_bytes", "wpm_pool_worker_memory_limit_bytes")
	require.NoError(t, err)
}

func TestMetrics_lint(t *testing.T) {
	m := metrics.New()
	require.NoError(t, m.WatchPools(pools{}))
	m.TaskFinished(host.TaskEvent{Pool: "P", Plugin: "p", Code: "ok"})
	m.TaskFinished(host.TaskEvent{Plugin: "p", Code: "ok"})
	m.WorkerReplaced("P", "p", "exited")
	problems, err := testutil.GatherAndLint(m.Registry())
	require.NoError(t, err)
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "wpm_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestMetrics_handler(t *testing.T) {
	m := metrics.New()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "go_goroutines")
	assert.Contains(t, rec.Body.String(), "process_cpu_seconds_total")
}

func TestMetrics_openMetrics(t *testing.T) {
	m := metrics.New()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	m.Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Type"), "application/openmetrics-text")
	assert.True(t, strings.HasSuffix(rec.Body.String(), "# EOF\n"))
}
