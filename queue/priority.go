package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wpmdev/wpm/host"
)

// Priorities. A pool's tasks (and the one-shots') are kept on one subject
// per priority, each with its own durable consumer that the runners of
// every host share: normal keeps the subject and consumer of wpm before
// priorities (wpm.tasks.pool.<pool>, so messages stored by an older
// version run as normal), high and low put their level before it
// (wpm.tasks.high.pool.<pool>, wpm.tasks.low.oneshot): a pool name may
// hold dots, so a level after the name could be another pool's subject.
// A runner looks for a task high first, then normal, then low, except
// that after host.MaxOvertakes tasks of higher levels in a row it looks at
// the lowest level first, once: a low task waits, it does not starve.

// ranks is how many priorities there are; a runner's consumers are
// indexed by host.TaskPriority.Rank.
const ranks = 3

// subjectOf is the subject of pool's tasks ("" for one-shots) of
// priority p.
func subjectOf(pool string, p host.TaskPriority) string {
	switch p.Rank() {
	case 0:
		return subjectPrefix + "high." + subject(pool)[len(subjectPrefix):]
	case 2:
		return subjectPrefix + "low." + subject(pool)[len(subjectPrefix):]
	}
	return subject(pool)
}

// consumerOf names the durable consumer of pool's tasks of priority p.
func consumerOf(pool string, p host.TaskPriority) string {
	switch p.Rank() {
	case 0:
		return consumerName(pool) + "-high"
	case 2:
		return consumerName(pool) + "-low"
	}
	return consumerName(pool)
}

// consumerConfigs are the configs of pool's consumers, by rank.
func (e *Engine) consumerConfigs(pool string) [ranks]jetstream.ConsumerConfig {
	var out [ranks]jetstream.ConsumerConfig
	for _, p := range host.Priorities {
		cfg := e.consumerConfig(pool)
		cfg.Durable, cfg.FilterSubject = consumerOf(pool, p), subjectOf(pool, p)
		out[p.Rank()] = cfg
	}
	return out
}

// ensureConsumers makes (or finds) pool's consumers, by rank.
func (e *Engine) ensureConsumers(ctx context.Context, pool string) ([ranks]jetstream.Consumer, error) {
	var out [ranks]jetstream.Consumer
	for r, cfg := range e.consumerConfigs(pool) {
		c, err := ensureConsumer(ctx, e.js, streamName, cfg)
		if err != nil {
			return out, fmt.Errorf("make the consumer of %s: %w", cfg.FilterSubject, err)
		}
		out[r] = c
	}
	return out, nil
}

// Which levels may hold a task: a runner does not ask a level it found
// empty again (a round trip to the server per task) until a submit of that
// level here or on another host (the wake-up carries the priority), a task
// it handed back, or the poll interval (retries whose back-off ended,
// redeliveries, other hosts' hand-backs) says it may.

// notePriority tells the runner of pool ("" for one-shots), if it runs
// here, that a task of priority p was queued; an empty p (a wake-up from
// a version before priorities) may be any.
func (e *Engine) notePriority(pool string, p host.TaskPriority) {
	e.mu.Lock()
	r := e.runnerOf[pool]
	e.mu.Unlock()
	if r == nil {
		return
	}
	if p == "" {
		for rank := range ranks {
			r.pending[rank].Store(true)
		}
	} else {
		r.pending[p.Rank()].Store(true)
	}
	select {
	case r.higher <- struct{}{}:
	default:
	}
}

// wakeAllPrio wakes every host's runner of pool for a task of priority p.
func (e *Engine) wakeAllPrio(pool string, p host.TaskPriority) {
	_ = e.nc.Publish(wakePrefix+subject(pool), []byte(p))
}

// woken handles a wake-up from any host: subj names the pool's runner,
// data the queued task's priority.
func (e *Engine) woken(subj string, data []byte) {
	pool, ok := strings.CutPrefix(subj, subjectPrefix+"pool.")
	if !ok {
		pool = "" // wpm.tasks.oneshot
	}
	e.notePriority(pool, host.TaskPriority(data))
	e.signal(subj)
}

// fetch takes one task off the runner's consumers, looking high first
// (see above), and returns it with its priority; nil when none waits.
func (r *runner) fetch() (jetstream.Msg, host.TaskPriority, error) {
	if time.Since(r.lastPoll) >= r.e.opts.PollInterval {
		r.lastPoll = time.Now()
		for rank := range ranks {
			r.pending[rank].Store(true)
		}
	}
	first := -1
	for rank := ranks - 1; rank > 0; rank-- {
		if r.passed[rank] >= host.MaxOvertakes {
			first = rank
			break
		}
	}
	var order [ranks]int
	n := 0
	if first >= 0 {
		order[n], n = first, n+1
	}
	for rank := range ranks {
		if rank != first {
			order[n], n = rank, n+1
		}
	}
	r.owed = false
	for _, rank := range order[:n] {
		// Cleared before the fetch: a submit after it sets it again.
		if !r.pending[rank].Swap(false) {
			r.passed[rank] = 0 // none waits there: nothing is owed
			continue
		}
		msg, err := fetchOne(r.cons[rank])
		if err != nil {
			r.pending[rank].Store(true)
			return nil, "", err
		}
		if msg == nil {
			r.passed[rank] = 0
			continue
		}
		r.pending[rank].Store(true) // there may be more
		r.owed = rank == first
		r.passed[rank] = 0
		for lower := rank + 1; lower < ranks; lower++ {
			r.passed[lower]++
		}
		return msg, host.Priorities[rank], nil
	}
	return nil, "", nil
}

// handBack naks msg, of priority p, back to the queue at once and says
// that its level has a task again.
func (r *runner) handBack(msg jetstream.Msg, p host.TaskPriority) {
	_ = msg.Nak()
	r.pending[p.Rank()].Store(true)
}

// pendingAbove reports whether a level above rank may hold a task.
func (r *runner) pendingAbove(rank int) bool {
	for above := range rank {
		if r.pending[above].Load() {
			return true
		}
	}
	return false
}

// reserveHolding waits for a place for *msg, a task of priority *prio
// taken off the queue, until ctx ends. While it waits, a submit of a
// higher priority (or the poll interval) makes it look for a task of a
// higher priority: one found takes the place of the held task, which goes
// back to the queue at once (at its front, as a redelivery), so a high
// task submitted while a runner waits with a low one in hand still starts
// first. A task taken because it was owed its turn (host.MaxOvertakes) is
// kept.
func (r *runner) reserveHolding(ctx context.Context, msg *jetstream.Msg, prio *host.TaskPriority) (place, error) {
	for {
		rank := prio.Rank()
		if rank == 0 || r.owed {
			return r.reserve(ctx, host.Priority(*prio))
		}
		wctx, cancel := context.WithCancel(ctx)
		looked := make(chan struct{})
		woken := false // set before cancel; read once looked is closed
		go func() {
			defer close(looked)
			t := time.NewTimer(r.e.opts.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-wctx.Done():
					return
				case <-r.higher:
					if !r.pendingAbove(rank) {
						continue
					}
				case <-t.C:
					for above := range rank {
						r.pending[above].Store(true)
					}
				}
				woken = true
				cancel()
				return
			}
		}()
		p, err := r.reserve(wctx, host.Priority(*prio))
		cancel()
		<-looked
		if err == nil || ctx.Err() != nil || !woken {
			return p, err // a place, or the reservation's own error (queue_full, say)
		}
		if higher, hp, ferr := r.fetchAbove(rank); ferr == nil && higher != nil {
			r.handBack(*msg, *prio)
			*msg, *prio = higher, hp
		}
	}
}

// fetchAbove takes one task of a priority above rank, highest first; nil
// when none waits.
func (r *runner) fetchAbove(rank int) (jetstream.Msg, host.TaskPriority, error) {
	for above := range rank {
		if !r.pending[above].Swap(false) {
			continue
		}
		msg, err := fetchOne(r.cons[above])
		if err != nil {
			r.pending[above].Store(true)
			return nil, "", err
		}
		if msg == nil {
			continue
		}
		r.pending[above].Store(true)
		r.passed[above] = 0
		for lower := above + 1; lower < ranks; lower++ {
			r.passed[lower]++
		}
		return msg, host.Priorities[above], nil
	}
	return nil, "", nil
}
