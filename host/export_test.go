package host

import "time"

// SetStallAfter sets how long a busy worker of the named pool may go
// without answering before it gets no more prefetched tasks, so that tests
// can keep tasks waiting at a worker as long as they need.
func (m *Manager) SetStallAfter(pool string, d time.Duration) {
	p, _ := m.pool(pool)
	p.mu.Lock()
	p.stallAfter = d
	p.mu.Unlock()
}
