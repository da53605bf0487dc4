package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wpmdev/wpm/host"
)

// workerStates are the states wpm_pool_workers reports, each always
// present (0 when no worker is in it) so that a series does not vanish
// while its state is empty. They are the API's states: a worker whose
// process is gone and whose slot waits to start the next one counts as
// stopping.
var workerStates = []host.State{host.StateStarting, host.StateIdle, host.StateBusy, host.StateStopping}

// poolCollector turns the pools' snapshots into gauges at scrape time.
type poolCollector struct {
	src PoolSource

	size, workers, ready, queueDepth, oldestQueued, running *prometheus.Desc
	rssSum, rssMax, memoryLimit                             *prometheus.Desc
	target, minWorkers, maxWorkers                          *prometheus.Desc
}

func newPoolCollector(src PoolSource) *poolCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "pool", name), help, append([]string{"pool"}, labels...), nil)
	}
	return &poolCollector{
		src:          src,
		size:         desc("size", "Workers the pool keeps running now: its target (a fixed-size pool's workers).", "plugin"),
		target:       desc("target_workers", "Workers the pool wants now, from its minWorkers to its maxWorkers."),
		minWorkers:   desc("min_workers", "The fewest workers the pool keeps (minWorkers; workers for a fixed size)."),
		maxWorkers:   desc("max_workers", "The most workers the pool starts for waiting tasks (maxWorkers; workers for a fixed size)."),
		workers:      desc("workers", "The pool's workers, by state (starting, idle, busy, stopping).", "state"),
		ready:        desc("ready_workers", "The pool's workers that take tasks (idle or busy)."),
		queueDepth:   desc("queue_depth", "Tasks waiting in the pool's queue for a worker."),
		oldestQueued: desc("oldest_queued_seconds", "How long the oldest task in the pool's queue has waited; 0 when the queue is empty."),
		running:      desc("running_tasks", "Tasks running on the pool's workers now."),
		rssSum:       desc("resident_memory_bytes", "Sum of the resident memory of the pool's live workers."),
		rssMax:       desc("worker_resident_memory_max_bytes", "Resident memory of the pool's largest live worker."),
		memoryLimit:  desc("worker_memory_limit_bytes", "The memory limit of each of the pool's workers; 0 means none."),
	}
}

// Describe sends every descriptor the collector uses.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.size, c.workers, c.ready, c.queueDepth, c.oldestQueued, c.running, c.rssSum, c.rssMax, c.memoryLimit, c.target, c.minWorkers, c.maxWorkers} {
		ch <- d
	}
}

// Collect reads one snapshot of every pool and sends its gauges.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, p := range c.src.Pools() {
		name := p.Config.Name
		byState := make(map[host.State]int, len(workerStates))
		var sum, largest uint64
		for _, w := range p.Workers {
			byState[w.State]++
			sum += w.RSSBytes
			largest = max(largest, w.RSSBytes)
		}
		gauge(c.size, float64(p.Target), name, p.Config.Plugin)
		gauge(c.target, float64(p.Target), name)
		gauge(c.minWorkers, float64(p.Config.MinWorkers), name)
		gauge(c.maxWorkers, float64(p.Config.MaxWorkers), name)
		for _, s := range workerStates {
			gauge(c.workers, float64(byState[s]), name, s.String())
			delete(byState, s)
		}
		for s, n := range byState { // a state added to host later
			gauge(c.workers, float64(n), name, s.String())
		}
		gauge(c.ready, float64(p.Ready), name)
		gauge(c.queueDepth, float64(p.QueueDepth), name)
		gauge(c.oldestQueued, p.OldestQueued.Seconds(), name)
		gauge(c.running, float64(p.Running), name)
		gauge(c.rssSum, float64(sum), name)
		gauge(c.rssMax, float64(largest), name)
		gauge(c.memoryLimit, float64(p.Config.MemoryLimitMB)*(1<<20), name)
	}
}
