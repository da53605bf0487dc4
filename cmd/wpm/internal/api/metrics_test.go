package api_test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape gets /metrics and parses it with Prometheus's own text parser.
func (s *server) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	a := s.doRaw(t, http.MethodGet, "/metrics", nil, s.token)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	require.True(t, strings.HasPrefix(a.Header.Get("Content-Type"), "text/plain"), a.Header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(a.Raw))
	require.NoError(t, err)
	return fams
}

// series returns the metric of family name whose labels are exactly
// labels, or nil.
func series(fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if maps.Equal(got, labels) {
			return m
		}
	}
	return nil
}

func counter(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	if m := series(fams, name, labels); m != nil {
		return m.GetCounter().GetValue()
	}
	return -1
}

func gauge(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	if m := series(fams, name, labels); m != nil {
		return m.GetGauge().GetValue()
	}
	return -1
}

func TestAPI_metrics(t *testing.T) {
	s := newServer(t)
	for range 3 {
		require.Equal(t, http.StatusOK, s.post(t, "/v1/pools/CPU/tasks", `{"duration": 2}`).Status)
	}
	requireError(t, s.post(t, "/v1/pools/CPU/tasks", `{"duration": -1}`), http.StatusBadRequest, "invalid_task")
	requireError(t, s.post(t, "/v1/pools/M/tasks", `{"fault": "fail"}`), http.StatusInternalServerError, "task_failed")
	requireError(t, s.post(t, "/v1/pools/M/tasks", `{"fault": "crash"}`), http.StatusBadGateway, "worker_crashed")
	require.Equal(t, http.StatusOK, s.post(t, "/v1/plugins/cpuload/run", `{"duration": 1}`).Status)
	requireError(t, s.post(t, "/v1/plugins/cpuload/run", `{"duration": "x"}`), http.StatusBadRequest, "invalid_task")
	// Names a caller makes up never become label values.
	requireError(t, s.post(t, "/v1/pools/made-up/tasks", `{}`), http.StatusNotFound, "unknown_pool")
	requireError(t, s.post(t, "/v1/plugins/made-up/run", `{}`), http.StatusNotFound, "unknown_plugin")

	// The crashed worker is counted once it has been replaced, and the
	// pools are back to one idle worker each.
	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fams = s.scrape(t)
		return counter(fams, "wpm_worker_restarts_total", map[string]string{"pool": "M", "plugin": "misbehave", "reason": "exited"}) == 1 &&
			gauge(fams, "wpm_pool_workers", map[string]string{"pool": "M", "state": "idle"}) == 1 &&
			gauge(fams, "wpm_pool_workers", map[string]string{"pool": "CPU", "state": "idle"}) == 1
	}, 10*time.Second, 10*time.Millisecond)

	wantType := map[string]dto.MetricType{
		"wpm_tasks_total":                           dto.MetricType_COUNTER,
		"wpm_task_duration_seconds":                 dto.MetricType_HISTOGRAM,
		"wpm_task_queue_wait_seconds":               dto.MetricType_HISTOGRAM,
		"wpm_oneshots_total":                        dto.MetricType_COUNTER,
		"wpm_oneshot_duration_seconds":              dto.MetricType_HISTOGRAM,
		"wpm_oneshot_queue_wait_seconds":            dto.MetricType_HISTOGRAM,
		"wpm_worker_restarts_total":                 dto.MetricType_COUNTER,
		"wpm_pool_size":                             dto.MetricType_GAUGE,
		"wpm_pool_workers":                          dto.MetricType_GAUGE,
		"wpm_pool_ready_workers":                    dto.MetricType_GAUGE,
		"wpm_pool_queue_depth":                      dto.MetricType_GAUGE,
		"wpm_pool_oldest_queued_seconds":            dto.MetricType_GAUGE,
		"wpm_pool_running_tasks":                    dto.MetricType_GAUGE,
		"wpm_pool_resident_memory_bytes":            dto.MetricType_GAUGE,
		"wpm_pool_worker_resident_memory_max_bytes": dto.MetricType_GAUGE,
		"wpm_pool_worker_memory_limit_bytes":        dto.MetricType_GAUGE,
		"wpm_pool_target_workers":                   dto.MetricType_GAUGE,
		"wpm_pool_min_workers":                      dto.MetricType_GAUGE,
		"wpm_pool_max_workers":                      dto.MetricType_GAUGE,
		"go_goroutines":                             dto.MetricType_GAUGE,
		"process_resident_memory_bytes":             dto.MetricType_GAUGE,
	}
	wantLabels := map[string][]string{
		"wpm_tasks_total":                           {"code", "plugin", "pool"},
		"wpm_task_duration_seconds":                 {"pool"},
		"wpm_task_queue_wait_seconds":               {"pool"},
		"wpm_oneshots_total":                        {"code", "plugin"},
		"wpm_oneshot_duration_seconds":              {"plugin"},
		"wpm_oneshot_queue_wait_seconds":            {"plugin"},
		"wpm_worker_restarts_total":                 {"plugin", "pool", "reason"},
		"wpm_pool_size":                             {"plugin", "pool"},
		"wpm_pool_workers":                          {"pool", "state"},
		"wpm_pool_ready_workers":                    {"pool"},
		"wpm_pool_queue_depth":                      {"pool"},
		"wpm_pool_oldest_queued_seconds":            {"pool"},
		"wpm_pool_running_tasks":                    {"pool"},
		"wpm_pool_resident_memory_bytes":            {"pool"},
		"wpm_pool_worker_resident_memory_max_bytes": {"pool"},
		"wpm_pool_worker_memory_limit_bytes":        {"pool"},
		"wpm_pool_target_workers":                   {"pool"},
		"wpm_pool_min_workers":                      {"pool"},
		"wpm_pool_max_workers":                      {"pool"},
		"wpm_pool_scale_events_total":               {"direction", "plugin", "pool"},
	}
	for name, typ := range wantType {
		f := fams[name]
		if !assert.NotNil(t, f, "family %s is missing", name) {
			continue
		}
		assert.Equal(t, typ, f.GetType(), name)
		assert.NotEmpty(t, f.GetHelp(), name)
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "wpm_") {
			continue
		}
		want, ok := wantLabels[name]
		if !assert.True(t, ok, "family %s is not known to this test (and to the README?)", name) {
			continue
		}
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName())
				assert.NotEqual(t, "made-up", l.GetValue(), "%s has a caller-made label value", name)
			}
			slices.Sort(got)
			assert.Equal(t, want, got, name)
		}
	}

	// Counters.
	assert.EqualValues(t, 3, counter(fams, "wpm_tasks_total", map[string]string{"pool": "CPU", "plugin": "cpuload", "code": "ok"}))
	assert.EqualValues(t, 1, counter(fams, "wpm_tasks_total", map[string]string{"pool": "CPU", "plugin": "cpuload", "code": "invalid_task"}))
	assert.EqualValues(t, 1, counter(fams, "wpm_tasks_total", map[string]string{"pool": "M", "plugin": "misbehave", "code": "task_failed"}))
	assert.EqualValues(t, 1, counter(fams, "wpm_tasks_total", map[string]string{"pool": "M", "plugin": "misbehave", "code": "worker_crashed"}))
	assert.EqualValues(t, 1, counter(fams, "wpm_oneshots_total", map[string]string{"plugin": "cpuload", "code": "ok"}))
	assert.EqualValues(t, 1, counter(fams, "wpm_oneshots_total", map[string]string{"plugin": "cpuload", "code": "invalid_task"}))
	assert.Len(t, fams["wpm_tasks_total"].GetMetric(), 4, "one series per pool, plugin and code seen")

	// Histograms.
	h := series(fams, "wpm_task_duration_seconds", map[string]string{"pool": "CPU"}).GetHistogram()
	assert.EqualValues(t, 4, h.GetSampleCount())
	assert.Greater(t, h.GetSampleSum(), 0.006, "three tasks of at least 2 ms")
	assert.NotEmpty(t, h.GetBucket())
	assert.EqualValues(t, 4, series(fams, "wpm_task_queue_wait_seconds", map[string]string{"pool": "CPU"}).GetHistogram().GetSampleCount())
	assert.EqualValues(t, 2, series(fams, "wpm_task_duration_seconds", map[string]string{"pool": "M"}).GetHistogram().GetSampleCount())
	assert.EqualValues(t, 2, series(fams, "wpm_oneshot_duration_seconds", map[string]string{"plugin": "cpuload"}).GetHistogram().GetSampleCount())
	assert.EqualValues(t, 2, series(fams, "wpm_oneshot_queue_wait_seconds", map[string]string{"plugin": "cpuload"}).GetHistogram().GetSampleCount())
	assert.Nil(t, series(fams, "wpm_task_duration_seconds", map[string]string{"pool": "MEM"}), "no task ran on MEM")

	// Pool gauges, read at scrape time.
	for _, pool := range []string{"CPU", "MEM", "M"} {
		one := map[string]string{"pool": pool}
		var sum float64
		for _, st := range []string{"starting", "idle", "busy", "stopping"} {
			v := gauge(fams, "wpm_pool_workers", map[string]string{"pool": pool, "state": st})
			assert.GreaterOrEqual(t, v, 0.0, "%s %s: every state is reported", pool, st)
			sum += v
		}
		assert.EqualValues(t, 1, sum, pool)
		assert.EqualValues(t, 1, gauge(fams, "wpm_pool_ready_workers", one), pool)
		assert.EqualValues(t, 0, gauge(fams, "wpm_pool_queue_depth", one), pool)
		assert.EqualValues(t, 0, gauge(fams, "wpm_pool_oldest_queued_seconds", one), pool)
		assert.EqualValues(t, 0, gauge(fams, "wpm_pool_running_tasks", one), pool)
		rss := gauge(fams, "wpm_pool_resident_memory_bytes", one)
		assert.Greater(t, rss, float64(1<<20), "%s: a live worker has resident memory", pool)
		assert.Equal(t, rss, gauge(fams, "wpm_pool_worker_resident_memory_max_bytes", one), "%s: one worker, so max = sum", pool)
	}
	assert.EqualValues(t, 1, gauge(fams, "wpm_pool_size", map[string]string{"pool": "MEM", "plugin": "memusage"}))
	assert.Len(t, fams["wpm_pool_workers"].GetMetric(), 3*4)
}

// A queued task shows in queue depth and age, a running one in running
// tasks and a busy worker.
func TestAPI_metrics_queue(t *testing.T) {
	s := newServer(t)
	done := make(chan int, 2)
	go func() { done <- s.post(t, "/v1/pools/M/tasks", `{"fault": "sleep", "ms": 400}`).Status }()
	require.Eventually(t, func() bool { p, _ := s.mgr.Pool("M"); return p.Running == 1 }, 5*time.Second, time.Millisecond)
	go func() { done <- s.post(t, "/v1/pools/M/tasks", `{"fault": "echo"}`).Status }()
	require.Eventually(t, func() bool { p, _ := s.mgr.Pool("M"); return p.QueueDepth == 1 }, 5*time.Second, time.Millisecond)

	fams := s.scrape(t)
	m := map[string]string{"pool": "M"}
	assert.EqualValues(t, 1, gauge(fams, "wpm_pool_queue_depth", m))
	assert.Greater(t, gauge(fams, "wpm_pool_oldest_queued_seconds", m), 0.0)
	assert.EqualValues(t, 1, gauge(fams, "wpm_pool_running_tasks", m))
	assert.EqualValues(t, 1, gauge(fams, "wpm_pool_workers", map[string]string{"pool": "M", "state": "busy"}))
	assert.Equal(t, http.StatusOK, <-done)
	assert.Equal(t, http.StatusOK, <-done)

	fams = s.scrape(t)
	h := series(fams, "wpm_task_queue_wait_seconds", m).GetHistogram()
	require.NotNil(t, h)
	assert.EqualValues(t, 2, h.GetSampleCount())
	assert.Greater(t, h.GetSampleSum(), 0.0, "the second task waited for the first")
}
