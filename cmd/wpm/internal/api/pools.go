package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// PoolList is the body of GET /v1/pools.
type PoolList struct {
	Pools []PoolView `json:"pools"`
	// Cluster sums each pool over the cluster's live hosts, this one
	// included, by pool name: pools that only other hosts run are here too.
	Cluster map[string]queue.ClusterPool `json:"cluster,omitempty"`
}

// PoolView is a pool as GET /v1/pools and /v1/pools/{pool} show it: its
// settings and live state. Durations in settings are Go durations ("5m0s");
// live ages are in milliseconds.
type PoolView struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Size is the number of workers the pool keeps now, its Target.
	Size int `json:"size"`
	// MinWorkers and MaxWorkers bound the pool's size (both its workers
	// for a fixed-size pool); Target is where it is between them now.
	MinWorkers        int     `json:"minWorkers"`
	MaxWorkers        int     `json:"maxWorkers"`
	Target            int     `json:"target"`
	ScaleDownAfter    string  `json:"scaleDownAfter"`
	Concurrency       int     `json:"concurrency"`
	MemoryLimitMB     int     `json:"memoryLimitMB"`
	QueueLimit        int     `json:"queueLimit"`
	TaskTimeout       string  `json:"taskTimeout"`
	MaxTasksPerWorker int     `json:"maxTasksPerWorker"`
	MaxWorkerAge      string  `json:"maxWorkerAge"`
	QueueDepth        int     `json:"queueDepth"`
	OldestQueuedMs    float64 `json:"oldestQueuedMs"`
	Running           int     `json:"running"`
	Ready             int     `json:"ready"`
	Degraded          bool    `json:"degraded"`
	// Paused says the pool is paused for the whole cluster
	// (POST /v1/pools/{pool}/pause).
	Paused bool `json:"paused"`
	// LastError is the pool's last failure to start a worker, if any.
	LastError   string       `json:"lastError,omitempty"`
	LastErrorAt *time.Time   `json:"lastErrorAt,omitempty"`
	Workers     []WorkerView `json:"workers"`
}

// WorkerView is the worker in one slot of a pool, as the API shows it.
type WorkerView struct {
	Slot      int     `json:"slot"`
	PID       int     `json:"pid"`
	State     string  `json:"state"`
	Running   int     `json:"running"`
	TasksDone int     `json:"tasksDone"`
	RSSBytes  uint64  `json:"rssBytes"`
	UptimeMs  float64 `json:"uptimeMs"`
	Restarts  int     `json:"restarts"`
	// LastExit says why the slot's previous worker went.
	LastExit string `json:"lastExit,omitempty"`
}

func viewPool(s host.PoolStats) PoolView {
	v := PoolView{
		Name:              s.Config.Name,
		Plugin:            s.Config.Plugin,
		Size:              s.Target,
		MinWorkers:        s.Config.MinWorkers,
		MaxWorkers:        s.Config.MaxWorkers,
		Target:            s.Target,
		ScaleDownAfter:    s.Config.ScaleDownAfter.String(),
		Concurrency:       s.Config.Concurrency,
		MemoryLimitMB:     s.Config.MemoryLimitMB,
		QueueLimit:        s.Config.QueueLimit,
		TaskTimeout:       s.Config.TaskTimeout.String(),
		MaxTasksPerWorker: s.Config.MaxTasksPerWorker,
		MaxWorkerAge:      s.Config.MaxWorkerAge.String(),
		QueueDepth:        s.QueueDepth,
		OldestQueuedMs:    ms(s.OldestQueued),
		Running:           s.Running,
		Ready:             s.Ready,
		Degraded:          s.Degraded(),
		Paused:            s.Paused,
		LastError:         s.LastError,
		Workers:           make([]WorkerView, len(s.Workers)),
	}
	if !s.LastErrorAt.IsZero() {
		t := s.LastErrorAt.UTC()
		v.LastErrorAt = &t
	}
	for i, w := range s.Workers {
		v.Workers[i] = WorkerView{
			Slot: w.Slot, PID: w.PID, State: w.State.String(), Running: w.Running, TasksDone: w.TasksDone,
			RSSBytes: w.RSSBytes, UptimeMs: ms(w.Uptime()), Restarts: w.Restarts, LastExit: w.LastExit,
		}
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *Server) listPools(c echo.Context) error {
	stats := s.mgr.Pools()
	list := PoolList{Pools: make([]PoolView, len(stats))}
	for i, p := range stats {
		list.Pools[i] = viewPool(p)
	}
	if s.opts.Tasks != nil {
		list.Cluster = s.opts.Tasks.ClusterPools()
	}
	return c.JSON(http.StatusOK, list)
}

func (s *Server) getPool(c echo.Context) error {
	p, err := s.mgr.Pool(c.Param("pool"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewPool(p))
}

func (s *Server) listPlugins(c echo.Context) error {
	plugins, err := s.mgr.Plugins()
	if err != nil {
		return err
	}
	views := make([]pluginView, len(plugins))
	for i, p := range plugins {
		views[i] = pluginView{Name: p.Name, Path: p.Path, SizeBytes: p.SizeBytes, ModTime: p.ModTime, SHA256: p.SHA256, Protocol: p.Protocol, Pools: p.Pools}
		if views[i].Pools == nil {
			views[i].Pools = []string{}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"plugins": views})
}

// pluginView is a plugin as GET /v1/plugins shows it.
type pluginView struct {
	Name      string    `json:"name"`
	Path      string    `json:"path"`
	SizeBytes int64     `json:"sizeBytes"`
	ModTime   time.Time `json:"modTime"`
	SHA256    string    `json:"sha256"`
	Protocol  string    `json:"protocol"`
	Pools     []string  `json:"pools"`
}
