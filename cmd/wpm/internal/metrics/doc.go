// Package metrics is wpm's Prometheus instrumentation. [Metrics] owns a
// registry of its own (never the global default one): it counts finished
// tasks and worker replacements as a [host.Observer], reads the pools'
// live state from the manager at scrape time, and adds the Go runtime and
// process collectors. Every metric is named wpm_* (apart from the go_* and
// process_* families of those two collectors) and carries only
// low-cardinality labels: pool, plugin, outcome code, worker state and
// replacement reason, never a pid or a task ID.
package metrics
