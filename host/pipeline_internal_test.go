package host

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePiped is a fakeProc that pipelines with concurrency 1: its tasks
// wait for the one place in arrival order and count as started once they
// hold it.
type fakePiped struct {
	*fakeProc
	place chan struct{} // holds one token: the free place
}

var _ pipelinedProc = (*fakePiped)(nil)

func newFakePiped(f *fakeProc) proc {
	p := &fakePiped{fakeProc: f, place: make(chan struct{}, 1)}
	p.place <- struct{}{}
	return p
}

func (f *fakePiped) openPipeline() bool { return true }

func (f *fakePiped) runSeq(ctx context.Context, input []byte, _ int, doomed func(), moved <-chan struct{}) ([]byte, time.Duration, error, bool) {
	select {
	case <-f.place:
	case <-ctx.Done():
		return nil, 0, contextFailure(ctx), true // canceled while waiting
	case <-moved:
		return nil, 0, &notStarted{err: errMoved}, true
	case <-f.done:
		doomed()
		return nil, 0, &notStarted{err: f.exit.Err}, false
	}
	defer func() { f.place <- struct{}{} }()
	out, err, healthy := f.Run(ctx, input, doomed)
	return out, time.Microsecond, err, healthy
}

func TestPipeline_fakeCrashSendsWaitingTasksAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		behave, release := blockUntil()
		s := &fakeStarter{wrap: newFakePiped}
		m := newFakeManager(t, s, PoolConfig{Workers: 2, Concurrency: 1, Prefetch: 4, QueueLimit: 16})
		for range 4 { // short tasks: the pool may prefetch
			_, err := m.Submit(t.Context(), "P", []byte("warm"))
			require.NoError(t, err)
		}
		s.mu.Lock()
		for _, p := range s.procs {
			p.behave = behave
		}
		s.mu.Unlock()

		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() { _, errs[i] = m.Submit(t.Context(), "P", []byte{byte('a' + i)}) })
			synctest.Wait()
		}
		st, err := m.Pool("P")
		require.NoError(t, err)
		require.Equal(t, 6, st.Running, "two run, four wait at the workers")
		assert.Zero(t, st.QueueDepth)
		s.started()[0].crash()
		synctest.Wait()
		release()
		wg.Wait()
		failed := 0
		for _, err := range errs {
			if err != nil {
				assert.ErrorIs(t, err, ErrWorkerCrashed)
				failed++
			}
		}
		assert.Equal(t, 1, failed, "only the task that had started fails")
	})
}
