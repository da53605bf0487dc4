package queue

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/host"
)

// Names in JetStream.
const (
	streamName    = "WPM_TASKS"
	bucketName    = "wpm_tasks"
	subjectPrefix = "wpm.tasks."
	oneShotName   = "oneshot"
)

// Options configures an [Engine]; they map onto the nats and async
// sections of wpm's config file.
type Options struct {
	// StoreDir is where the embedded server keeps its files (nats.storeDir).
	StoreDir string
	// Listen is the embedded server's host:port for other clients; empty
	// opens no port (nats.listen).
	Listen string
	// ListenToken, or ListenUser and ListenPassword, are what clients of
	// the listening embedded server must present (nats.listenAuth); Listen
	// needs one of them unless ListenInsecure is set.
	ListenToken, ListenUser, ListenPassword string
	// ListenInsecure opens Listen without credentials
	// (nats.listenInsecure); a warning is logged at every start.
	ListenInsecure bool
	// URL is an external NATS server, or several comma-separated; then
	// nothing is embedded (nats.url).
	URL string
	// Credentials is a NATS credentials file (nats.credentials).
	Credentials string
	// TLSCA, TLSCert and TLSKey are PEM files for TLS to an external
	// server (nats.tls).
	TLSCA, TLSCert, TLSKey string
	// Replicas is how many servers keep each stream and bucket
	// (nats.replicas); 0 means 1.
	Replicas int
	// Name names this host in the cluster and to NATS (nats.name); empty
	// means "wpm".
	Name string
	// Address, Role and Version are what this host announces besides its
	// pools: its HTTP address, role and wpm's version.
	Address, Role, Version string
	// APIOnly is set on a host of role api: it takes no task off the
	// queue (it runs no pool and no one-shot), it only submits them.
	APIOnly bool
	// SyncAlways fsyncs every write of the embedded server (nats.syncAlways).
	SyncAlways bool
	// Retention is how long a task's record is kept after it ended
	// (async.retention); a live task's record is kept until it ends.
	Retention time.Duration
	// MaxResultBytes bounds a stored result (async.maxResultBytes).
	MaxResultBytes int64
	// MaxInputBytes is the largest task input to take (http.bodyLimit);
	// with MaxResultBytes it sizes the embedded server's max_payload. 0
	// means 10 MB.
	MaxInputBytes int64
	// MaxDelay bounds a delayed task's wait (async.maxDelay); 0 means
	// MaxDelayDefault.
	MaxDelay time.Duration
	// DedupWindow is how long an idempotency key holds (async.dedupWindow).
	DedupWindow time.Duration
	// AckWait is how long a task whose runner went silent waits before it
	// runs again (async.ackWait); running tasks report progress well
	// within it.
	AckWait time.Duration
	// Retries are the pools' retry policies, by pool name (pools[].retries);
	// a pool not named never retries. SetRetries replaces them.
	Retries map[string]Retries
	// OneShotConcurrency caps the asynchronous one-shots running at once;
	// 0 means 2.
	OneShotConcurrency int
	// PollInterval is how often an idle runner looks for tasks that
	// became due without a new submit (retries after their back-off,
	// redeliveries); 0 means 1s.
	PollInterval time.Duration
	// CallbackAllow lists the URL prefixes callbacks may go to; empty
	// refuses every callbackUrl (async.callbackAllow). A callback URL must
	// have an entry's scheme, host and port and a path under the entry's,
	// compared by segments once both are normalised; see
	// [CheckCallbackAllow].
	CallbackAllow []string
	// CallbackSecret, when set, signs each callback's body with
	// HMAC-SHA256 in the X-Wpm-Signature header (async.callbackSecret).
	CallbackSecret string
	// CallbackBackoff is the wait before a callback's second attempt,
	// doubled after each; 0 means 1s.
	CallbackBackoff time.Duration
	// Events, when set, receives the events of tasks that other hosts run
	// (events.go); like host.WithEvents' sink it must never block.
	Events func(host.Event)
	// Logger receives the engine's log; nil discards it.
	Logger hclog.Logger
	// TracerProvider, when set, traces submits, forwards and the tasks
	// this engine runs (trace.go); nil traces nothing.
	TracerProvider trace.TracerProvider
}

// withDefaults fills the zero fields that have defaults.
func (o Options) withDefaults() Options {
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
	o.Retention = max(o.Retention, time.Second) // a message's TTL is whole seconds
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 1_000_000
	}
	if o.MaxInputBytes <= 0 {
		o.MaxInputBytes = 10_000_000
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = 2 * time.Minute
	}
	o.DedupWindow = max(o.DedupWindow, time.Second)
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.OneShotConcurrency <= 0 {
		o.OneShotConcurrency = 2
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.CallbackBackoff <= 0 {
		o.CallbackBackoff = time.Second
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Name == "" {
		o.Name = "wpm"
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Role == "" {
		o.Role = "all"
		if o.APIOnly {
			o.Role = "api"
		}
	}
	return o
}

// Engine stores, runs and reports asynchronous tasks. Create it with
// [Start] and stop it with [Engine.Stop]; its methods are safe for
// concurrent use.
type Engine struct {
	opts Options

	retriesMu sync.RWMutex
	retries   map[string]Retries // by pool (retries.go)

	mgr    *host.Manager
	logger hclog.Logger
	srv    *embedded // nil with an external server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
	// results keeps results too large for their records (results.go).
	results jetstream.ObjectStore
	// index is the stream of new tasks' entries (index.go).
	index jetstream.Stream

	// loops ends the runners; work ends running tasks (at the end of the
	// shutdown grace period).
	loops     context.Context
	stopLoops context.CancelFunc
	work      context.Context
	stopWork  context.CancelCauseFunc
	runners   sync.WaitGroup
	tasks     sync.WaitGroup
	client    *http.Client
	// The stored callbacks (callback.go): their stream and consumer, the
	// delivery loop and its posts, cbCtx ending them (at the end of the
	// grace period), cbWake waking the loop, and cbPending the tasks whose
	// callback this engine stored and did not see sent (guarded by mu).
	cbStream  jetstream.Stream
	cbCons    jetstream.Consumer
	callbacks sync.WaitGroup
	cbCtx     context.Context
	stopCbs   context.CancelFunc
	cbWake    chan struct{}
	cbPending map[string]struct{}

	mu       sync.Mutex
	wake     map[string]chan struct{}
	runnerOf map[string]*runner                 // by pool, "" for one-shots
	counters counters                           // by subject: a runner's signal
	running  map[string]context.CancelCauseFunc // by task id
	stopped  bool

	// pausesKV is the pools bucket; paused the paused pools, by name,
	// guarded by mu (pause.go).
	pausesKV jetstream.KeyValue
	paused   map[string]bool

	members *members      // the cluster's hosts (cluster.go)
	repairs chan struct{} // asks repairLoop to run (repair.go)
	// storeFull is set while the store takes no writes; storageWake
	// wakes storageLoop (storage.go).
	storeFull   atomic.Bool
	storageWake chan struct{}
	allow       []callbackURL // async.callbackAllow, parsed
	// scheds is the schedules' bucket (schedule.go), set by setUp.
	schedMu sync.Mutex
	scheds  jetstream.KeyValue
}

// Start connects to NATS (starting the embedded server unless opts.URL is
// set), makes the stream, bucket and consumers, and starts a runner per
// pool of mgr and one for one-shots. The caller must call Stop.
func Start(ctx context.Context, mgr *host.Manager, opts Options) (*Engine, error) {
	opts = opts.withDefaults()
	allow, err := parseAllow(opts.CallbackAllow, opts.Logger)
	if err != nil {
		return nil, err
	}
	srv, nc, err := connect(opts)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, mgr: mgr, logger: opts.Logger, srv: srv, nc: nc,
		wake: map[string]chan struct{}{}, running: map[string]context.CancelCauseFunc{},
		runnerOf: map[string]*runner{}, counters: newCounters(), client: newCallbackClient(), allow: allow,
		cbWake: make(chan struct{}, 1), cbPending: map[string]struct{}{}, repairs: make(chan struct{}, 1),
		storageWake: make(chan struct{}, 1), retries: opts.Retries, paused: map[string]bool{}}
	e.loops, e.stopLoops = context.WithCancel(context.Background())
	e.work, e.stopWork = context.WithCancelCause(context.Background())
	e.cbCtx, e.stopCbs = context.WithCancel(context.Background())
	if err := e.setUpRetrying(ctx); err != nil {
		e.abort()
		return nil, err
	}
	if len(allow) > 0 {
		e.callbacks.Go(e.deliverLoop)
	}
	if err := e.startCluster(ctx); err != nil {
		e.abort()
		return nil, err
	}
	if err := e.startPauses(ctx); err != nil {
		e.abort()
		return nil, err
	}
	nc.SetReconnectHandler(func(nc *nats.Conn) {
		e.logger.Info("NATS connection back", "server", nc.ConnectedUrlRedacted())
		e.needRepair()
	})
	e.runners.Go(e.repairLoop)
	e.runners.Go(e.storageLoop)
	if !opts.APIOnly {
		if err := e.startRunners(ctx); err != nil {
			e.abort()
			return nil, err
		}
		e.runners.Go(e.tickLoop) // schedule.go
	}
	return e, nil
}

// abort undoes a Start that failed half-way.
func (e *Engine) abort() {
	e.stopLoops()
	e.runners.Wait()
	e.stopWork(context.Canceled)
	e.stopCbs()
	e.callbacks.Wait()
	e.close()
}

// setUpAttempt bounds one attempt of setUp: a NATS cluster that is still
// electing its JetStream leader drops requests instead of answering them.
const setUpAttempt = 5 * time.Second

// setUpRetrying runs setUp until it succeeds or ctx ends.
func (e *Engine) setUpRetrying(ctx context.Context) error {
	for {
		attempt, cancel := context.WithTimeout(ctx, setUpAttempt)
		err := e.setUp(attempt)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		e.logger.Info("JetStream not ready yet; trying again", "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// setUp makes (or updates) the stream and the bucket.
func (e *Engine) setUp(ctx context.Context) error {
	js, err := jetstream.New(e.nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	e.js = js
	e.stream, err = ensureStream(ctx, js, e.taskStreamConfig())
	if err != nil {
		return fmt.Errorf("make the task stream %s: %w", streamName, err)
	}
	e.kv, err = ensureKV(ctx, js, e.tasksBucketConfig())
	if err != nil {
		return fmt.Errorf("make the task bucket %s: %w", bucketName, err)
	}
	e.results, err = ensureResults(ctx, js, e.resultsConfig())
	if err != nil {
		return fmt.Errorf("make the results store %s: %w", resultsBucket, err)
	}
	if err := e.setUpSchedules(ctx); err != nil {
		return err
	}
	if err := e.setUpIndex(ctx); err != nil {
		return err
	}
	return e.setUpCallbacks(ctx)
}

// workQueue is the config of a work-queue stream on the subjects under
// prefix, its messages deduplicated by id within async.dedupWindow.
func (e *Engine) workQueue(name, prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{prefix + ">"},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Duplicates: e.opts.DedupWindow,
		Replicas:   e.opts.Replicas,
	}
}

// tasksBucketConfig is the task records' bucket's. It has no TTL of its
// own: that would expire a task still queued or running. An ended record,
// and an idempotency key, carry their own TTL (putTTL).
func (e *Engine) tasksBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         bucketName,
		Storage:        jetstream.FileStorage,
		Replicas:       e.opts.Replicas,
		LimitMarkerTTL: time.Minute,
	}
}

// consumerConfig is the durable consumer's of pool ("" for one-shots).
func (e *Engine) consumerConfig(pool string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       consumerName(pool),
		FilterSubject: subject(pool),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       e.opts.AckWait,
		MaxDeliver:    -1,
	}
}

// subject is the subject of pool's tasks; "" is one-shots.
func subject(pool string) string {
	if pool == "" {
		return subjectPrefix + oneShotName
	}
	return subjectPrefix + "pool." + pool
}

// consumerName is the durable consumer of pool's tasks: pool names may
// hold dots, which consumer names may not.
func consumerName(pool string) string {
	if pool == "" {
		return oneShotName
	}
	return "pool-" + hex.EncodeToString([]byte(pool))
}

// ensureRunner starts the runner of pool ("" for one-shots) unless it
// runs already or the manager no longer runs the pool.
func (e *Engine) ensureRunner(ctx context.Context, pool string) error {
	subj := subject(pool)
	e.mu.Lock()
	_, ok := e.wake[subj]
	stopped := e.stopped
	e.mu.Unlock()
	if ok || stopped {
		return nil
	}
	cons, err := e.ensureConsumers(ctx, pool)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Checked under e.mu, as Reconcile does, so that a pool removed
	// meanwhile gets no runner that Reconcile would not stop.
	if _, ok := e.wake[subj]; ok || e.stopped || pool != "" && !e.mgr.HasPool(pool) {
		return nil
	}
	wake := make(chan struct{}, 1)
	e.wake[subj] = wake
	r := &runner{e: e, pool: pool, cons: cons, wake: wake, done: make(chan struct{}), higher: make(chan struct{}, 1)}
	r.ctx, r.stop = context.WithCancel(e.loops)
	if pool == "" {
		r.slots = make(chan struct{}, e.opts.OneShotConcurrency)
	}
	e.runnerOf[pool] = r
	e.runners.Go(r.loop)
	return nil
}

// startRunners starts the runners missing for the manager's pools and
// for one-shots.
func (e *Engine) startRunners(ctx context.Context) error {
	for _, pool := range append(e.mgr.PoolNames(), "") {
		if err := e.ensureRunner(ctx, pool); err != nil {
			return err
		}
	}
	return nil
}

// Reconcile matches the runners to the manager's pools; call it after
// each [host.Manager.Reload]. A pool added gets its runner, which takes
// the tasks queued for it through any host; a pool removed has its runner
// stopped, and its queued tasks stay in the queue, for the hosts that
// still run it or for this one if the pool comes back. Tasks running on a
// removed pool end as the pool drains. It returns once the stopped runners
// have ended, or when ctx ends. A runner that could not be started (NATS
// unreachable, say) is started by the repair loop once NATS answers. It
// does nothing on a host of role api or after Stop. Safe for concurrent
// use.
func (e *Engine) Reconcile(ctx context.Context) error {
	if e.opts.APIOnly {
		return nil
	}
	var errs []error
	if err := e.startRunners(ctx); err != nil {
		errs = append(errs, err)
		e.needRepair()
	}
	var gone []*runner
	e.mu.Lock()
	for pool, r := range e.runnerOf {
		if pool != "" && !e.mgr.HasPool(pool) {
			delete(e.runnerOf, pool)
			delete(e.wake, subject(pool))
			gone = append(gone, r)
		}
	}
	e.mu.Unlock()
	for _, r := range gone {
		r.stop()
		select {
		case <-r.done:
			e.logger.Debug("runner stopped: the pool was removed", "pool", r.pool)
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("the runner of removed pool %s: %w", r.pool, ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// signal wakes the runner of subj, if any.
func (e *Engine) signal(subj string) {
	e.mu.Lock()
	wake := e.wake[subj]
	e.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// Stop stops taking tasks off the queue, lets running tasks finish until
// ctx ends, then cancels the rest (they run again at the next start),
// lets the callbacks this engine stored be sent until ctx ends (those
// unsent stay stored and are sent after the next start), and closes the
// connection and the embedded server. Tasks still queued stay queued. Call it before the manager's Shutdown.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.stopLoops()
	e.runners.Wait()
	done := make(chan struct{})
	go func() { e.tasks.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("asynchronous tasks still running at the end of the grace period were stopped; they run again at the next start: %w", ctx.Err())
		e.stopWork(fmt.Errorf("%w: wpm stopped before the task ended; it runs again at the next start", host.ErrShuttingDown))
		<-done
	}
	e.stopWork(context.Canceled)
	e.stopCallbacks(ctx)
	e.close()
	return err
}

// close closes the connection and stops the embedded server.
func (e *Engine) close() {
	if e.nc != nil {
		_ = e.nc.Flush()
		e.nc.Close()
	}
	if e.srv != nil {
		e.srv.stop()
	}
}

// errorOf turns a task's error into its record's error.
func errorOf(err error) *TaskError {
	te := &TaskError{Code: host.Code(err), Message: err.Error()}
	var hostErr *host.TaskError
	if errors.As(err, &hostErr) {
		te.Message, te.Detail = hostErr.Err.Error(), hostErr.Detail
	}
	return te
}
