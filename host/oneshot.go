package host

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// oneShots runs tasks each in a fresh process that is killed after it, at
// most cfg.MaxConcurrent at once, and keeps cfg.Spares warm spares per
// plugin (spares.go).
//
// The cap is kept with places: o.places holds one token per process that
// counts against it. A run holds a place from the moment it is admitted
// until its process is gone; a spare holds one from the start of its
// process until it is gone or handed to a run, which then holds its place.
// Spares never keep a run waiting: they take only places that are free,
// a run that finds no free place takes an idle spare's, and a freed place
// goes to a waiting run before any spare.
type oneShots struct {
	cfg       OneShotConfig
	catalog   *catalog
	socketDir string
	logger    hclog.Logger
	places    chan struct{} // one token per process counted against the cap
	// verify, if set, checks a plugin's binary (by path) before a spare of
	// it is started, as a run's binary is checked before its cold start.
	verify func(path string) error

	mu      sync.Mutex
	closed  bool
	active  int // runs holding a place, kills included
	drainC  chan struct{}
	running sync.WaitGroup // runs, until their process is gone

	spares       map[string]*pluginSpares // by plugin path; made on first use
	spareReady   chan struct{}            // closed and replaced when a spare is ready
	sparesActive sync.WaitGroup           // spare goroutines and retry timers
}

func newOneShots(cfg OneShotConfig, cat *catalog, socketDir string, logger hclog.Logger) *oneShots {
	return &oneShots{
		cfg:        cfg,
		catalog:    cat,
		socketDir:  socketDir,
		logger:     logger,
		places:     make(chan struct{}, cfg.MaxConcurrent),
		drainC:     make(chan struct{}),
		spares:     make(map[string]*pluginSpares),
		spareReady: make(chan struct{}),
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
func (o *oneShots) launchOf(path string, memoryLimitMB int) launch {
	return launch{
		path:          path,
		socketDir:     o.socketDir,
		memoryLimitMB: memoryLimitMB,
		startTimeout:  o.cfg.StartTimeout,
		logger:        o.logger.With("plugin", filepath.Base(path)),
	}
}

// run runs input once in a process of the plugin at path, a warm spare if
// one is ready, and says how long it waited for a place.
func (o *oneShots) run(ctx context.Context, path string, input []byte, memoryLimitMB int) (out []byte, pid int, wait time.Duration, err error) {
	if memoryLimitMB <= 0 {
		memoryLimitMB = o.cfg.MemoryLimitMB
	}
	start := time.Now()
	s, err := o.take(ctx, path, memoryLimitMB)
	wait = time.Since(start)
	if err != nil {
		return nil, 0, wait, err
	}
	var proc *process
	if s != nil {
		proc = o.fit(s, memoryLimitMB)
	}
	if proc == nil {
		o.countCold(path)
		if proc, err = startProcess(ctx, o.launchOf(path, memoryLimitMB)); err != nil {
			o.give()
			return nil, 0, wait, err
		}
	}
	out, err, _ = call(ctx, proc, input, nil)
	// The answer goes back at once; the process is ended meanwhile, and
	// its place is free once it is gone.
	go func() {
		proc.kill(nil)
		o.give()
	}()
	return out, proc.pid, wait, err
}

// take admits a run and gets it a place: with a warm spare of its plugin
// that can hold memoryLimitMB if one is ready (s is that spare), else a
// free place, else the place of an idle spare of any plugin, else the
// first place freed within cfg.MaxWait (s is nil: the run starts its own
// process).
func (o *oneShots) take(ctx context.Context, path string, memoryLimitMB int) (s *spare, err error) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, fmt.Errorf("%w: one-shots are closed", ErrShuttingDown)
	}
	o.active++
	o.running.Add(1)
	ps := o.sparesOf(path)
	var timer *time.Timer
	for {
		// o.mu is held here.
		if s := o.claimSpare(ps, memoryLimitMB); s != nil {
			o.refill() // its replacement, if a place is free
			o.mu.Unlock()
			return s, nil
		}
		select {
		case o.places <- struct{}{}:
			o.refill()
			o.mu.Unlock()
			return nil, nil
		default:
		}
		if o.evictSpare() {
			o.mu.Unlock()
			return nil, nil
		}
		ready := o.spareReady
		o.mu.Unlock()

		if timer == nil {
			timer = time.NewTimer(o.cfg.MaxWait)
			defer timer.Stop()
		}
		select {
		case o.places <- struct{}{}:
			return nil, nil
		case <-ready:
			// A spare is ready: of this plugin, to run on, or of another,
			// whose place this run may take.
			o.mu.Lock()
		case <-timer.C:
			o.leave()
			return nil, fmt.Errorf("%w: %d one-shots are running, the most allowed, and none finished within %s; retry later or raise oneShot.maxConcurrent", ErrQueueFull, o.cfg.MaxConcurrent, o.cfg.MaxWait)
		case <-ctx.Done():
			o.leave()
			return nil, contextFailure(ctx)
		}
	}
}

// give frees a place taken by take, once the run's process is gone.
func (o *oneShots) give() {
	<-o.places
	o.mu.Lock()
	o.refill()
	o.mu.Unlock()
	o.leave()
}

// leave ends a run admitted by take.
func (o *oneShots) leave() {
	o.mu.Lock()
	o.active--
	o.checkDrained()
	o.mu.Unlock()
	o.running.Done()
}

func (o *oneShots) checkDrained() {
	if o.closed && o.active == 0 {
		select {
		case <-o.drainC:
		default:
			close(o.drainC)
		}
	}
}

// close stops new runs and stops the warm spares; running runs go on.
func (o *oneShots) close() {
	o.mu.Lock()
	o.closed = true
	o.stopSpares()
	o.checkDrained()
	o.mu.Unlock()
}

// drained is closed once closed and no run is left.
func (o *oneShots) drained() <-chan struct{} { return o.drainC }

// halt waits for every run and spare and its process to end. Runs still
// going were cancelled by the manager and kill their processes.
func (o *oneShots) halt() {
	o.close()
	o.running.Wait()
	o.sparesActive.Wait()
}
