package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	oklog "github.com/oklog/run"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/cmd/wpm/internal/config"
	"github.com/wpmdev/wpm/cmd/wpm/internal/events"
	"github.com/wpmdev/wpm/cmd/wpm/internal/metrics"
	"github.com/wpmdev/wpm/cmd/wpm/internal/tracing"
	"github.com/wpmdev/wpm/cmd/wpm/internal/ui"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// loadConfig registers the config flags on fs (those named in only, all
// when none), parses args and loads the layered configuration. Only serve
// needs a config file: for the others a missing default file is no file.
func loadConfig(fs *pflag.FlagSet, c command, args []string, e env, only ...string) (config.Config, int, bool) {
	config.RegisterFlags(fs, only...)
	if st, done := parseFlags(fs, c, args, e); done {
		return config.Config{}, st, true
	}
	file := configPath(fs, c.name != "serve")
	cfg, err := config.Load(config.Options{File: file, Environ: e.environ, Flags: fs})
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm: %v\n", err)
		return config.Config{}, 2, true
	}
	return cfg, 0, false
}

func newLogger(cfg config.Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "wpm",
		Level:      hclog.LevelFromString(cfg.Log.Level),
		Output:     w,
		JSONFormat: cfg.Log.Format == "json",
	})
}

func runServe(args []string, e env) int {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg, st, done := loadConfig(fs, lookup("serve"), args, e)
	if done {
		return st
	}
	logger := newLogger(cfg, e.stderr)
	defer captureStdLog(logger)()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	defer signal.Stop(hangups)
	file, _ := fs.GetString("config")
	load := func() (config.Config, error) {
		return config.Load(config.Options{File: file, Environ: e.environ, Flags: fs})
	}
	if err := serve(cfg, logger, signals, hangups, load); err != nil {
		logger.Error("wpm stopped", "error", err)
		return 1
	}
	return 0
}

// configPath is the config file --config names; with optional, the
// default file is none when it does not exist, so that a command works
// from any folder.
func configPath(fs *pflag.FlagSet, optional bool) string {
	file, _ := fs.GetString("config")
	if optional && !fs.Changed("config") {
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return ""
		}
	}
	return file
}

// serve runs the server until the first signal on signals, then shuts
// down: new requests get 503 while running tasks get the grace period to
// finish; a second signal ends the grace period at once. A signal on
// hangups, like POST /v1/admin/reload, re-reads the config with load and
// applies it.
func serve(cfg config.Config, logger hclog.Logger, signals, hangups <-chan os.Signal, load func() (config.Config, error)) error {
	setMemoryLimit(cfg.Runtime, logger)
	cfg = forRole(cfg)
	mx := metrics.New()
	bus := events.New(0, 0)
	tr, err := startTracing(cfg, logger)
	if err != nil {
		return err
	}
	defer stopTracing(tr, logger)
	mgr, err := host.New(cfg.Host, host.WithLogger(logger), host.WithObserver(mx), host.WithEvents(bus.Publish),
		host.WithTracerProvider(tr.Provider))
	if err != nil {
		return err
	}
	if err := mx.WatchPools(mgr); err != nil {
		return undo(fmt.Errorf("metrics: %w", err), mgr.Shutdown)
	}
	tasks, err := startTasks(cfg, mgr, bus.Publish, tr.Provider, logger)
	if err != nil {
		return undo(err, mgr.Shutdown)
	}
	if err := mx.Registry().Register(tasks.Collector()); err != nil {
		return undo(fmt.Errorf("metrics: %w", err), tasks.Stop, mgr.Shutdown)
	}
	reconcileSchedules(tasks, cfg, logger)
	reload := func() error {
		next, err := reloadConfig(cfg, mgr, load, logger)
		if err != nil {
			return err
		}
		tasks.SetRetries(next.Retries)
		reconcileTasks(tasks, logger)
		reconcileSchedules(tasks, next, logger)
		return nil
	}
	srv := newAPI(cfg, mgr, tasks, mx, bus, reload, tr.Provider, logger)
	ln, err := listen(cfg, srv, logger)
	if err != nil {
		return undo(err, tasks.Stop, mgr.Shutdown)
	}

	// The parts, in the order they stop. The first to return (a signal, or
	// the HTTP server failing) ends the group, which then interrupts every
	// part one after another in this order (oklog/run's deterministic
	// teardown) and returns once all have.
	stop := newShutdown(signals, cfg.Shutdown.Grace, logger)
	defer stop.end()
	var g oklog.Group
	g.Add(stop.wait, stop.interrupt)       // the first SIGINT or SIGTERM; a second cuts the grace short
	g.Add(reloadOnHangup(hangups, reload)) // SIGHUP re-reads the config
	g.Add(stopping(srv.StartShutdown))     // new requests get 503 shutting_down
	// Asynchronous tasks stop first: no new ones are taken off the queue,
	// running ones get the grace period, and those cut off run again at
	// the next start.
	g.Add(stop.within(tasks.Stop, "asynchronous tasks were cut off"))
	g.Add(stop.within(mgr.Shutdown, "tasks were cut off"))
	// Every task has answered; let the answers be written, then close.
	g.Add(serveHTTP(srv, ln, logger))
	g.Add(publishStats(srv)) // the pools' live state, for the dashboard
	logger.Info("wpm serving", "addr", ln.Addr().String(), "version", version, "role", cfg.Role, "host", tasks.Self(),
		"pools", len(cfg.Host.Pools), "plugins", cfg.Host.PluginDir)
	if cfg.Role != config.RoleWorker {
		logger.Info("dashboard", "url", "http://"+ln.Addr().String()+"/ui/")
	}
	if err := g.Run(); err != nil {
		return err
	}
	logger.Info("wpm stopped")
	return nil
}

// undo stops the parts started before one that failed to start, in the
// order given (the last started first), and returns err.
func undo(err error, stops ...func(context.Context) error) error {
	for _, stop := range stops {
		_ = stop(context.Background())
	}
	return err
}

// newAPI makes the HTTP API over mgr and tasks.
func newAPI(cfg config.Config, mgr *host.Manager, tasks *queue.Engine, mx *metrics.Metrics, bus *events.Bus, reload func() error, tp trace.TracerProvider, logger hclog.Logger) *api.Server {
	return api.New(mgr, api.Options{
		BodyLimitBytes: cfg.HTTP.BodyLimitBytes,
		Logger:         logger.Named("http"),
		AuthToken:      cfg.HTTP.AuthToken,
		MetricsAuth:    cfg.HTTP.MetricsAuth,
		Metrics:        mx.Handler(),
		Reload:         reload,
		ReadTimeout:    cfg.HTTP.ReadTimeout,
		IdleTimeout:    cfg.HTTP.IdleTimeout,
		MaxConns:       cfg.HTTP.MaxConns,

		InflightBodyLimitBytes: cfg.HTTP.InflightBodyLimitBytes,
		OneShotMemoryLimitMB:   cfg.Host.OneShot.MemoryLimitMB,
		Tasks:                  tasks,
		NoWorkers:              cfg.Role == config.RoleAPI,
		HealthOnly:             cfg.Role == config.RoleWorker,
		Events:                 bus,
		UI:                     ui.Handler(),
		TracerProvider:         tp,
	})
}

// listen opens http.addr, warning when the API is open beyond this machine
// without a token.
func listen(cfg config.Config, srv *api.Server, logger hclog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (http.addr): %w", cfg.HTTP.Addr, err)
	}
	if cfg.HTTP.AuthToken == "" && !api.Loopback(ln.Addr()) {
		logger.Warn("the API listens beyond this machine without a token: anyone who reaches it can run tasks; set http.authToken (WPM_HTTP_AUTHTOKEN) or bind http.addr to 127.0.0.1",
			"addr", ln.Addr().String())
	}
	return srv.LimitListener(ln), nil
}

// forRole drops the pools and warm spares of a host of role api, which runs
// no worker.
func forRole(cfg config.Config) config.Config {
	if cfg.Role == config.RoleAPI {
		cfg.Host.Pools = nil
		cfg.Host.OneShot.Spares = 0
	}
	return cfg
}

// hostName is this host's name in the cluster: nats.name, or the
// machine's host name and the HTTP port.
func hostName(cfg config.Config) string {
	if cfg.NATS.Name != "" {
		return cfg.NATS.Name
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "wpm"
	}
	if _, port, err := net.SplitHostPort(cfg.HTTP.Addr); err == nil {
		name += "-" + port
	}
	return name
}

// tasksStartBound bounds connecting to NATS and making the stream, bucket
// and consumers at start.
const tasksStartBound = 30 * time.Second

// startTasks starts the asynchronous-task engine over mgr: an embedded
// NATS server on nats.storeDir, or the server at nats.url. events receives
// the events of tasks other hosts run.
func startTasks(cfg config.Config, mgr *host.Manager, events func(host.Event), tp trace.TracerProvider, logger hclog.Logger) (*queue.Engine, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tasksStartBound)
	defer cancel()
	tasks, err := queue.Start(ctx, mgr, queue.Options{
		StoreDir:           cfg.NATS.StoreDir,
		Listen:             cfg.NATS.Listen,
		ListenToken:        cfg.NATS.ListenAuth.Token,
		ListenUser:         cfg.NATS.ListenAuth.User,
		ListenPassword:     cfg.NATS.ListenAuth.Password,
		ListenInsecure:     cfg.NATS.ListenInsecure,
		URL:                cfg.NATS.URL,
		SyncAlways:         cfg.NATS.SyncAlways,
		Retention:          cfg.Async.Retention,
		MaxResultBytes:     cfg.Async.MaxResultBytes,
		MaxInputBytes:      cfg.HTTP.BodyLimitBytes,
		DedupWindow:        cfg.Async.DedupWindow,
		AckWait:            cfg.Async.AckWait,
		MaxDelay:           cfg.Async.MaxDelay,
		CallbackAllow:      cfg.Async.CallbackAllow,
		CallbackSecret:     cfg.Async.CallbackSecret,
		OneShotConcurrency: max(1, cfg.Host.OneShot.MaxConcurrent/2),
		Retries:            cfg.Retries,
		Credentials:        cfg.NATS.Credentials,
		Replicas:           cfg.NATS.Replicas,
		TLSCA:              cfg.NATS.TLS.CA,
		TLSCert:            cfg.NATS.TLS.Cert,
		TLSKey:             cfg.NATS.TLS.Key,
		Name:               hostName(cfg),
		Address:            cfg.HTTP.Addr,
		Role:               cfg.Role,
		Version:            version,
		APIOnly:            cfg.Role == config.RoleAPI,
		Events:             events,
		Logger:             logger.Named("async"),
		TracerProvider:     tp,
	})
	if err != nil {
		return nil, fmt.Errorf("asynchronous tasks: %w", err)
	}
	where := "embedded, store " + cfg.NATS.StoreDir
	if cfg.NATS.URL != "" {
		where = cfg.NATS.URL
	}
	logger.Info("asynchronous tasks ready", "nats", where)
	return tasks, nil
}

// setMemoryLimit gives wpm's own heap the soft limit runtime.memoryLimit,
// so that the garbage collector works harder near it and returns freed
// memory to the OS; 0 leaves Go's default (GOMEMLIMIT, if set).
func setMemoryLimit(rt config.Runtime, logger hclog.Logger) {
	if rt.MemoryLimitBytes <= 0 {
		return
	}
	debug.SetMemoryLimit(rt.MemoryLimitBytes)
	logger.Debug("memory limit set", "bytes", rt.MemoryLimitBytes)
}

// reconcileBound bounds matching the queue's runners to the pools after
// a reload.
const reconcileBound = 10 * time.Second

// reconcileTasks starts the queue's runners of the pools a reload added
// and stops those of the pools it removed. The reload has applied by then:
// a failure is logged, and the runners still missing start once NATS
// answers.
func reconcileTasks(tasks *queue.Engine, logger hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), reconcileBound)
	defer cancel()
	if err := tasks.Reconcile(ctx); err != nil {
		logger.Warn("asynchronous tasks: the runners do not match the reloaded pools yet", "error", err)
	}
}

// reconcileSchedules makes, updates and removes the schedules the config
// declares (schedules:); those made through the API stay. A failure is
// logged: the config was checked, so it is NATS not answering, or a
// plugin missing from the plugins directory.
func reconcileSchedules(tasks *queue.Engine, cfg config.Config, logger hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), reconcileBound)
	defer cancel()
	if err := tasks.ReconcileSchedules(ctx, cfg.QueueSchedules()); err != nil {
		logger.Warn("schedules: the config's schedules are not all in place", "error", err)
	}
}

// reloadConfig loads the config again and applies its pools to mgr. Settings
// that apply only on restart (http, log, shutdown) are reported, not
// applied. A refused config leaves everything as it was.
func reloadConfig(running config.Config, mgr *host.Manager, load func() (config.Config, error), logger hclog.Logger) (config.Config, error) {
	next, err := load()
	if err == nil {
		next = forRole(next)
		err = mgr.Reload(next.Host)
	}
	if err != nil {
		logger.Error("config reload refused; the running config stays", "error", err)
		return config.Config{}, err
	}
	if next.HTTP != running.HTTP || next.Log != running.Log || next.Shutdown != running.Shutdown || next.Runtime != running.Runtime ||
		next.NATS != running.NATS || next.Role != running.Role || !reflect.DeepEqual(next.Async, running.Async) || next.Tracing != running.Tracing {
		logger.Warn("role, http, log, shutdown, runtime, nats, async and tracing settings changed; they apply on restart")
	}
	return next, nil
}

// tracingFlushBound bounds sending the last spans at the end of serve.
const tracingFlushBound = 5 * time.Second

// startTracing starts OpenTelemetry traces when tracing.endpoint is set;
// otherwise the Tracing is off (a nil Provider) and costs nothing.
func startTracing(cfg config.Config, logger hclog.Logger) (tracing.Tracing, error) {
	tr, err := tracing.Start(tracing.Config{Endpoint: cfg.Tracing.Endpoint, ServiceName: cfg.Tracing.ServiceName,
		SampleRatio: cfg.Tracing.SampleRatio, Version: version, Instance: hostName(cfg)})
	if err != nil {
		return tracing.Tracing{}, err
	}
	if tr.Provider != nil {
		logger.Info("tracing", "endpoint", cfg.Tracing.Endpoint, "service", cfg.Tracing.ServiceName, "sampleRatio", cfg.Tracing.SampleRatio)
	}
	return tr, nil
}

// stopTracing sends the spans not sent yet and stops the provider.
func stopTracing(tr tracing.Tracing, logger hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingFlushBound)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		logger.Warn("tracing: the last spans were not sent", "error", err)
	}
}
