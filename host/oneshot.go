package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// oneShots runs tasks each in a fresh process that is stopped after it. A
// one-shot is a slot (slot.go) that runs one task and does not restart; a
// warm spare is the same slot started ahead of demand.
//
// At most cfg.MaxConcurrent processes count against the cap at once:
// runs' and spares'. Spares only take capacity no run is waiting for: a run
// that finds no free place takes an idle or starting spare's, a freed place
// goes to a waiting run before any spare, and a plugin gets spares only
// once a run of it succeeded, and none after one failed to start, until a
// run succeeds again.
type oneShots struct {
	cfg       OneShotConfig
	logger    hclog.Logger
	start     startFunc
	spawn     func(func()) bool
	ctx       context.Context // the slots' parent: the supervisor's
	socketDir string
	// scriptsDir holds the Node.js worker scripts a one-shot may run, as
	// resolved; empty when there are none.
	scriptsDir string
	// verify checks a plugin's binary, by the name it was asked for and
	// its path, before a spare of it is started.
	verify func(name, path string) error

	mu      sync.Mutex
	closed  bool
	places  int                 // processes counted against the cap
	waiting waitQueue[struct{}] // runs waiting for a place
	active  int                 // runs admitted and not ended
	drainC  chan struct{}
	spares  map[string]*pluginSpares // by plugin name; made on first run
	nextID  int
}

// pluginSpares are the warm spares of one plugin. Guarded by oneShots.mu.
type pluginSpares struct {
	name, path string
	ready      []*oneShot // idle spares, oldest first
	starting   []*oneShot
	ok         bool // a run succeeded since the last spare was lost

	used, cold, evicted, lost int
	lastErr                   error
}

// oneShot is one one-shot slot and what its owner knows of it. Guarded by
// oneShots.mu.
type oneShot struct {
	o      *oneShots
	name   string // the plugin, as the run asked for it
	slot   *slot
	ps     *pluginSpares // nil unless it is (or was) a spare
	binary os.FileInfo   // the plugin's file when it was started
	spare  bool          // waiting for a run, not yet claimed
	keeps  bool          // its place passed to a run when it was evicted
	readyC chan struct{} // closed when its worker takes tasks
	endedC chan struct{} // closed when the slot ended
}

func newOneShots(ctx context.Context, cfg OneShotConfig, socketDir string, logger hclog.Logger, start startFunc, spawn func(func()) bool) *oneShots {
	return &oneShots{
		cfg:       cfg,
		logger:    logger,
		start:     start,
		spawn:     spawn,
		ctx:       ctx,
		socketDir: socketDir,
		drainC:    make(chan struct{}),
		spares:    make(map[string]*pluginSpares),
	}
}

// timeout returns the timeout of a run that asked for requested (0: the
// default), capped by the configured one.
func (o *oneShots) timeout(requested time.Duration) time.Duration {
	if requested <= 0 || (o.cfg.Timeout > 0 && requested > o.cfg.Timeout) {
		return o.cfg.Timeout
	}
	return requested
}

// launchOf describes a one-shot process of the plugin at path.
func (o *oneShots) launchOf(name, path string, memoryLimitMB int) launch {
	return launch{
		path:          path,
		socketDir:     o.socketDir,
		memoryLimitMB: memoryLimitMB,
		startTimeout:  o.cfg.StartTimeout,
		logger:        o.logger.With("plugin", name),
		script:        o.scriptsDir != "" && filepath.Dir(path) == o.scriptsDir,
	}
}

// run runs input once in a process of the plugin name (whose binary is at
// path), a warm spare if one fits, and says how long it waited for a place.
// ctx bounds the whole run: the wait for a place, the start and the task.
func (o *oneShots) run(ctx context.Context, name, path string, input []byte, memoryLimitMB, rank int) (out []byte, pid int, wait time.Duration, err error) {
	if memoryLimitMB <= 0 {
		memoryLimitMB = o.cfg.MemoryLimitMB
	}
	began := time.Now()
	one, err := o.take(ctx, name, path, memoryLimitMB, rank)
	wait = time.Since(began)
	if err != nil {
		return nil, 0, wait, err
	}
	defer o.leave()
	starting := startChild(ctx, SpanOneShotStart)
	select {
	case <-one.readyC:
		endChild(starting, nil)
	case <-one.endedC:
		o.mu.Lock()
		err := one.slot.worker.startErr
		o.mu.Unlock()
		if err == nil {
			err = fmt.Errorf("%w: the process ended before its task", ErrWorkerCrashed)
		}
		endChild(starting, err)
		return nil, 0, wait, err
	case <-ctx.Done():
		err := contextFailure(ctx)
		endChild(starting, err)
		one.slot.stop(err)
		return nil, 0, wait, err
	}
	w := one.claim()
	out, err, healthy := w.proc.Run(ctx, input, nil)
	o.finish(one, w, healthy)
	return out, w.proc.PID(), wait, err
}

// take admits a run and gets it a one-shot slot holding a place: a ready
// spare of its plugin that can hold memoryLimitMB, or a slot started for
// it in a free place, in the place of a spare, or in the first place freed
// within cfg.MaxWait.
func (o *oneShots) take(ctx context.Context, name, path string, memoryLimitMB, rank int) (*oneShot, error) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, fmt.Errorf("%w: one-shots are closed", ErrShuttingDown)
	}
	o.active++
	ps := o.sparesOf(name, path)
	if one := o.claimSpare(ps, memoryLimitMB); one != nil {
		o.refill()
		o.mu.Unlock()
		return one, nil
	}
	if ps != nil {
		ps.cold++
	}
	if o.waiting.len() == 0 && (o.places < o.cfg.MaxConcurrent || o.evictSpare()) {
		if o.places < o.cfg.MaxConcurrent {
			o.places++
		}
		one := o.startSlot(name, path, memoryLimitMB, nil)
		o.mu.Unlock()
		return one, nil
	}
	pw := o.waiting.push(0, rank)
	o.mu.Unlock()

	timer := time.NewTimer(o.cfg.MaxWait)
	defer timer.Stop()
	var err error
	select {
	case <-pw.got:
		o.mu.Lock()
		one := o.startSlot(name, path, memoryLimitMB, nil)
		o.mu.Unlock()
		return one, nil
	case <-timer.C:
		err = fmt.Errorf("%w: %d one-shots are running, the most allowed, and none finished within %s; retry later or raise oneShot.maxConcurrent", ErrQueueFull, o.cfg.MaxConcurrent, o.cfg.MaxWait)
	case <-ctx.Done():
		err = contextFailure(ctx)
	}
	o.mu.Lock()
	if !o.waiting.remove(pw) {
		o.givePlace() // handed a place just now: pass it on
	}
	o.mu.Unlock()
	o.leave()
	return nil, err
}

// startSlot starts a one-shot slot in a place already counted. o.mu must
// be held.
func (o *oneShots) startSlot(name, path string, memoryLimitMB int, ps *pluginSpares) *oneShot {
	one := &oneShot{o: o, name: name, ps: ps, spare: ps != nil, readyC: make(chan struct{}), endedC: make(chan struct{})}
	one.binary, _ = os.Stat(path)
	cfg := slotConfig{
		launch:       o.launchOf(name, path, memoryLimitMB),
		start:        o.start,
		recycleAfter: 1,
		exact:        true,
		logger:       o.logger.With("plugin", name),
	}
	if ps != nil {
		verify := o.verify
		start := o.start
		cfg.start = func(ctx context.Context, l launch) (proc, error) {
			if verify != nil {
				if err := verify(name, path); err != nil {
					return nil, err
				}
			}
			return start(ctx, l)
		}
	}
	o.nextID++
	one.slot = newSlot(o.nextID, &o.mu, one, cfg, withPlugin(o.ctx, name))
	if !o.spawn(one.slot.run) {
		// The supervisor stopped: no process is started.
		one.slot.interrupt(nil)
		one.slot.worker.startErr = fmt.Errorf("%w: wpm takes no new tasks", ErrShuttingDown)
		one.spare = false
		o.givePlace()
		closeOnce(one.endedC)
	}
	return one
}

// claim reserves the ready slot's worker for the run's one task.
func (one *oneShot) claim() *worker {
	o := one.o
	o.mu.Lock()
	defer o.mu.Unlock()
	w := one.slot.worker
	w.inflight++
	w.taken++
	if w.state == StateIdle {
		w.become(StateBusy)
	}
	return w
}

// finish ends a run's task on w: the slot stops the process, and its place
// is freed once it is gone. A run that got an answer lets its plugin have
// spares.
func (o *oneShots) finish(one *oneShot, w *worker, healthy bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w.inflight--
	w.tasksDone++
	if w.state == StateBusy {
		w.become(StateIdle)
	}
	w.retireWhenIdle()
	if ps := o.spares[one.name]; ps != nil && healthy && !ps.ok {
		ps.ok = true
		o.refill()
	}
}

// slotReady: a spare is ready for runs; a run's own slot wakes its run.
func (one *oneShot) slotReady(s *slot) {
	o := one.o
	if one.spare && one.ps != nil {
		ps := one.ps
		ps.starting = slices.DeleteFunc(ps.starting, func(x *oneShot) bool { return x == one })
		if one.keeps || s.ctx.Err() != nil {
			// Evicted while it started: it is stopping, never offered.
		} else if o.closed {
			s.removed = true
			s.worker.retireWhenIdle()
		} else {
			ps.ready = append(ps.ready, one)
			s.cfg.logger.Debug("warm spare ready", "pid", s.worker.proc.PID())
			if o.waiting.len() > 0 {
				// A run waits for this place: it gets it once the spare is gone.
				ps.ready = ps.ready[:len(ps.ready)-1]
				ps.evicted++
				one.spare = false
				s.stop(errSpareEvicted)
			}
		}
	}
	closeOnce(one.readyC)
}

// slotEnded: the slot's process is gone; its place is freed unless it
// passed to a run.
func (one *oneShot) slotEnded(s *slot, reason Cause, ending bool) {
	o := one.o
	if !ending {
		return
	}
	if ps := one.ps; ps != nil && one.spare {
		wasReady := slices.Contains(ps.ready, one)
		ps.ready = slices.DeleteFunc(ps.ready, func(x *oneShot) bool { return x == one })
		ps.starting = slices.DeleteFunc(ps.starting, func(x *oneShot) bool { return x == one })
		switch {
		case one.keeps || o.closed || reason == CauseStopped:
		case reason == CauseStartFailed && errors.Is(s.worker.startErr, os.ErrNotExist):
			o.forget(ps)
		case reason == CauseStartFailed:
			o.lose(ps, s.worker.startErr)
		case wasReady:
			o.lose(ps, fmt.Errorf("%w: the warm spare exited while waiting (%s)", ErrWorkerCrashed, reason))
			if _, err := os.Stat(ps.path); err != nil {
				o.forget(ps)
			}
		}
	}
	if !one.keeps {
		o.givePlace()
	}
	closeOnce(one.endedC)
}

// givePlace frees a place: to the oldest waiting run, or for spares. o.mu
// must be held.
func (o *oneShots) givePlace() {
	if o.waiting.len() > 0 {
		o.waiting.pop().got <- struct{}{}
		return
	}
	o.places--
	o.refill()
}

// leave ends a run admitted by take.
func (o *oneShots) leave() {
	o.mu.Lock()
	o.active--
	o.checkDrained()
	o.mu.Unlock()
}

func (o *oneShots) checkDrained() {
	if o.closed && o.active == 0 {
		closeOnce(o.drainC)
	}
}

// sparesOf returns the spares of the plugin name, made on first use, or
// nil when spares are off. o.mu must be held.
func (o *oneShots) sparesOf(name, path string) *pluginSpares {
	if o.cfg.Spares <= 0 {
		return nil
	}
	ps, ok := o.spares[name]
	if !ok {
		ps = &pluginSpares{name: name, path: path}
		o.spares[name] = ps
	}
	ps.path = path
	return ps
}

// claimSpare hands a run the oldest live spare of ps that can take a
// memory limit of memoryLimitMB and still runs the plugin's current
// binary, or returns nil. o.mu must be held.
func (o *oneShots) claimSpare(ps *pluginSpares, memoryLimitMB int) *oneShot {
	if ps == nil {
		return nil
	}
	for i, one := range ps.ready {
		p := one.slot.worker.proc
		if !alive(p) {
			// Dead before its slot noticed: lost now, so that a run that
			// succeeds after this one lets the plugin have spares again.
			ps.ready = slices.Delete(ps.ready, i, i+1)
			one.spare = false
			o.lose(ps, fmt.Errorf("%w: the warm spare exited while waiting", ErrWorkerCrashed))
			return o.claimSpare(ps, memoryLimitMB)
		}
		if !canLimit(p.MemoryLimitMB(), memoryLimitMB) {
			continue
		}
		if fi, err := os.Stat(ps.path); err != nil || !sameBinary(one.binary, fi) {
			// The plugin was replaced in the directory: the spare runs the
			// old binary, so it goes, and its replacement runs the new one.
			ps.ready = slices.Delete(ps.ready, i, i+1)
			one.spare = false
			one.slot.stop(errSpareEvicted)
			return o.claimSpare(ps, memoryLimitMB)
		}
		if p.MemoryLimitMB() != memoryLimitMB {
			if err := p.LowerMemoryLimit(memoryLimitMB); err != nil {
				o.logger.Warn("could not lower a warm spare's memory limit", "plugin", ps.name, "error", err)
				continue
			}
		}
		ps.ready = slices.Delete(ps.ready, i, i+1)
		one.spare = false
		ps.used++
		return one
	}
	return nil
}

// canLimit reports whether a process started under a limit of hasMB can be
// brought to wantMB (0 means none): a hard limit can be lowered only.
func canLimit(hasMB, wantMB int) bool {
	return hasMB == wantMB || hasMB == 0 || (wantMB > 0 && wantMB < hasMB)
}

// alive reports whether p's process still runs. A process that died is
// seen at once, before it is reaped: its resident size reads as zero, or
// not at all.
func alive(p proc) bool {
	select {
	case <-p.Done():
		return false
	default:
	}
	rss, ok := p.RSS()
	return !ok || rss > 0
}

// sameBinary reports whether two looks at a plugin's file saw the same
// binary: the same file, not rewritten since.
func sameBinary(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// evictSpare gives the place of a spare to a run: the oldest idle one, of
// any plugin, else one being started (its start is interrupted). It
// reports whether there was one. o.mu must be held.
func (o *oneShots) evictSpare() bool {
	var victim *oneShot
	for _, ps := range o.spares {
		if len(ps.ready) > 0 && (victim == nil || ps.ready[0].slot.worker.proc.StartedAt().Before(victim.slot.worker.proc.StartedAt())) {
			victim = ps.ready[0]
		}
	}
	if victim == nil {
		for _, ps := range o.spares {
			if len(ps.starting) > 0 {
				victim = ps.starting[0]
				break
			}
		}
	}
	if victim == nil {
		return false
	}
	ps := victim.ps
	ps.ready = slices.DeleteFunc(ps.ready, func(x *oneShot) bool { return x == victim })
	ps.starting = slices.DeleteFunc(ps.starting, func(x *oneShot) bool { return x == victim })
	ps.evicted++
	victim.keeps = true
	victim.slot.stop(errSpareEvicted)
	return true
}

// errSpareEvicted interrupts a spare whose place a run takes.
var errSpareEvicted = errors.New("the warm spare's place went to a run")

// refill starts spares for every plugin short of cfg.Spares that may have
// them, while places are free and no run waits. o.mu must be held.
func (o *oneShots) refill() {
	if o.closed {
		return
	}
	for _, ps := range o.spares {
		for ps.ok && len(ps.ready)+len(ps.starting) < o.cfg.Spares && o.places < o.cfg.MaxConcurrent && o.waiting.len() == 0 {
			o.places++
			one := o.startSlot(ps.name, ps.path, o.cfg.MemoryLimitMB, ps)
			ps.starting = append(ps.starting, one)
		}
	}
}

// lose records that a spare of ps failed to start or died while waiting:
// the plugin gets no new spare until a run of it succeeds. o.mu must be
// held.
func (o *oneShots) lose(ps *pluginSpares, err error) {
	ps.lost++
	ps.lastErr = err
	ps.ok = false
	o.logger.Warn("warm spare lost; none is started again until a run of the plugin succeeds", "plugin", ps.name, "error", err)
}

// forget drops a plugin that left the directory from the spares: it gets
// spares again if it comes back and runs. o.mu must be held.
func (o *oneShots) forget(ps *pluginSpares) {
	if len(ps.ready) == 0 && len(ps.starting) == 0 && o.spares[ps.name] == ps {
		delete(o.spares, ps.name)
	}
}

// close stops new runs and stops the warm spares; running runs go on.
func (o *oneShots) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	for _, ps := range o.spares {
		for _, one := range slices.Concat(ps.ready, ps.starting) {
			one.slot.stop(errSpareEvicted)
		}
	}
	o.checkDrained()
}

// drained is closed once closed and no run is left.
func (o *oneShots) drained() <-chan struct{} { return o.drainC }

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
	s := OneShotStats{MaxConcurrent: o.cfg.MaxConcurrent, Running: o.active, Places: o.places}
	for _, ps := range o.spares {
		ss := SpareStats{Plugin: ps.name, Starting: len(ps.starting), Used: ps.used, Cold: ps.cold, Evicted: ps.evicted, Lost: ps.lost}
		for _, r := range ps.ready {
			ss.ReadyPIDs = append(ss.ReadyPIDs, r.slot.worker.proc.PID())
		}
		if ps.lastErr != nil {
			ss.LastError = ps.lastErr.Error()
		}
		s.Spares = append(s.Spares, ss)
	}
	slices.SortFunc(s.Spares, func(a, b SpareStats) int { return strings.Compare(a.Plugin, b.Plugin) })
	return s
}
