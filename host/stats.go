package host

import (
	"time"
)

// PoolStats is a snapshot of one pool: its settings and live state.
type PoolStats struct {
	// Config is the pool's configuration, defaults filled in.
	Config PoolConfig
	// Paused says the pool is paused ([Manager.SetPaused]).
	Paused bool
	// QueueDepth is how many tasks wait for a worker.
	QueueDepth int
	// OldestQueued is how long the oldest waiting task has waited.
	OldestQueued time.Duration
	// Running is how many tasks are on workers now.
	Running int
	// Ready is how many workers are idle or busy (not starting or stopping).
	Ready int
	// Target is how many workers the pool wants now: Config.Workers for a
	// fixed-size pool; for one that sizes itself, from Config.MinWorkers
	// to Config.MaxWorkers, by demand.
	Target int
	// LastError is the last failure to start a worker, and when it was.
	LastError   string
	LastErrorAt time.Time
	// Workers has one entry per slot.
	Workers []WorkerStats
}

// Degraded reports whether the pool has fewer ready workers than it wants
// now (Target).
func (s PoolStats) Degraded() bool { return s.Ready < s.Target }

// WorkerStats is a snapshot of the worker in one slot of a pool.
type WorkerStats struct {
	Slot      int
	PID       int   // 0 while starting
	State     State // never stopped: a slot whose worker is gone shows stopping
	Running   int   // tasks on it now
	TasksDone int
	RSSBytes  uint64
	StartedAt time.Time // zero while starting
	// Restarts counts the workers this slot has replaced, and LastExit says
	// why the last one went ("exited", "recycled", "task_timeout", ...: a
	// [Cause]'s name).
	Restarts int
	LastExit string
}

// Uptime is how long the worker has been running.
func (w WorkerStats) Uptime() time.Duration {
	if w.StartedAt.IsZero() {
		return 0
	}
	return time.Since(w.StartedAt)
}

// PoolNames returns the names of the pools, sorted.
func (m *Manager) PoolNames() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]string(nil), m.poolNames...)
}

// HasPool reports whether the manager runs the named pool; it is cheaper
// than Pool.
func (m *Manager) HasPool(name string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.pools[name]
	return ok
}

// Pools returns a snapshot of every pool, sorted by name.
func (m *Manager) Pools() []PoolStats {
	pools := m.poolList()
	out := make([]PoolStats, len(pools))
	for i, p := range pools {
		out[i] = p.stats()
		out[i].Paused = m.paused.has(p.name)
	}
	return out
}

// Pool returns a snapshot of the named pool, or an error matching
// ErrUnknownPool.
func (m *Manager) Pool(name string) (PoolStats, error) {
	p, ok := m.pool(name)
	if !ok {
		return PoolStats{}, m.unknownPool(name)
	}
	s := p.stats()
	s.Paused = m.paused.has(name)
	return s, nil
}

// PoolConfig returns the named pool's current configuration, defaults
// filled in and reloads applied, or an error matching ErrUnknownPool. It
// reads no process state, so it is much cheaper than Pool: use it to learn
// a setting on a task's path. Safe for concurrent use.
func (m *Manager) PoolConfig(name string) (PoolConfig, error) {
	p, ok := m.pool(name)
	if !ok {
		return PoolConfig{}, m.unknownPool(name)
	}
	return p.settings(), nil
}

func (p *pool) stats() PoolStats {
	p.mu.Lock()
	s := PoolStats{
		Config:       p.cfg,
		QueueDepth:   p.queue.len(),
		OldestQueued: p.queue.oldestWait(),
		Running:      p.running,
	}
	if p.lastErr != nil {
		s.LastError, s.LastErrorAt = p.lastErr.Error(), p.lastErrT
	}
	s.Workers = make([]WorkerStats, len(p.slots))
	procs := make([]proc, len(p.slots))
	for i, sl := range p.slots {
		w := sl.worker
		if !sl.removed {
			s.Target++
		}
		ws := WorkerStats{
			Slot:      sl.id,
			State:     min(w.state, StateStopping),
			Running:   w.inflight,
			TasksDone: w.tasksDone,
			Restarts:  sl.restarts,
			LastExit:  sl.lastExit.String(),
		}
		if w.proc != nil {
			ws.PID, ws.StartedAt = w.proc.PID(), w.proc.StartedAt()
		}
		if w.state == StateIdle || w.state == StateBusy {
			s.Ready++
			procs[i] = w.proc
		}
		s.Workers[i] = ws
	}
	p.mu.Unlock()
	// Read memory outside the lock; a worker that just went reads as 0.
	for i, pr := range procs {
		if pr != nil {
			s.Workers[i].RSSBytes, _ = pr.RSS()
		}
	}
	return s
}
