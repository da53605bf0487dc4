package queue

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The counters follow a retried task and a canceled one; the queue depth
// and running gauges are there for every runner.
func TestEngine_metrics(t *testing.T) {
	e := newEngine(t)
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(e.Collector()))

	marker := filepath.Join(t.TempDir(), "crash-once")
	require.NoError(t, os.WriteFile(marker, nil, 0o600))
	task := submit(t, e, "F", `{"once": "`+marker+`"}`)
	waitFor(t, e, task.ID, ended)
	queued := submit(t, e, "M", `{"fault": "sleep", "ms": 5000}`)
	_, err := e.Cancel(t.Context(), queued.ID)
	require.NoError(t, err)

	assert.Equal(t, 1.0, testutil.ToFloat64(e.counters.retries.WithLabelValues("F")))
	assert.Equal(t, 1.0, testutil.ToFloat64(e.counters.ended.WithLabelValues("F", "succeeded")))
	assert.Equal(t, 1.0, testutil.ToFloat64(e.counters.ended.WithLabelValues("M", "canceled")))
	assert.Equal(t, 1.0, testutil.ToFloat64(e.counters.submitted.WithLabelValues("M")))

	families, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]int{}
	for _, f := range families {
		names[f.GetName()] = len(f.GetMetric())
	}
	assert.Equal(t, 4, names["wpm_async_queue_depth"], "one per pool and one for one-shots")
	assert.Equal(t, 1, names["wpm_async_tasks_running"])
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
