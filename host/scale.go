package host

import (
	"slices"
	"time"
)

// A pool sizes itself between its MinWorkers and MaxWorkers (a fixed-size
// pool has both at Workers, so that none of this moves it). Its target is
// its number of live slots (those not removed); each slot keeps one worker.
//
// Up: a task, or a reservation, that finds no free place and has to wait
// makes the pool add slots, as many as the waiting ones need beyond the
// places of workers that are starting, up to MaxWorkers (grow). While the
// pool's starts fail it adds none while one of its slots retries (each
// slot backs off on its own), and a new slot first waits the pool's own
// back-off, so a plugin that can not start is started at a bounded rate
// however many tasks arrive. A slot above the minimum whose start failed
// ends when no task waits or another slot is starting: of the slots a
// burst added, one goes on retrying.
//
// Down: a worker above MinWorkers that has been idle for ScaleDownAfter
// is retired: it takes no task from then on and its slot stops it
// gracefully and ends (reason "scaled_down"). A timer fires when the
// longest-idle such worker is due. A reservation given back unused does
// not count as activity.

// ScaleObserver is an optional interface of an [Observer]: one that has it
// is told when a pool that sizes itself changes its target.
type ScaleObserver interface {
	// PoolScaled is called when the pool adds workers for waiting tasks
	// (up) or retires idle ones (down); target is its new size.
	PoolScaled(pool, plugin string, up bool, target int)
}

// sizes returns how many slots the pool keeps (live: not removed) and
// how many of those bring places soon rather than now (coming: their
// worker is starting, or stopping to be replaced, or retiring). p.mu must
// be held.
func (p *pool) sizes() (live, coming int) {
	for _, s := range p.slots {
		if s.removed {
			continue
		}
		live++
		w := s.worker
		if w.state == StateStarting || w.state == StateStopping || w.state == stateStopped || w.retiring {
			coming++
		}
	}
	return live, coming
}

// grow adds slots for the tasks waiting in the queue: not more than they
// need beyond the workers on their way, and never beyond MaxWorkers. p.mu
// must be held.
func (p *pool) grow() {
	waiting := p.queue.len()
	if waiting == 0 || p.ctx.Err() != nil {
		return
	}
	live, coming := p.sizes()
	conc := max(p.cfg.Concurrency, 1)
	n := min((waiting+conc-1)/conc-coming, p.cfg.MaxWorkers-live)
	if n <= 0 {
		return
	}
	var delay time.Duration
	if p.failing {
		if coming > 0 {
			return // a slot retries its start with its own back-off
		}
		n, delay = 1, p.failDelay.next()
	}
	p.addSlotsLocked(n, false, CauseScaledUp, delay)
	p.scaled(true, live+n)
}

// scaled reports a change of the pool's target. p.mu must be held.
func (p *pool) scaled(up bool, target int) {
	dir := "down"
	if up {
		dir = "up"
	}
	p.logger.Debug("pool scaled", "direction", dir, "target", target)
	if o, ok := p.observer.(ScaleObserver); ok {
		o.PoolScaled(p.name, p.cfg.Plugin, up, target)
	}
}

// startFailed records that a start in slot s failed, and lets the slot go
// when it is above the minimum and no task waits for it, or another slot
// is starting too: one slot above the minimum retries, with back-off.
// p.mu must be held.
func (p *pool) startFailed(s *slot) {
	p.failing = true
	live, coming := p.sizes()
	if s.removed || live <= p.cfg.MinWorkers {
		return
	}
	if p.queue.len() == 0 || coming > 1 {
		s.removed = true
		p.scaled(false, live-1)
	}
}

// startWorked records that a worker of the pool became ready: its starts work
// again. p.mu must be held.
func (p *pool) startWorked() {
	p.failing = false
	p.failDelay.reset()
}

// idleWorkers returns the slots above the minimum whose workers could be
// scaled down, longest idle first. p.mu must be held.
func (p *pool) idleWorkers() []*slot {
	live, _ := p.sizes()
	if live <= p.cfg.MinWorkers {
		return nil
	}
	var idle []*slot
	for _, s := range p.slots {
		w := s.worker
		if !s.removed && w.state == StateIdle && w.inflight == 0 && !w.retiring && !w.checking {
			idle = append(idle, s)
		}
	}
	slices.SortFunc(idle, func(a, b *slot) int { return a.worker.idleSince.Compare(b.worker.idleSince) })
	return idle[:min(len(idle), live-p.cfg.MinWorkers)]
}

// planScaleDown retires the workers above the minimum that idled for
// ScaleDownAfter, and arms the timer for the next one due. p.mu must be
// held.
func (p *pool) planScaleDown() {
	if p.ctx.Err() != nil {
		return
	}
	now := time.Now()
	live, _ := p.sizes()
	for _, s := range p.idleWorkers() {
		left := p.cfg.ScaleDownAfter - now.Sub(s.worker.idleSince)
		if left > 0 {
			p.armScaleDown(now.Add(left))
			return
		}
		s.removed = true
		s.worker.retireWhy = CauseScaledDown
		s.worker.retireWhenIdle()
		live--
		p.scaled(false, live)
	}
}

// armScaleDown makes the scale-down timer fire at at, unless it fires
// sooner already. p.mu must be held.
func (p *pool) armScaleDown(at time.Time) {
	if !p.scaleAt.IsZero() && !p.scaleAt.After(at) {
		return
	}
	p.scaleAt = at
	d := time.Until(at)
	if p.scaleTimer == nil {
		p.scaleTimer = time.AfterFunc(d, p.scaleDownDue)
		return
	}
	p.scaleTimer.Reset(d)
}

// scaleDownDue runs when a worker may have idled long enough.
func (p *pool) scaleDownDue() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.scaleAt = time.Time{}
	p.planScaleDown()
}

// stopScaling stops the scale-down timer. p.mu must be held.
func (p *pool) stopScaling() {
	if p.scaleTimer != nil {
		p.scaleTimer.Stop()
	}
	p.scaleAt = time.Time{}
}
