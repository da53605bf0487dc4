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
// most cfg.MaxConcurrent at once.
type oneShots struct {
	cfg       OneShotConfig
	catalog   *catalog
	socketDir string
	logger    hclog.Logger
	places    chan struct{} // one token per running one-shot

	mu      sync.Mutex
	closed  bool
	active  int // runs holding a place, kills included
	drainC  chan struct{}
	running sync.WaitGroup
}

func newOneShots(cfg OneShotConfig, cat *catalog, socketDir string, logger hclog.Logger) *oneShots {
	return &oneShots{
		cfg:       cfg,
		catalog:   cat,
		socketDir: socketDir,
		logger:    logger,
		places:    make(chan struct{}, cfg.MaxConcurrent),
		drainC:    make(chan struct{}),
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

// run runs input once in a new process of the plugin at path, and says
// how long it waited for a place.
func (o *oneShots) run(ctx context.Context, path string, input []byte, memoryLimitMB int) (out []byte, pid int, wait time.Duration, err error) {
	start := time.Now()
	err = o.take(ctx)
	wait = time.Since(start)
	if err != nil {
		return nil, 0, wait, err
	}
	if memoryLimitMB <= 0 {
		memoryLimitMB = o.cfg.MemoryLimitMB
	}
	proc, err := startProcess(launch{
		path:          path,
		socketDir:     o.socketDir,
		memoryLimitMB: memoryLimitMB,
		startTimeout:  o.cfg.StartTimeout,
		logger:        o.logger.With("plugin", filepath.Base(path)),
	})
	if err != nil {
		o.give()
		return nil, 0, wait, err
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

// take waits for a free place, for at most cfg.MaxWait.
func (o *oneShots) take(ctx context.Context) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return fmt.Errorf("%w: one-shots are closed", ErrShuttingDown)
	}
	o.active++
	o.running.Add(1)
	o.mu.Unlock()
	select {
	case o.places <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(o.cfg.MaxWait)
	defer t.Stop()
	select {
	case o.places <- struct{}{}:
		return nil
	case <-t.C:
		o.leave()
		return fmt.Errorf("%w: %d one-shots are running, the most allowed, and none finished within %s; retry later or raise oneShot.maxConcurrent", ErrQueueFull, o.cfg.MaxConcurrent, o.cfg.MaxWait)
	case <-ctx.Done():
		o.leave()
		return contextFailure(ctx)
	}
}

// give frees a place taken by take.
func (o *oneShots) give() {
	<-o.places
	o.leave()
}

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

// close stops new runs; running ones go on.
func (o *oneShots) close() {
	o.mu.Lock()
	o.closed = true
	o.checkDrained()
	o.mu.Unlock()
}

// drained is closed once closed and no run is left.
func (o *oneShots) drained() <-chan struct{} { return o.drainC }

// halt waits for every run and its process to end. Runs still going were
// cancelled by the manager and kill their processes.
func (o *oneShots) halt() { o.running.Wait() }
