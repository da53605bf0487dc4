package host

import (
	"errors"
	"fmt"
	"sync"
)

// ErrPoolPaused means the pool is paused: it takes no new synchronous
// task until it is resumed (see [Manager.SetPaused]); retry later.
var ErrPoolPaused = errors.New("pool paused")

// CodePoolPaused is ErrPoolPaused's code.
const CodePoolPaused ErrorCode = "pool_paused"

// pausedPools are the names of the paused pools.
type pausedPools struct {
	mu    sync.RWMutex
	names map[string]struct{}
}

func (p *pausedPools) has(name string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.names[name]
	return ok
}

// SetPaused pauses or resumes the named pool (known or not yet: a pool a
// reload adds later starts paused). A paused pool refuses new tasks of
// [Manager.Submit] with ErrPoolPaused (code pool_paused); tasks running or
// already waiting for a worker go on, and [Manager.Reserve] still serves
// a queue consumer, which stops taking tasks of a paused pool itself. The
// asynchronous queue sets it for the whole cluster. Safe for concurrent
// use.
func (m *Manager) SetPaused(pool string, paused bool) {
	m.paused.mu.Lock()
	defer m.paused.mu.Unlock()
	if !paused {
		delete(m.paused.names, pool)
		return
	}
	if m.paused.names == nil {
		m.paused.names = map[string]struct{}{}
	}
	m.paused.names[pool] = struct{}{}
}

// Paused reports whether the named pool is paused.
func (m *Manager) Paused(pool string) bool { return m.paused.has(pool) }

// pausedError is the error of a task submitted to a paused pool.
func pausedError(pool string) error {
	return fmt.Errorf("%w: pool %s is paused: it takes no new tasks until it is resumed (POST /v1/pools/%s/resume); queued asynchronous tasks wait; retry later", ErrPoolPaused, pool, pool)
}
