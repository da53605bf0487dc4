package host

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rssReads counts what the started processes were asked of /proc.
func rssReads(s *fakeStarter) int64 {
	var n int64
	for _, p := range s.started() {
		n += p.rssReads.Load()
	}
	return n
}

// PoolConfig answers the pool's current settings, reloads included,
// without reading a worker's memory as a snapshot (Pool) does.
func TestManager_PoolConfig_readsNoProcessState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStarter{}
		m := newFakeManager(t, s, PoolConfig{Workers: 2, QueueLimit: 4, TaskTimeout: time.Second})
		synctest.Wait()
		require.Len(t, s.started(), 2)

		_, err := m.Pool("P")
		require.NoError(t, err)
		require.Equal(t, int64(2), rssReads(s), "a snapshot reads every worker's memory")

		pc, err := m.PoolConfig("P")
		require.NoError(t, err)
		assert.Equal(t, time.Second, pc.TaskTimeout)
		assert.Equal(t, 2, pc.Workers)
		assert.Equal(t, int64(2), rssReads(s), "PoolConfig reads no process state")

		cfg := m.cfg
		cfg.Pools = []PoolConfig{{Name: "P", Plugin: "fake", Workers: 2, QueueLimit: 4, TaskTimeout: 3 * time.Second}}
		require.NoError(t, m.Reload(cfg))
		pc, err = m.PoolConfig("P")
		require.NoError(t, err)
		assert.Equal(t, 3*time.Second, pc.TaskTimeout, "the reloaded settings")
		assert.Equal(t, int64(2), rssReads(s))

		_, err = m.PoolConfig("nope")
		assert.ErrorIs(t, err, ErrUnknownPool)
	})
}
