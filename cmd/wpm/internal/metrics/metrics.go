package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wpmdev/wpm/host"
)

// Namespace starts the name of every metric of wpm's own.
const Namespace = "wpm"

// Bucket bounds, in seconds. Tasks run from a few milliseconds to the
// default five-minute timeout; queue waits are usually far shorter.
var (
	durationBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	queueWaitBuckets = []float64{.0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// Metrics is wpm's set of metrics and the registry that serves them. It
// implements [host.Observer]: pass it to [host.New] with
// [host.WithObserver], then hand the manager to [Metrics.WatchPools]. It is
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	tasks           *prometheus.CounterVec
	taskDuration    *prometheus.HistogramVec
	taskQueueWait   *prometheus.HistogramVec
	oneShots        *prometheus.CounterVec
	oneShotDuration *prometheus.HistogramVec
	oneShotWait     *prometheus.HistogramVec
	restarts        *prometheus.CounterVec
	scaled          *prometheus.CounterVec
}

var (
	_ host.Observer      = (*Metrics)(nil)
	_ host.ScaleObserver = (*Metrics)(nil)
)

// New makes the metrics and registers them, with the Go runtime and
// process collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tasks_total",
			Help: `Tasks run on pools that finished, by pool, plugin and outcome code ("ok" or the API error code).`,
		}, []string{"pool", "plugin", "code"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "task_duration_seconds",
			Help:    "Time from acceptance to answer of tasks run on pools, queue wait included, by pool.",
			Buckets: durationBuckets,
		}, []string{"pool"}),
		taskQueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "task_queue_wait_seconds",
			Help:    "Time tasks waited in a pool's queue for a worker, by pool.",
			Buckets: queueWaitBuckets,
		}, []string{"pool"}),
		oneShots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "oneshots_total",
			Help: `One-shot runs that finished, by plugin and outcome code ("ok" or the API error code).`,
		}, []string{"plugin", "code"}),
		oneShotDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "oneshot_duration_seconds",
			Help:    "Time from acceptance to answer of one-shot runs, process start and wait for a place included, by plugin.",
			Buckets: durationBuckets,
		}, []string{"plugin"}),
		oneShotWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "oneshot_queue_wait_seconds",
			Help:    "Time one-shot runs waited for a free place under oneShot.maxConcurrent, by plugin.",
			Buckets: queueWaitBuckets,
		}, []string{"plugin"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "worker_restarts_total",
			Help: `Pool workers replaced, by pool, plugin and reason ("exited", "recycled", "start_failed", or the error code that got the worker killed, like "task_timeout").`,
		}, []string{"pool", "plugin", "reason"}),
		scaled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "pool_scale_events_total",
			Help: `Times a pool that sizes itself changed its target, by pool, plugin and direction ("up": workers started for waiting tasks; "down": idle workers stopped).`,
		}, []string{"pool", "plugin", "direction"}),
	}
	m.reg.MustRegister(
		m.tasks, m.taskDuration, m.taskQueueWait,
		m.oneShots, m.oneShotDuration, m.oneShotWait,
		m.restarts, m.scaled,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry every wpm metric is in, for tests and for
// programs that add their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// TaskFinished counts a finished task and observes its durations. It is
// part of [host.Observer].
func (m *Metrics) TaskFinished(ev host.TaskEvent) {
	if ev.Pool == "" {
		m.oneShots.WithLabelValues(ev.Plugin, ev.Code).Inc()
		m.oneShotDuration.WithLabelValues(ev.Plugin).Observe(ev.Duration.Seconds())
		m.oneShotWait.WithLabelValues(ev.Plugin).Observe(ev.QueueWait.Seconds())
		return
	}
	m.tasks.WithLabelValues(ev.Pool, ev.Plugin, ev.Code).Inc()
	m.taskDuration.WithLabelValues(ev.Pool).Observe(ev.Duration.Seconds())
	m.taskQueueWait.WithLabelValues(ev.Pool).Observe(ev.QueueWait.Seconds())
}

// WorkerReplaced counts a replaced worker. It is part of [host.Observer].
func (m *Metrics) WorkerReplaced(pool, plugin, reason string) {
	m.restarts.WithLabelValues(pool, plugin, reason).Inc()
}

// PoolScaled counts a change of a pool's target. It makes Metrics a
// [host.ScaleObserver].
func (m *Metrics) PoolScaled(pool, plugin string, up bool, _ int) {
	dir := "down"
	if up {
		dir = "up"
	}
	m.scaled.WithLabelValues(pool, plugin, dir).Inc()
}

// PoolSource gives the pools' snapshots; [*host.Manager] is one.
type PoolSource interface {
	Pools() []host.PoolStats
}

// WatchPools registers a collector that reads src's pools at every scrape:
// queue depth and age, running tasks, workers by state, and the workers'
// resident memory. Call it once.
func (m *Metrics) WatchPools(src PoolSource) error {
	return m.reg.Register(newPoolCollector(src))
}
