package queue

import (
	"context"
	"fmt"
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

// fetch takes one task off the runner's consumers, looking high first
// (see above), and returns it with its priority; nil when none waits.
func (r *runner) fetch() (jetstream.Msg, host.TaskPriority, error) {
	first := -1
	for rank := ranks - 1; rank > 0; rank-- {
		if r.passed[rank] >= host.MaxOvertakes {
			first = rank
			break
		}
	}
	order := make([]int, 0, ranks+1)
	if first >= 0 {
		order = append(order, first)
	}
	for rank := range ranks {
		if rank != first {
			order = append(order, rank)
		}
	}
	r.owed = false
	for _, rank := range order {
		msg, err := fetchOne(r.cons[rank])
		if err != nil {
			return nil, "", err
		}
		if msg == nil {
			r.passed[rank] = 0 // none waits there: nothing is owed
			continue
		}
		r.owed = rank == first
		r.passed[rank] = 0
		for lower := rank + 1; lower < ranks; lower++ {
			r.passed[lower]++
		}
		return msg, host.Priorities[rank], nil
	}
	return nil, "", nil
}

// reserveHolding waits for a place for *msg, a task of priority *prio
// taken off the queue, until ctx ends. While it waits, a submit or the
// poll interval makes it look for a task of a higher priority: one found
// takes the place of the held task, which goes back to the queue at once
// (at its front, as a redelivery), so a high task submitted while a
// runner waits with a low one in hand still starts first. A task taken
// because it was owed its turn (host.MaxOvertakes) is kept.
func (r *runner) reserveHolding(ctx context.Context, msg *jetstream.Msg, prio *host.TaskPriority) (place, error) {
	for {
		if prio.Rank() == 0 || r.owed {
			return r.reserve(ctx, host.Priority(*prio))
		}
		wctx, cancel := context.WithCancel(ctx)
		looked := make(chan struct{})
		woken := false // set before cancel; read once looked is closed
		go func() {
			defer close(looked)
			t := time.NewTimer(r.e.opts.PollInterval)
			defer t.Stop()
			select {
			case <-wctx.Done():
				return
			case <-r.wake:
			case <-t.C:
			}
			woken = true
			cancel()
		}()
		p, err := r.reserve(wctx, host.Priority(*prio))
		cancel()
		<-looked
		if err == nil || ctx.Err() != nil || !woken {
			if err == nil && woken {
				// Woken as the place came: the higher task, if any, is
				// taken at the next fetch.
				r.e.signal(subject(r.pool))
			}
			return p, err // a place, or the reservation's own error (queue_full, say)
		}
		if higher, hp, ferr := r.fetchAbove(prio.Rank()); ferr == nil && higher != nil {
			_ = (*msg).Nak()
			*msg, *prio = higher, hp
		}
	}
}

// fetchAbove takes one task of a priority above rank, highest first; nil
// when none waits.
func (r *runner) fetchAbove(rank int) (jetstream.Msg, host.TaskPriority, error) {
	for above := range rank {
		msg, err := fetchOne(r.cons[above])
		if err != nil || msg == nil {
			if err != nil {
				return nil, "", err
			}
			continue
		}
		r.passed[above] = 0
		for lower := above + 1; lower < ranks; lower++ {
			r.passed[lower]++
		}
		return msg, host.Priorities[above], nil
	}
	return nil, "", nil
}
