package host

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wpmdev/wpm/internal/wire"
)

// Pipelining (docs/ARCHITECTURE.md, "Pipelining"): a pool with Prefetch
// sends a worker up to Prefetch tasks beyond the Concurrency it runs, as
// numbered tasks that the plugin admits in order (internal/wire/pipeline.go).

// Pipelining's tuning.
const (
	// prefetchMaxRun: a pool prefetches only while its tasks' recent run
	// time (an average over about 8 tasks) is under this. A round trip
	// costs 0.1–0.2 ms here, so pipelining saves at most a tenth of a task
	// this long, while a task waiting at a worker may wait this long too
	// much; longer tasks gain nothing.
	prefetchMaxRun = 2 * time.Millisecond
	// stallAfter: a worker that has answered nothing for this long while
	// busy (a long task) gets no more prefetched tasks.
	stallAfter = 5 * prefetchMaxRun
	// maxRedispatch bounds how often one task is sent again after the
	// worker it waited at went before starting it.
	maxRedispatch = 3
	// cancelTimeout bounds the cancel of a task waiting at a worker; a
	// worker that does not answer it is killed.
	cancelTimeout = time.Second
	// reportsTimeout bounds the wait, after a worker died, for the last of
	// its start reports.
	reportsTimeout = 2 * time.Second
)

// pipelinedProc is a proc that can take numbered tasks.
type pipelinedProc interface {
	// openPipeline opens the worker's pipeline on first use and reports
	// whether it has one (false: the plugin predates pipelining, or the
	// open failed; tasks then go through Run).
	openPipeline() bool
	// runSeq runs one task through the pipeline. Besides Run's results it
	// returns how long the task ran at the worker. A task that never
	// started because the worker went fails with a *notStarted error; so
	// does one taken back because moved was closed while it waited.
	runSeq(ctx context.Context, input []byte, concurrency int, doomed func(), moved <-chan struct{}) (out []byte, ran time.Duration, err error, healthy bool)
}

// pipeState is a plugin process's pipeline, opened on first use.
type pipeState struct {
	once sync.Once
	pl   *wire.Pipeline // nil when the worker can't pipeline
}

var _ pipelinedProc = (*pluginProc)(nil)

func (w *pluginProc) openPipeline() bool {
	w.pipe.once.Do(func() {
		c, ok := w.p.task.(*wire.PipelineClient)
		if !ok {
			return
		}
		pl, err := c.OpenPipeline()
		if err != nil {
			w.p.logger.Debug("worker does not pipeline; sending it one task per place", "error", err)
			return
		}
		w.pipe.pl = pl
		go func() {
			<-w.p.exited()
			_ = pl.Close()
		}()
	})
	return w.pipe.pl != nil
}

func (w *pluginProc) runSeq(ctx context.Context, input []byte, concurrency int, doomed func(), moved <-chan struct{}) ([]byte, time.Duration, error, bool) {
	taskStarted(ctx, w.p.pid)
	return callSeq(ctx, w.p, w.pipe.pl, input, concurrency, doomed, moved)
}

// notStarted is the error of a task whose worker went before it started
// the task: the pool sends it again. It wraps the worker's failure.
type notStarted struct{ err error }

func (e *notStarted) Error() string { return e.err.Error() }
func (e *notStarted) Unwrap() error { return e.err }

// errMoved is why a task waiting at a busy worker was taken back: another
// worker was free first.
var errMoved = errors.New("taken back from a busy worker to run on a free one")

// callSeq is call for a numbered task: it sends the task through pl and
// sorts out how it ended. A task whose ctx ends before it started is
// canceled at the worker, which lives on; one that started has its worker
// killed, as call does. When moved is closed while the task waits at the
// worker, it is canceled there and fails with a *notStarted error.
func callSeq(ctx context.Context, proc *process, pl *wire.Pipeline, input []byte, concurrency int, doomed func(), moved <-chan struct{}) ([]byte, time.Duration, error, bool) {
	var timeout time.Duration
	if deadline, ok := ctx.Deadline(); ok {
		if timeout = time.Until(deadline); timeout <= 0 {
			return nil, 0, contextFailure(ctx), true
		}
	}
	proc.enter()
	c := pl.Send(ctx, input, timeout, concurrency)
	defer c.Release()
	for answered := false; !answered; {
		select {
		case <-c.Done:
			answered = true
		case <-ctx.Done():
			proc.leave()
			err, healthy := giveUp(ctx, proc, pl, c.Seq, doomed)
			return nil, 0, err, healthy
		case <-moved:
			moved = nil // asked once
			if takeBack(pl, c.Seq) {
				proc.leave()
				return nil, 0, &notStarted{err: errMoved}, true
			}
		}
	}
	proc.leave()
	reply := c.Reply
	switch {
	case c.Err != nil:
		return nil, 0, lost(proc, pl, c.Seq, c.Err, doomed), false
	case reply.Skipped: // never done by wpm's host: it only cancels tasks it gave up on
		return nil, 0, &notStarted{err: fmt.Errorf("%w: the worker skipped the task", ErrWorkerCrashed)}, true
	case reply.Err != nil:
		return nil, reply.Ran, atDeadline(ctx, reply.Err), true
	}
	return reply.Output, reply.Ran, nil, true
}

// giveUp ends a task whose ctx ended: a task still waiting at the worker
// is canceled there, and the worker kept; otherwise the worker is killed
// (a running net/rpc call can not be canceled).
func giveUp(ctx context.Context, proc *process, pl *wire.Pipeline, seq uint64, doomed func()) (error, bool) {
	cause := contextFailure(ctx)
	if !pl.Started(seq) {
		cctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
		started, err := pl.Cancel(cctx, seq)
		cancel()
		if err == nil && !started {
			return cause, true
		}
	}
	doomed()
	proc.kill(fmt.Errorf("%w: killed because a task on it ended early (%w)", ErrWorkerCrashed, cause))
	return cause, false
}

// takeBack cancels task seq at its worker if it has not started, and
// reports whether it did.
func takeBack(pl *wire.Pipeline, seq uint64) bool {
	if pl.Started(seq) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	started, err := pl.Cancel(ctx, seq)
	return err == nil && !started
}

// lost explains a transport failure of task seq: the worker is gone. Once
// every start report it wrote has been read, a task that had not started
// is a *notStarted, to be sent again; one that had fails as call's do.
func lost(proc *process, pl *wire.Pipeline, seq uint64, transportErr error, doomed func()) error {
	doomed()
	cause, detail := proc.failure(transportErr)
	if !closedWithin(pl.Ended(), reportsTimeout) {
		proc.logger.Warn("a dead worker's start reports did not end; counting its task as started", "error", transportErr)
		return &failure{cause: cause, detail: detail}
	}
	if !pl.Started(seq) {
		return &notStarted{err: &failure{cause: cause, detail: detail}}
	}
	return &failure{cause: cause, detail: detail}
}

// isNotStarted reports whether err is a task's that never started.
func isNotStarted(err error) bool {
	if err == nil {
		return false // the common case, without errors.As's allocation
	}
	var ns *notStarted
	return errors.As(err, &ns)
}

// canPrefetch reports whether the pool may send a worker tasks beyond
// its concurrency now: it is set to, and its recent tasks were short.
// p.mu must be held.
func (p *pool) canPrefetch() bool {
	return p.cfg.Prefetch > 0 && p.runAvg > 0 && p.runAvg < prefetchMaxRun
}

// observeRun folds one task's run time into the pool's running average
// (weight 1/8). p.mu must be held.
func (p *pool) observeRun(ran time.Duration) {
	if ran <= 0 {
		return
	}
	if p.runAvg == 0 {
		p.runAvg = ran
		return
	}
	p.runAvg += (ran - p.runAvg) / 8
}

// reclaim takes back one task waiting at a worker stuck on a long task
// when another worker has a free place and no task waits in the queue, so
// that no task waits behind a busy worker while another is idle. A worker
// with waiting tasks that is not stuck yet is looked at again when it
// would be. p.mu must be held.
func (p *pool) reclaim() {
	if p.cfg.Prefetch == 0 || p.queue.len() > 0 || !p.hasFreePlace() {
		return
	}
	now := time.Now()
	var soonest time.Duration
	for _, s := range p.slots {
		w := s.worker
		if len(w.waiting) == 0 {
			continue
		}
		left := p.stallAfter - now.Sub(w.progress)
		if left <= 0 {
			l := w.waiting[len(w.waiting)-1]
			w.waiting = w.waiting[:len(w.waiting)-1]
			close(l.moved)
			return
		}
		if soonest == 0 || left < soonest {
			soonest = left
		}
	}
	if soonest > 0 && !p.reclaimArmed {
		p.reclaimArmed = true
		if p.reclaimTimer == nil {
			p.reclaimTimer = time.AfterFunc(soonest, p.reclaimLater)
		} else {
			p.reclaimTimer.Reset(soonest)
		}
	}
}

// reclaimLater runs reclaim when a worker with waiting tasks would be
// stuck.
func (p *pool) reclaimLater() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reclaimArmed = false
	p.dispatch()
}

// hasFreePlace reports whether a worker can run a task now. p.mu must be
// held.
func (p *pool) hasFreePlace() bool {
	for _, s := range p.slots {
		if s.worker.ready(p.cfg.Concurrency) {
			return true
		}
	}
	return false
}

// prefetched records l as a task beyond w's concurrency, which reclaim
// may take back; settled forgets it. p.mu must be held.
func (p *pool) prefetched(w *worker, l *lease) {
	if w.inflight > p.cfg.Concurrency && l.tries < maxRedispatch {
		l.moved = make(chan struct{})
		w.waiting = append(w.waiting, l)
	}
}

func (w *worker) settled(l *lease) {
	if l.moved == nil {
		return
	}
	if i := slices.Index(w.waiting, l); i >= 0 {
		w.waiting = slices.Delete(w.waiting, i, i+1)
	}
}

// prefetchable reports whether w may take a task beyond its concurrency:
// it pipelines, has room within the prefetch, and is not stuck on a long
// task. p.mu must be held.
func (p *pool) prefetchable(w *worker, now time.Time) bool {
	return w.piped && w.ready(p.cfg.Concurrency+p.cfg.Prefetch) && now.Sub(w.progress) < p.stallAfter
}
