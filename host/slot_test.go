package host

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Unit tests of dispatch, queueing, back-off, recycling, health checks and
// shutdown, on fake processes in a synctest bubble: time is virtual, so
// nothing here sleeps.

func TestSlot_dispatchLeastBusyThenFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		behave, release := blockUntil()
		s := &fakeStarter{behave: behave}
		m := newFakeManager(t, s, PoolConfig{Workers: 2, QueueLimit: 2})
		var wg sync.WaitGroup
		results := make([]Result, 4)
		errs := make([]error, 4)
		for i := range 4 {
			wg.Go(func() { results[i], errs[i] = m.Submit(t.Context(), "P", []byte{byte('a' + i)}) })
			synctest.Wait()
		}
		st, err := m.Pool("P")
		require.NoError(t, err)
		assert.Equal(t, 2, st.Running, "one task on each worker")
		assert.Equal(t, 2, st.QueueDepth, "the rest wait")
		_, err = m.Submit(t.Context(), "P", []byte("e"))
		assert.ErrorIs(t, err, ErrQueueFull, "the queue holds two")
		release()
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err)
			assert.Equal(t, []byte{byte('a' + i)}, results[i].Output)
		}
		assert.NotEqual(t, results[0].WorkerPID, results[1].WorkerPID, "least busy: the second task went to the idle worker")
	})
}

func TestSlot_startBackOffDoubles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStarter{fail: func(n int) error {
			if n <= 4 {
				return errors.New("no")
			}
			return nil
		}}
		m := newFakeManager(t, s, PoolConfig{Workers: 1, QueueLimit: 1})
		_, err := m.Submit(t.Context(), "P", []byte("x"))
		require.NoError(t, err, "the task waited for the fifth start")
		at := s.startTimes()
		require.Len(t, at, 5)
		for i, want := range []time.Duration{100, 200, 400, 800} {
			gap := at[i+1].Sub(at[i])
			assert.InDelta(t, float64(want*time.Millisecond), float64(gap), float64(want*time.Millisecond)/10+1, "gap %d", i)
		}
		st, _ := m.Pool("P")
		assert.Equal(t, 4, st.Workers[0].Restarts)
		assert.Equal(t, "start_failed", st.Workers[0].LastExit)
	})
}

func TestSlot_recycleAfterEachTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStarter{}
		m := newFakeManager(t, s, PoolConfig{Workers: 1, QueueLimit: 10, MaxTasksPerWorker: 1})
		seen := map[int]bool{}
		for range 3 {
			res, err := m.Submit(t.Context(), "P", []byte("x"))
			require.NoError(t, err)
			seen[res.WorkerPID] = true
			synctest.Wait()
		}
		assert.Len(t, seen, 3, "every task ran on a fresh worker")
		st, _ := m.Pool("P")
		assert.Equal(t, "recycled", st.Workers[0].LastExit)
		assert.Equal(t, 1, s.live(), "the recycled workers are gone")
	})
}

func TestSlot_crashFailsTaskAndReplaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		behave, release := blockUntil()
		defer release()
		s := &fakeStarter{behave: behave}
		m := newFakeManager(t, s, PoolConfig{Workers: 1, QueueLimit: 10})
		done := make(chan error)
		go func() { _, err := m.Submit(t.Context(), "P", []byte("x")); done <- err }()
		synctest.Wait()
		s.started()[0].crash()
		assert.ErrorIs(t, <-done, ErrWorkerCrashed)
		synctest.Wait()
		assert.Len(t, s.started(), 2, "replaced at once")
		st, _ := m.Pool("P")
		assert.Equal(t, "exited", st.Workers[0].LastExit)
	})
}

func TestSlot_frozenIdleWorkerIsReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStarter{}
		s.ping = func(ctx context.Context) error {
			if len(s.started()) == 1 { // the first process is frozen
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
		var mu sync.Mutex
		reasons := map[EventType]string{}
		events := WithEvents(func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Type == EventWorkerExited || e.Type == EventWorkerReplaced {
				reasons[e.Type] = e.Reason
			}
		})
		m := newFakeManager(t, s, PoolConfig{Workers: 1}, events)
		time.Sleep(healthInterval + healthTimeout + time.Millisecond)
		synctest.Wait()
		require.Len(t, s.started(), 2, "the frozen worker was replaced")
		st, _ := m.Pool("P")
		assert.Equal(t, "unhealthy", st.Workers[0].LastExit)
		assert.Equal(t, 1, st.Ready)
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, map[EventType]string{EventWorkerExited: "unhealthy", EventWorkerReplaced: "unhealthy"}, reasons, "the events' reason")
	})
}

func TestSlot_shutdownBoundedWithRemovedPoolHanging(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		behave, release := blockUntil()
		defer release()
		s := &fakeStarter{behave: behave}
		m := newFakeManager(t, s, PoolConfig{Workers: 1})
		done := make(chan error)
		go func() { _, err := m.Submit(context.Background(), "P", []byte("x")); done <- err }()
		synctest.Wait()
		// A reload removes the pool while its task hangs with no timeout.
		cfg := m.cfg
		cfg.Pools = nil
		require.NoError(t, m.Reload(cfg))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := m.Shutdown(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start), "shutdown ends with its grace period")
		assert.ErrorIs(t, <-done, ErrShuttingDown)
		assert.Zero(t, s.live())
	})
}
