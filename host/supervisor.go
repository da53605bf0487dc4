package host

import (
	"context"
	"sync"
)

// supervisor owns every actor a Manager starts — pool slots, one-shot
// slots and warm spares, pools draining after a reload — in the manner of
// oklog/run: each actor runs until its context is interrupted or its work
// is done, and wait returns only once all have stopped.
type supervisor struct {
	ctx       context.Context // every actor's parent; cancelled by stop
	interrupt context.CancelCauseFunc

	mu      sync.Mutex
	stopped bool
	actors  sync.WaitGroup
}

func newSupervisor() *supervisor {
	s := &supervisor{}
	s.ctx, s.interrupt = context.WithCancelCause(context.Background())
	return s
}

// spawn runs an actor, unless the supervisor has stopped, and reports
// whether it did. The actor must return soon after s.ctx ends.
func (s *supervisor) spawn(run func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.actors.Add(1)
	go func() {
		defer s.actors.Done()
		run()
	}()
	return true
}

// stop interrupts every actor with cause and lets no new one start.
func (s *supervisor) stop(cause error) {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.interrupt(cause)
}

// wait blocks until every actor has returned, or ctx ends.
func (s *supervisor) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.actors.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
