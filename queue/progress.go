package queue

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/wpmdev/wpm/host"
)

// progressEvery is the least time between two writes of a running task's
// progress to its record.
const progressEvery = 250 * time.Millisecond

// progressWriter writes a running task's latest progress to its record,
// with compare-and-set, so that it never overwrites an end that Cancel
// wrote meanwhile.
type progressWriter struct {
	e       *Engine
	mu      sync.Mutex
	latest  *Progress
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	// t and rev are the record as last written; only loop touches them
	// until stop.
	t   Task
	rev uint64
}

// watchProgress starts writing the progress of task t, at revision rev;
// its event method is the task's host.TaskEvents function.
func (e *Engine) watchProgress(t Task, rev uint64) *progressWriter {
	w := &progressWriter{e: e, t: t, rev: rev, wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go w.loop()
	return w
}

// event is the task's host.TaskEvents function: it shares the event
// with the other hosts, keeps the latest progress, and never blocks.
func (w *progressWriter) event(ev host.Event) {
	w.e.shareEvent(ev)
	if ev.Type != host.EventTaskProgress || math.IsNaN(ev.Fraction) {
		return // host drops NaN already; a record must always encode
	}
	w.mu.Lock()
	w.latest = &Progress{Fraction: min(max(ev.Fraction, 0), 1), Message: ev.Message}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// loop writes the latest progress, at most every progressEvery, until stop.
func (w *progressWriter) loop() {
	defer close(w.stopped)
	var last time.Time
	for {
		select {
		case <-w.done:
			return
		case <-w.wake:
		}
		if d := progressEvery - time.Since(last); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-w.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		w.mu.Lock()
		p := w.latest
		w.mu.Unlock()
		if !w.write(p) {
			return // ended meanwhile: nothing more to write
		}
		last = time.Now()
	}
}

// write records p; it reports false when the record is no longer this
// attempt's, running (canceled, or started again elsewhere), writing
// nothing. A write that fails otherwise drops p: the next report, or the
// end, is written over it.
func (w *progressWriter) write(p *Progress) bool {
	at := w.t
	t, rev, err := w.e.modify(context.Background(), w.t, w.rev, casOnce, func(cur *Task) error {
		if err := sameAttempt(cur, &at); err != nil {
			return err
		}
		if cur.State != StateRunning {
			return errEndedMeanwhile // handed back to the queue meanwhile
		}
		cur.Progress = p
		return nil
	})
	switch {
	case errors.Is(err, errEndedMeanwhile), errors.Is(err, errStartedElsewhere), errors.Is(err, ErrUnknownTask):
		return false
	case err != nil:
		w.e.logger.Debug("can not record a task's progress", "task", at.ID, "error", err)
		return true
	}
	w.t, w.rev = t, rev
	return true
}

// stop ends the writes and returns the record as last written, with the
// latest progress, and its revision.
func (w *progressWriter) stop() (Task, uint64) {
	close(w.done)
	<-w.stopped
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.t
	t.Progress = w.latest
	return t, w.rev
}
