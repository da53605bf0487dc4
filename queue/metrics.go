package queue

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// collectBound bounds the reads of queue depths at a scrape.
const collectBound = time.Second

// counters are the engine's Prometheus counters.
type counters struct {
	submitted    *prometheus.CounterVec
	ended        *prometheus.CounterVec
	retries      *prometheus.CounterVec
	redeliveries *prometheus.CounterVec
	// delayed and scheduleRuns are schedule.go's.
	delayed      *prometheus.CounterVec
	scheduleRuns *prometheus.CounterVec
}

func newCounters() counters {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "wpm", Subsystem: "async", Name: name, Help: help}
	}
	return counters{
		submitted: prometheus.NewCounterVec(opts("tasks_submitted_total",
			`Asynchronous tasks accepted, by pool ("" for one-shots).`), []string{"pool"}),
		ended: prometheus.NewCounterVec(opts("tasks_ended_total",
			`Asynchronous tasks that ended, by pool ("" for one-shots) and state: succeeded, failed or canceled.`), []string{"pool", "state"}),
		retries: prometheus.NewCounterVec(opts("retries_total",
			"Attempts of asynchronous tasks that failed and were queued again for a retry, by pool."), []string{"pool"}),
		redeliveries: prometheus.NewCounterVec(opts("redeliveries_total",
			`Asynchronous tasks that were running when their runner went away (wpm killed) and run again, by pool ("" for one-shots).`), []string{"pool"}),
		delayed: prometheus.NewCounterVec(opts("tasks_delayed_total",
			`Asynchronous tasks accepted with a delay (?delay, ?runAt in the future), scheduled until then, by pool ("" for one-shots).`), []string{"pool"}),
		scheduleRuns: prometheus.NewCounterVec(opts("schedule_runs_total",
			"Tasks made by a schedule's ticks (one per tick across the cluster), by schedule."), []string{"schedule"}),
	}
}

// Collector returns the engine's metrics for a Prometheus registry: the
// counters above, tasks running here, and the queue depth per pool read
// from the consumers at each scrape.
func (e *Engine) Collector() prometheus.Collector { return collector{e} }

// collector is the engine's prometheus.Collector.
type collector struct{ e *Engine }

var (
	queueDepthDesc = prometheus.NewDesc("wpm_async_queue_depth",
		`Asynchronous tasks waiting in the queue (not yet handed to a runner), by pool ("" for one-shots).`, []string{"pool"}, nil)
	runningDesc = prometheus.NewDesc("wpm_async_tasks_running",
		"Asynchronous tasks running on this wpm.", nil, nil)
)

// Describe sends every metric's description.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	c.e.counters.submitted.Describe(ch)
	c.e.counters.ended.Describe(ch)
	c.e.counters.retries.Describe(ch)
	c.e.counters.redeliveries.Describe(ch)
	c.e.counters.delayed.Describe(ch)
	c.e.counters.scheduleRuns.Describe(ch)
	ch <- queueDepthDesc
	ch <- runningDesc
	ch <- pausedDesc
}

// Collect sends every metric's value.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	e.counters.submitted.Collect(ch)
	e.counters.ended.Collect(ch)
	e.counters.retries.Collect(ch)
	e.counters.redeliveries.Collect(ch)
	e.counters.delayed.Collect(ch)
	e.counters.scheduleRuns.Collect(ch)
	e.mu.Lock()
	running := len(e.running)
	runners := make(map[string]*runner, len(e.runnerOf))
	for k, r := range e.runnerOf {
		runners[k] = r
	}
	e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, float64(running))
	e.collectPaused(ch)
	ctx, cancel := context.WithTimeout(context.Background(), collectBound)
	defer cancel()
	for pool, r := range runners {
		var depth uint64
		var err error
		for _, cons := range r.cons {
			var info *jetstream.ConsumerInfo
			if info, err = cons.Info(ctx); err != nil {
				break
			}
			depth += info.NumPending
		}
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(depth), pool)
	}
}
