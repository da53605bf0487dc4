package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Warm spares: per plugin, up to cfg.Spares processes started and
// handshaken ahead of demand, each handed to exactly one one-shot run,
// which then owns it and kills it after its task like any one-shot
// process. A plugin gets spares the first time it is run as a one-shot,
// not before: a plugins directory may hold many plugins, a pool's plugin
// is not necessarily run as a one-shot too, and each spare costs a
// process's memory and a place under oneShot.maxConcurrent.
//
// A spare is started with the default one-shot memory limit. A run that
// asks for a lower one (or any, when the default is none) gets the spare
// with its RLIMIT_DATA lowered and its watchdog limit set to the run's; a
// run that asks for more starts its own process, since a hard limit can
// only be lowered.
//
// Each spare has one goroutine, which starts its process, puts it on its
// plugin's ready list and waits for its fate; whoever takes it off the
// list decides that fate under oneShots.mu:
//
//	idle    → run      a run of its plugin took it, and its place
//	idle    → evicted  a run of another plugin took its place; killed
//	idle    → stopped  one-shots closed; killed, place freed
//	idle    → died     its process exited while waiting; place freed
//
// Spares lost to a failed start or a death while waiting are replaced
// after a back-off, so a plugin that can not stay up does not spin.

// pluginSpares are the warm spares of one plugin. Guarded by oneShots.mu.
type pluginSpares struct {
	path    string
	name    string
	ready   []*spare // oldest first
	start   int      // being started
	retryAt time.Time
	retry   *time.Timer // refills once the back-off has passed; nil if none
	delay   backoff

	used, cold, evicted, lost int
	lastErr                   error
}

// spare is one warm process waiting for a run.
type spare struct {
	proc    *process
	path    string
	binary  os.FileInfo   // the plugin's file when the spare was started
	fate    spareFate     // guarded by oneShots.mu
	settled chan struct{} // closed when fate leaves spareIdle
}

// spareFate is what became of a spare.
type spareFate int

const (
	spareIdle    spareFate = iota // waiting on its plugin's ready list
	spareRun                      // handed to a run, which owns it and its place
	spareEvicted                  // its place went to another plugin's run
	spareStopped                  // one-shots closed
	spareDied                     // its process exited while it waited
)

// settle takes s off the ready list's books with fate f. o.mu must be held.
func (s *spare) settle(f spareFate) {
	s.fate = f
	close(s.settled)
}

// sparesOf returns the spares of the plugin at path, made on first use,
// or nil when spares are off. o.mu must be held.
func (o *oneShots) sparesOf(path string) *pluginSpares {
	if o.cfg.Spares <= 0 {
		return nil
	}
	ps, ok := o.spares[path]
	if !ok {
		ps = &pluginSpares{path: path, name: filepath.Base(path), delay: backoff{min: minRestartDelay, max: maxRestartDelay}}
		o.spares[path] = ps
	}
	return ps
}

// countCold counts a run of the plugin at path that started its own
// process.
func (o *oneShots) countCold(path string) {
	o.mu.Lock()
	if ps, ok := o.spares[path]; ok {
		ps.cold++
	}
	o.mu.Unlock()
}

// claimSpare hands a run the oldest live spare of ps that can take a
// memory limit of memoryLimitMB, with its place, or returns nil. o.mu must
// be held.
func (o *oneShots) claimSpare(ps *pluginSpares, memoryLimitMB int) *spare {
	if ps == nil {
		return nil
	}
	for i, s := range ps.ready {
		if !alive(s.proc) || !canLimit(s.proc.memoryLimitMB, memoryLimitMB) {
			continue // the dead are removed by their goroutine
		}
		ps.ready = slices.Delete(ps.ready, i, i+1)
		s.settle(spareRun)
		ps.used++
		ps.delay.reset()
		return s
	}
	return nil
}

// canLimit reports whether a process started under a limit of hasMB can be
// brought to wantMB (0 means none): a hard limit can be lowered only.
func canLimit(hasMB, wantMB int) bool {
	return hasMB == wantMB || hasMB == 0 || (wantMB > 0 && wantMB < hasMB)
}

// alive reports whether p's process still runs. A process that died is
// seen at once, before it is reaped and exited is closed: its resident
// size reads as zero, or not at all.
func alive(p *process) bool {
	select {
	case <-p.exited():
		return false
	default:
	}
	if p.rss == nil {
		return true
	}
	rss, err := p.rss.read()
	return err == nil && rss > 0
}

// fit readies a spare for a run: it checks that the plugin's binary is
// still the one the spare runs (a plugin replaced in the directory must
// run its new code at once) and brings the spare to the run's memory
// limit. If either fails it kills the spare and returns nil; the run then
// starts its own process in the same place.
func (o *oneShots) fit(s *spare, memoryLimitMB int) *process {
	proc := s.proc
	if fi, err := os.Stat(s.path); err != nil || !sameBinary(s.binary, fi) {
		proc.logger.Debug("the plugin's binary changed since this warm spare started; starting a fresh process")
		proc.kill(nil)
		return nil
	}
	if proc.memoryLimitMB == memoryLimitMB {
		return proc
	}
	// The limit is measured from the process's data size now, as at start.
	if err := limitData(proc.pid, uint64(memoryLimitMB)<<20); err != nil {
		proc.logger.Warn("could not lower a warm spare's memory limit; starting a fresh process", "error", err)
		proc.kill(nil)
		return nil
	}
	proc.memoryLimitMB = memoryLimitMB
	return proc
}

// sameBinary reports whether two looks at a plugin's file saw the same
// binary: the same file, not rewritten since.
func sameBinary(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// evictSpare gives the place of the oldest idle spare, of any plugin, to
// a run that found no free place; the spare is killed. It reports whether
// there was one. o.mu must be held.
func (o *oneShots) evictSpare() bool {
	var victim *pluginSpares
	for _, ps := range o.spares {
		if len(ps.ready) > 0 && (victim == nil || ps.ready[0].proc.startedAt.Before(victim.ready[0].proc.startedAt)) {
			victim = ps
		}
	}
	if victim == nil {
		return false
	}
	s := victim.ready[0]
	victim.ready = slices.Delete(victim.ready, 0, 1)
	s.settle(spareEvicted)
	victim.evicted++
	return true
}

// refill starts spares for every plugin short of cfg.Spares, as long as
// places are free; a plugin in back-off waits for its retry. o.mu must be
// held.
func (o *oneShots) refill() {
	if o.closed {
		return
	}
	now := time.Now()
	for _, ps := range o.spares {
		for len(ps.ready)+ps.start < o.cfg.Spares && !now.Before(ps.retryAt) {
			select {
			case o.places <- struct{}{}:
			default:
				return // no free place: a freed one refills
			}
			ps.start++
			o.sparesActive.Add(1)
			go o.keepSpare(ps)
		}
	}
}

// lose records that a spare of ps failed to start or died while waiting,
// and schedules a refill after a back-off. o.mu must be held.
func (o *oneShots) lose(ps *pluginSpares, err error) {
	ps.lost++
	ps.lastErr = err
	d := ps.delay.next()
	ps.retryAt = time.Now().Add(d)
	if ps.retry != nil || o.closed {
		return
	}
	o.sparesActive.Add(1)
	ps.retry = time.AfterFunc(d, func() {
		defer o.sparesActive.Done()
		o.mu.Lock()
		ps.retry = nil
		o.refill()
		o.mu.Unlock()
	})
}

// keepSpare starts one spare of ps in a place refill took for it, offers
// it to runs, and ends it unless a run took it.
func (o *oneShots) keepSpare(ps *pluginSpares) {
	defer o.sparesActive.Done()
	binary, err := os.Stat(ps.path)
	var proc *process
	if err == nil && o.verify != nil {
		err = o.verify(ps.path)
	}
	if err == nil {
		proc, err = startProcess(context.Background(), o.launchOf(ps.path, o.cfg.MemoryLimitMB))
	}
	o.mu.Lock()
	ps.start--
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The plugin left the directory: it gets spares again if it comes
		// back and runs.
		if len(ps.ready) == 0 && ps.start == 0 && o.spares[ps.path] == ps {
			delete(o.spares, ps.path)
			if ps.retry != nil && ps.retry.Stop() {
				o.sparesActive.Done() // it will not run
			}
			ps.retry = nil
		}
		o.mu.Unlock()
		o.givePlace()
		return
	case err != nil:
		o.lose(ps, err)
		o.mu.Unlock()
		o.logger.Warn("warm spare failed to start", "plugin", ps.name, "error", err)
		o.givePlace()
		return
	case o.closed:
		o.mu.Unlock()
		proc.kill(nil)
		o.givePlace()
		return
	}
	s := &spare{proc: proc, path: ps.path, binary: binary, settled: make(chan struct{})}
	ps.ready = append(ps.ready, s)
	close(o.spareReady)
	o.spareReady = make(chan struct{})
	o.mu.Unlock()
	proc.logger.Debug("warm spare ready")

	select {
	case <-s.settled:
	case <-proc.exited():
	}
	o.mu.Lock()
	if s.fate == spareIdle {
		ps.ready = slices.DeleteFunc(ps.ready, func(r *spare) bool { return r == s })
		s.settle(spareDied)
		o.lose(ps, fmt.Errorf("%w: the warm spare exited while waiting: %v", ErrWorkerCrashed, proc.runner.waitErr))
	}
	fate := s.fate
	o.mu.Unlock()
	switch fate {
	case spareRun:
		return // the run owns it now
	case spareDied:
		proc.logger.Warn("warm spare exited while waiting; replacing it", "error", proc.runner.waitErr)
	}
	proc.kill(nil)
	if fate != spareEvicted { // an evicted spare's place is the run's now
		o.givePlace()
	}
}

// givePlace frees a spare's place and refills with it.
func (o *oneShots) givePlace() {
	<-o.places
	o.mu.Lock()
	o.refill()
	o.mu.Unlock()
}

// stopSpares stops every idle spare and pending retry; starting spares stop
// themselves once started. o.mu must be held, and o.closed set.
func (o *oneShots) stopSpares() {
	for _, ps := range o.spares {
		for _, s := range ps.ready {
			s.settle(spareStopped)
		}
		ps.ready = nil
		if ps.retry != nil && ps.retry.Stop() {
			o.sparesActive.Done() // it will not run
		}
		ps.retry = nil
	}
}

// OneShotStats is a snapshot of one-shot runs and warm spares.
type OneShotStats struct {
	// MaxConcurrent is the cap on one-shot processes, spares included.
	MaxConcurrent int
	// Running is how many runs were admitted and have not ended: waiting
	// for a place, running, or waiting for their process to end.
	Running int
	// Places is how many places are taken, by runs and by spares.
	Places int
	// Spares has one entry per plugin run as a one-shot while spares are
	// on, sorted by plugin.
	Spares []SpareStats
}

// SpareStats describes the warm spares of one plugin.
type SpareStats struct {
	Plugin string
	// ReadyPIDs are the spares waiting for a run, oldest first.
	ReadyPIDs []int
	// Starting is how many spares are being started.
	Starting int
	// Used counts runs that got a spare; Cold counts runs that started
	// their own process.
	Used, Cold int
	// Evicted counts spares stopped to give their place to a run of
	// another plugin; Lost counts spares that failed to start or died
	// while waiting, and LastError says why the last one was lost.
	Evicted, Lost int
	LastError     string
}

// OneShots returns a snapshot of one-shot runs and warm spares. It is
// safe for concurrent use.
func (m *Manager) OneShots() OneShotStats { return m.oneShots.stats() }

func (o *oneShots) stats() OneShotStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := OneShotStats{MaxConcurrent: o.cfg.MaxConcurrent, Running: o.active, Places: len(o.places)}
	for _, ps := range o.spares {
		ss := SpareStats{Plugin: ps.name, Starting: ps.start, Used: ps.used, Cold: ps.cold, Evicted: ps.evicted, Lost: ps.lost}
		for _, r := range ps.ready {
			ss.ReadyPIDs = append(ss.ReadyPIDs, r.proc.pid)
		}
		if ps.lastErr != nil {
			ss.LastError = ps.lastErr.Error()
		}
		s.Spares = append(s.Spares, ss)
	}
	slices.SortFunc(s.Spares, func(a, b SpareStats) int { return strings.Compare(a.Plugin, b.Plugin) })
	return s
}
