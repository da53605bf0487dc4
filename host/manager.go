package host

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"
)

// Manager runs wpm's pools and one-shots. Create it with [New]; all its
// methods are safe for concurrent use.
type Manager struct {
	cfg       Config
	logger    hclog.Logger
	catalog   *catalog
	scripts   *catalog // Node.js worker scripts for one-shots; nil when none
	socketDir string
	ownSocket bool // socketDir was made by New and is removed by Shutdown
	dirLock   *os.File

	paused    pausedPools // pause.go
	mu        sync.RWMutex
	pools     map[string]*pool   // changed by Reload
	poolNames []string           // sorted
	retiring  map[*pool]struct{} // pools removed by Reload, still draining
	reloadMu  sync.Mutex         // one Reload at a time
	oneShots  *oneShots

	observer Observer
	events   func(Event)  // nil: nobody listens
	tracer   trace.Tracer // nil: no spans (trace.go)
	start    startFunc
	sup      *supervisor // owns every slot and draining pool

	closed   atomic.Bool
	shutOnce sync.Once
	shutErr  error
}

// Option configures a [Manager].
type Option func(*Manager)

// WithLogger sets the logger the manager and its workers log to. The
// default discards everything.
func WithLogger(l hclog.Logger) Option {
	return func(m *Manager) { m.logger = l }
}

// Result is a task's answer.
type Result struct {
	// TaskID identifies the task in logs and answers.
	TaskID string
	// Pool is the pool that ran it; empty for a one-shot.
	Pool string
	// Plugin is the plugin that ran it.
	Plugin string
	// WorkerPID is the worker process that ran it.
	WorkerPID int
	// Output is the task's JSON output.
	Output []byte
	// Duration is the time from acceptance to answer, queue wait included.
	Duration time.Duration
}

// New checks cfg, finds every pool's plugin, and starts the pools. It
// returns once every worker has tried its first start (each start is
// bounded by its pool's StartTimeout); workers that failed are retried in
// the background, and tasks submitted meanwhile wait in the queue. The
// caller must call Shutdown.
//
// The first worker started makes the calling process a child subreaper
// (Linux), so that a process a plugin leaves behind is re-parented to it and
// killed when that worker is reaped; see host/orphans_linux.go for what that
// means for an embedding program that starts children of its own.
func New(cfg Config, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	m := &Manager{
		cfg: cfg, logger: hclog.NewNullLogger(), observer: nopObserver{}, start: startPlugin,
		pools: make(map[string]*pool), retiring: make(map[*pool]struct{}), sup: newSupervisor(),
	}
	for _, o := range opts {
		o(m)
	}
	cat, err := newCatalog(cfg.PluginDir)
	if err != nil {
		return nil, err
	}
	m.catalog = cat
	if cfg.ScriptsDir != "" {
		if m.scripts, err = newCatalog(cfg.ScriptsDir); err != nil {
			return nil, fmt.Errorf("scripts directory: %w", err)
		}
		m.scripts.scripts = true
	}
	paths := make([]string, len(cfg.Pools))
	for i, pc := range cfg.Pools {
		if paths[i], err = cat.resolvePool(pc); err != nil {
			return nil, fmt.Errorf("pools[%d].%w", i, err)
		}
	}
	if err := m.openSocketDir(); err != nil {
		return nil, err
	}
	m.oneShots = newOneShots(m.withEventScope(m.sup.ctx, PoolConfig{}), cfg.OneShot.withDefaults(), m.socketDir, m.logger.Named("oneshot"), m.start, m.sup.spawn)
	m.oneShots.verify = m.verifyPinned
	if m.scripts != nil {
		m.oneShots.scriptsDir = m.scripts.dir
	}
	for i, pc := range cfg.Pools {
		m.pools[pc.Name] = m.newPool(pc.withDefaults(), paths[i], cfg.Checksums)
	}
	m.poolNames = slices.Sorted(maps.Keys(m.pools))
	for _, p := range m.pools {
		p.startSlots()
	}
	return m, nil
}

// newPool makes (but does not start) the pool pc, running the binary at
// path, checked against checksums.
func (m *Manager) newPool(pc PoolConfig, path string, checksums map[string]string) *pool {
	return newPool(m.withEventScope(m.sup.ctx, pc), pc, m.launchFor(pc, path, checksums), m.observer, m.start, m.sup.spawn)
}

// verifyPinned checks the binary at path against the pin, if any, of the
// plugin name a caller used for it. A pin binds that name: a symlink to
// an unpinned file is checked against the name's pin, and the file that
// runs is the file hashed (the resolved path).
func (m *Manager) verifyPinned(name, path string) error {
	m.mu.RLock()
	checksums := m.cfg.Checksums
	m.mu.RUnlock()
	if verify := m.verifier(name, path, checksums); verify != nil {
		return verify()
	}
	return nil
}

// launchFor says how the workers of pool pc, running the binary at path,
// are started, checked against checksums.
func (m *Manager) launchFor(pc PoolConfig, path string, checksums map[string]string) launch {
	return launch{
		path:          path,
		socketDir:     m.socketDir,
		memoryLimitMB: pc.MemoryLimitMB,
		startTimeout:  pc.StartTimeout,
		logger:        m.logger.Named("pool").With("pool", pc.Name, "plugin", pc.Plugin),
		verify:        m.verifier(pc.Plugin, path, checksums),
		script:        pc.Script != "",
		pool:          pc.Name,
	}
}

// verifier returns the check of the binary at path against its checksum
// in checksums, or nil when the plugin is not pinned there.
func (m *Manager) verifier(plugin, path string, checksums map[string]string) func() error {
	want, ok := checksums[plugin]
	if !ok {
		return nil
	}
	return func() error { return m.catalog.verify(path, want) }
}

// pool returns the named pool.
func (m *Manager) pool(name string) (*pool, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.pools[name]
	return p, ok
}

// poolList returns every pool, sorted by name.
func (m *Manager) poolList() []*pool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*pool, len(m.poolNames))
	for i, name := range m.poolNames {
		out[i] = m.pools[name]
	}
	return out
}

// Submit runs input on a worker of the named pool and waits for the
// answer. ctx bounds the wait; the pool's task timeout counts from now,
// queue wait included. If ctx ends while the task runs, its worker is
// killed and replaced: a net/rpc call can not be canceled.
//
// Errors are [*TaskError]s once the task has an ID; match their cause with
// the package's sentinels or [Code].
func (m *Manager) Submit(ctx context.Context, poolName string, input []byte, opts ...TaskOption) (Result, error) {
	o := newTaskOptions(opts)
	p, ok := m.pool(poolName)
	if !ok {
		return Result{}, &TaskError{TaskID: o.id, Pool: poolName, Err: m.unknownPool(poolName)}
	}
	ctx, cancel, cfg := p.taskContext(ctx)
	defer cancel()
	if m.closed.Load() {
		return Result{}, &TaskError{TaskID: o.id, Pool: poolName, Plugin: cfg.Plugin, Err: fmt.Errorf("%w: wpm takes no new tasks", ErrShuttingDown)}
	}
	if m.paused.has(poolName) {
		return Result{}, &TaskError{TaskID: o.id, Pool: poolName, Plugin: cfg.Plugin, Err: pausedError(poolName)}
	}
	book, ctx := m.beginTask(ctx, o, poolName, cfg.Plugin)
	return book.end(p.submit(ctx, input, o.prio))
}

// timeoutError is the error of a task that ran past timeout.
func timeoutError(timeout time.Duration) error {
	return fmt.Errorf("%w: it ran past its timeout of %s; raise the timeout or send smaller tasks", ErrTimeout, timeout)
}

// oneShotContext bounds a one-shot by timeout (0: none) and by the end of
// the shutdown grace period.
func (m *Manager) oneShotContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, timeoutError(timeout))
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	ctx, cancelCause := context.WithCancelCause(ctx)
	stopHalt := context.AfterFunc(m.sup.ctx, func() { cancelCause(context.Cause(m.sup.ctx)) })
	return ctx, func() {
		stopHalt()
		cancelCause(context.Canceled)
		cancel()
	}
}

// finished tells the observer how a task ended.
func (m *Manager) finished(pool, plugin string, start time.Time, wait time.Duration, err error) {
	code := "ok"
	if err != nil {
		code = string(Code(err))
	}
	m.observer.TaskFinished(TaskEvent{Pool: pool, Plugin: plugin, Code: code, QueueWait: wait, Duration: time.Since(start)})
}

func taskError(id, pool, plugin string, pid int, err error) error {
	te := &TaskError{TaskID: id, Pool: pool, Plugin: plugin, WorkerPID: pid, Err: err}
	var f *failure
	if errors.As(err, &f) {
		te.Err, te.Detail = f.cause, f.detail
	}
	return te
}

func (m *Manager) unknownPool(name string) error {
	return fmt.Errorf("%w: no pool %q; known pools: %s", ErrUnknownPool, name, strings.Join(m.PoolNames(), ", "))
}

// RunOptions tunes one one-shot run. Zero fields take the configured
// defaults.
type RunOptions struct {
	// MemoryLimitMB caps the process's resident memory.
	MemoryLimitMB int
	// Timeout bounds the run from acceptance; it can not exceed the
	// configured one-shot timeout.
	Timeout time.Duration
}

// RunOnce runs input in a fresh process of the named plugin, which is
// killed after this one task. name is a plugin in the plugins directory,
// or a relative path whose last element is one; nothing else is run. At
// most the configured number of one-shots run at once; a run waits a
// bounded time for a free place, then fails with ErrQueueFull.
func (m *Manager) RunOnce(ctx context.Context, name string, input []byte, run RunOptions, opts ...TaskOption) (Result, error) {
	o := newTaskOptions(opts)
	if m.closed.Load() {
		return Result{}, &TaskError{TaskID: o.id, Plugin: name, Err: fmt.Errorf("%w: wpm takes no new tasks", ErrShuttingDown)}
	}
	path, err := m.resolveOneShot(name)
	if err != nil {
		return Result{}, &TaskError{TaskID: o.id, Plugin: name, Err: err}
	}
	plugin, _ := pluginName(name) // resolve accepted it
	if err := m.verifyPinned(plugin, path); err != nil {
		return Result{}, &TaskError{TaskID: o.id, Plugin: plugin, Err: err}
	}
	ctx, cancel := m.oneShotContext(ctx, m.oneShots.timeout(run.Timeout))
	defer cancel()
	book, ctx := m.beginTask(ctx, o, "", plugin)
	return book.end(m.oneShots.run(ctx, plugin, path, input, run.MemoryLimitMB, o.prio))
}

// resolveOneShot returns the path of what a one-shot called name runs: a
// Node.js script in the scripts directory when the name's last element is
// a .js file there, otherwise a plugin.
func (m *Manager) resolveOneShot(name string) (string, error) {
	if m.scripts != nil {
		if base, err := pluginName(name); err == nil && IsScriptName(base) {
			if path, err := m.scripts.resolve(name); err == nil {
				return path, nil
			}
		}
	}
	return m.catalog.resolve(name)
}

// Plugins lists the plugins in the plugins directory and the scripts in
// the scripts directory, with the pools that use each.
func (m *Manager) Plugins() ([]PluginInfo, error) {
	infos, err := m.catalog.list()
	if err != nil {
		return nil, err
	}
	if m.scripts != nil {
		scripts, err := m.scripts.list()
		if err != nil {
			return nil, err
		}
		infos = append(infos, scripts...)
	}
	pools := m.poolList()
	for i := range infos {
		for _, p := range pools {
			if p.settings().Plugin == infos[i].Name {
				infos[i].Pools = append(infos[i].Pools, p.name)
			}
		}
	}
	return infos, nil
}

// Shutdown stops taking tasks, lets running and queued ones finish until
// ctx ends, then stops every worker and waits for them. Tasks still running
// when ctx ends fail with ErrShuttingDown. It returns ctx's error if the
// grace period ran out. Calling it again returns the first result.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.shutOnce.Do(func() { m.shutErr = m.shutdown(ctx) })
	return m.shutErr
}

func (m *Manager) shutdown(ctx context.Context) error {
	m.closed.Store(true)
	m.reloadMu.Lock() // no reload adds or removes pools from here on
	defer m.reloadMu.Unlock()
	pools := m.poolList()
	m.mu.RLock()
	for p := range m.retiring {
		pools = append(pools, p)
	}
	m.mu.RUnlock()
	for _, p := range pools {
		p.close()
	}
	m.oneShots.close()
	graceErr := waitAll(ctx, m.oneShots.drained(), pools)
	// The grace period is over: every actor is interrupted, busy workers
	// are killed and their tasks fail with ErrShuttingDown.
	m.sup.stop(fmt.Errorf("%w: the shutdown grace period ended before the task did", ErrShuttingDown))
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Go(func() { p.stop(context.Cause(m.sup.ctx)) })
	}
	wg.Wait()
	// Killed processes go at once; the bound is for a kernel that is slow
	// to reap them.
	stopCtx, cancel := context.WithTimeout(context.Background(), actorStopBound)
	defer cancel()
	stopErr := m.sup.wait(stopCtx)
	if m.ownSocket {
		m.releaseSocketDir()
	}
	switch {
	case stopErr != nil:
		return fmt.Errorf("shutdown: workers still stopping %s after the grace period: %w", actorStopBound, stopErr)
	case graceErr != nil:
		return fmt.Errorf("shutdown grace period ended with tasks running: %w", graceErr)
	}
	return nil
}

// actorStopBound bounds how long Shutdown waits for interrupted actors.
const actorStopBound = 5 * time.Second

// waitAll waits until oneShots and every pool have drained, or ctx ends.
func waitAll(ctx context.Context, oneShots <-chan struct{}, pools []*pool) error {
	for _, p := range pools {
		select {
		case <-p.drained:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-oneShots:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
