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
	ctx       context.Context // every actor's parent; canceled by stop
	interrupt context.CancelCauseFunc

	mu      sync.Mutex
	stopped bool
	running int           // actors that have not returned
	done    chan struct{} // closed once stopped with no actor running
}

func newSupervisor() *supervisor {
	s := &supervisor{done: make(chan struct{})}
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
	s.running++
	go func() {
		defer s.exited()
		run()
	}()
	return true
}

// exited counts an actor out.
func (s *supervisor) exited() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	if s.stopped && s.running == 0 {
		close(s.done)
	}
}

// stop interrupts every actor with cause and lets no new one start.
func (s *supervisor) stop(cause error) {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		if s.running == 0 {
			close(s.done)
		}
	}
	s.mu.Unlock()
	s.interrupt(cause)
}

// wait blocks until the supervisor has stopped and every actor has
// returned, or ctx ends. It starts no goroutine, so a wait given up on
// leaves nothing behind.
func (s *supervisor) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
