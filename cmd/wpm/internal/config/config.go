package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// DefaultFile is the config file wpm reads when --config is not given.
const DefaultFile = "config/default.yaml"

// EnvPrefix starts the name of every environment variable wpm reads.
const EnvPrefix = "WPM_"

// Config is wpm's loaded and checked configuration.
type Config struct {
	// Role is what this host does in a cluster (key role): RoleAll,
	// RoleAPI or RoleWorker.
	Role string
	// HTTP configures the HTTP API (section http).
	HTTP HTTP
	// Log configures the host's log (section log).
	Log Log
	// Shutdown configures stopping on SIGINT/SIGTERM (section shutdown).
	Shutdown Shutdown
	// Runtime tunes wpm's own Go runtime (section runtime).
	Runtime Runtime
	// NATS configures the NATS server behind asynchronous tasks (section
	// nats).
	NATS NATS
	// Async configures asynchronous tasks (section async).
	Async Async
	// Tracing configures OpenTelemetry traces (section tracing).
	Tracing Tracing
	// Host is what the host library needs: plugins.dir, plugins.checksums,
	// oneShot, node and pools.
	Host host.Config
	// Retries are the pools' retry policies for asynchronous tasks
	// (pools[].retries), by pool name: the queue's, not the host's.
	Retries map[string]queue.Retries
	// Schedules are the schedules declared in the config (section
	// schedules), made, updated and removed with it at start and reload.
	Schedules []Schedule
}

// Schedule is one entry of schedules: a recurring asynchronous task
// (queue.Schedule), declared in the config.
type Schedule struct {
	// Name identifies it: letters, digits, - and _.
	Name string `koanf:"name"`
	// Pool, or Plugin for a one-shot, runs its tasks.
	Pool   string `koanf:"pool"`
	Plugin string `koanf:"plugin"`
	// Input is each task's input, any YAML or JSON value; none means {}.
	Input any `koanf:"input"`
	// Cron is 6 fields, seconds first, in Timezone (UTC when empty).
	Cron     string `koanf:"cron"`
	Timezone string `koanf:"timezone"`
	// Every is the interval, at least 1s, when Cron is empty.
	Every time.Duration `koanf:"every"`
}

// Queue returns the schedule as the queue takes it.
func (s Schedule) Queue() (queue.Schedule, error) {
	q := queue.Schedule{Name: s.Name, Pool: s.Pool, Plugin: s.Plugin, Cron: s.Cron, Timezone: s.Timezone}
	if s.Every != 0 {
		q.Every = s.Every.String()
	}
	if s.Input != nil {
		b, err := json.Marshal(s.Input)
		if err != nil {
			return q, fmt.Errorf("input can not be written as JSON: %w", err)
		}
		q.Input = b
	}
	return q, nil
}

// QueueSchedules returns the config's schedules as the queue takes them;
// the config's checks made sure they convert.
func (c Config) QueueSchedules() []queue.Schedule {
	out := make([]queue.Schedule, 0, len(c.Schedules))
	for _, s := range c.Schedules {
		if q, err := s.Queue(); err == nil {
			out = append(out, q)
		}
	}
	return out
}

// Pool is one entry of pools: the host's settings of a pool and the
// queue's retry policy for its asynchronous tasks.
type Pool struct {
	host.PoolConfig `koanf:",squash"`
	// Retries is the pool's retry policy (pools[].retries).
	Retries queue.Retries `koanf:"retries"`
}

// The roles of a host (key role, docs/SCALING.md).
const (
	// RoleAll serves the API and runs workers.
	RoleAll = "all"
	// RoleAPI serves the API and runs no worker: every task goes through
	// NATS to a host that runs its pool.
	RoleAPI = "api"
	// RoleWorker runs workers and takes tasks from NATS; its HTTP serves
	// only /healthz, /readyz and /metrics.
	RoleWorker = "worker"
)

// HTTP is the http section; the koanf tags are its keys.
type HTTP struct {
	// Addr is the host:port the API listens on.
	Addr string `koanf:"addr"`
	// BodyLimitBytes is the largest request body accepted.
	BodyLimitBytes int64 `koanf:"bodyLimit"`
	// AuthToken, when not empty, is the token every request must carry.
	AuthToken string `koanf:"authToken"`
	// MetricsAuth says whether GET /metrics needs the token too.
	MetricsAuth bool `koanf:"metricsAuth"`
	// ReadTimeout bounds reading a whole request, headers and body.
	ReadTimeout time.Duration `koanf:"readTimeout"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration `koanf:"idleTimeout"`
	// MaxConns caps the connections open at once; more wait to be accepted.
	MaxConns int `koanf:"maxConns"`
	// InflightBodyLimitBytes caps the request-body bytes held at once by
	// all requests being served (http.inflightBodyLimit).
	InflightBodyLimitBytes int64 `koanf:"inflightBodyLimit"`
}

// Runtime is the runtime section; the koanf tags are its keys.
type Runtime struct {
	// MemoryLimitBytes is wpm's own soft memory limit, GOMEMLIMIT
	// (runtime.memoryLimit); 0 leaves Go's default.
	MemoryLimitBytes int64 `koanf:"memoryLimit"`
}

// NATS is the nats section; the koanf tags are its keys.
type NATS struct {
	// StoreDir is where the embedded server keeps its JetStream files.
	StoreDir string `koanf:"storeDir"`
	// Listen is the host:port the embedded server listens on for other
	// NATS clients; empty means no port at all.
	Listen string `koanf:"listen"`
	// ListenAuth is what a client of the listening embedded server must
	// present: a token, or a user and password. nats.listen needs one.
	ListenAuth NATSAuth `koanf:"listenAuth"`
	// ListenInsecure lets nats.listen open without credentials: any local
	// process may then read and forge tasks. wpm warns at every start.
	ListenInsecure bool `koanf:"listenInsecure"`
	// URL, when not empty, is an external NATS server or cluster to use
	// instead of an embedded one: one URL or several, comma-separated.
	URL string `koanf:"url"`
	// Name names this host to NATS and in the cluster; empty means the
	// machine's host name and the HTTP port.
	Name string `koanf:"name"`
	// Credentials is a NATS credentials file (JWT and NKey seed) for an
	// external server.
	Credentials string `koanf:"credentials"`
	// TLS configures TLS to an external server.
	TLS NATSTLS `koanf:"tls"`
	// Replicas is how many servers of an external cluster keep each task,
	// record and host entry (1, 3 or 5).
	Replicas int `koanf:"replicas"`
	// SyncAlways makes the embedded server fsync every write.
	SyncAlways bool `koanf:"syncAlways"`
}

// NATSAuth is the nats.listenAuth section.
type NATSAuth struct {
	// Token is the token clients present (nats://TOKEN@host:port).
	Token string `koanf:"token"`
	// User and Password are the user clients log in as
	// (nats://USER:PASSWORD@host:port).
	User     string `koanf:"user"`
	Password string `koanf:"password"`
}

// NATSTLS is the nats.tls section: files in PEM.
type NATSTLS struct {
	// CA verifies the server's certificate instead of the system's roots.
	CA string `koanf:"ca"`
	// Cert and Key are this client's certificate and key, when the server
	// asks for one.
	Cert string `koanf:"cert"`
	Key  string `koanf:"key"`
}

// Async is the async section; the koanf tags are its keys.
type Async struct {
	// Retention is how long task records and results are kept.
	Retention time.Duration `koanf:"retention"`
	// MaxResultBytes bounds a task's stored result.
	MaxResultBytes int64 `koanf:"maxResultBytes"`
	// DedupWindow is how long an Idempotency-Key returns the first task.
	DedupWindow time.Duration `koanf:"dedupWindow"`
	// AckWait is how long a task that was running when wpm died waits
	// before it runs again.
	AckWait time.Duration `koanf:"ackWait"`
	// CallbackAllow lists the URL prefixes a task's callbackUrl must be
	// under (see async.CheckCallbackAllow); empty refuses callbacks. From
	// the environment: comma-separated.
	CallbackAllow []string `koanf:"callbackAllow"`
	// CallbackSecret, when set, signs callbacks with HMAC-SHA256.
	CallbackSecret string `koanf:"callbackSecret"`
	// MaxDelay bounds ?delay and ?runAt of an asynchronous submit.
	MaxDelay time.Duration `koanf:"maxDelay"`
}

// Tracing is the tracing section; the koanf tags are its keys.
type Tracing struct {
	// Endpoint, when not empty, turns tracing on: the OTLP/HTTP collector
	// spans are exported to, its base URL (http://127.0.0.1:4318) as
	// OTEL_EXPORTER_OTLP_ENDPOINT gives it, which sets it too.
	Endpoint string `koanf:"endpoint"`
	// ServiceName is the service.name of wpm's spans.
	ServiceName string `koanf:"serviceName"`
	// SampleRatio is the share of new traces recorded, 0 to 1; a trace
	// continued from a request's traceparent follows its sampled flag.
	SampleRatio float64 `koanf:"sampleRatio"`
}

// Log is the log section; the koanf tags are its keys.
type Log struct {
	// Level is one of trace, debug, info, warn and error, in lower case.
	Level string `koanf:"level"`
	// Format is text or json.
	Format string `koanf:"format"`
}

// Shutdown is the shutdown section; the koanf tags are its keys.
type Shutdown struct {
	// Grace is how long in-flight tasks may take to finish after a stop
	// signal before every worker is stopped.
	Grace time.Duration `koanf:"grace"`
}

// DefaultSpares is the command's oneShot.spares: one warm process per plugin
// that runs one-shots, so a one-shot after the first starts in about a
// millisecond instead of tens. The library's default (host.DefaultConfig)
// is none, so that an embedding program starts no process it did not ask
// for.
const DefaultSpares = 1

// Default returns the built-in layer: host.DefaultConfig with
// DefaultSpares, and the defaults of the sections host does not know.
func Default() Config {
	h := host.DefaultConfig()
	h.OneShot.Spares = DefaultSpares
	return Config{
		Role: RoleAll,
		HTTP: HTTP{
			Addr:                   "127.0.0.1:3000",
			BodyLimitBytes:         10_000_000,
			ReadTimeout:            60 * time.Second,
			IdleTimeout:            60 * time.Second,
			MaxConns:               1024,
			InflightBodyLimitBytes: 256_000_000,
		},
		Log:      Log{Level: "info", Format: "text"},
		Shutdown: Shutdown{Grace: 30 * time.Second},
		Runtime:  Runtime{MemoryLimitBytes: 1_000_000_000},
		NATS:     NATS{StoreDir: "data/nats", Replicas: 1},
		Async:    Async{Retention: 24 * time.Hour, MaxResultBytes: 1_000_000, DedupWindow: 2 * time.Minute, AckWait: 30 * time.Second, MaxDelay: queue.MaxDelayDefault},
		Tracing:  Tracing{ServiceName: "wpm", SampleRatio: 1},
		Host:     h,
	}
}

// shape is the config file's shape laid over a Config: each field is a
// top-level key and points at the part of the Config it sets. Its types,
// read by reflection, are the only list of keys.
type shape struct {
	Role     *string             `koanf:"role"`
	HTTP     *HTTP               `koanf:"http"`
	Log      *Log                `koanf:"log"`
	Plugins  plugins             `koanf:"plugins"`
	Shutdown *Shutdown           `koanf:"shutdown"`
	OneShot  *host.OneShotConfig `koanf:"oneShot"`
	Runtime  *Runtime            `koanf:"runtime"`
	NATS     *NATS               `koanf:"nats"`
	Async    *Async              `koanf:"async"`
	Tracing  *Tracing            `koanf:"tracing"`
	Node     node                `koanf:"node"`
	Pools    *[]Pool             `koanf:"pools"`
	// Schedules is the schedules section (Config.Schedules).
	Schedules *[]Schedule `koanf:"schedules"`
}

// node is the node section: Node.js worker scripts.
type node struct {
	ScriptsDir *string `koanf:"scriptsDir"`
}

// plugins is the plugins section.
type plugins struct {
	Dir       *string            `koanf:"dir"`
	Checksums *map[string]string `koanf:"checksums"`
}

// shapeOf returns the shape over c, with the pools in pools.
func shapeOf(c *Config, pools *[]Pool) *shape {
	return &shape{
		Role:      &c.Role,
		HTTP:      &c.HTTP,
		Log:       &c.Log,
		Plugins:   plugins{Dir: &c.Host.PluginDir, Checksums: &c.Host.Checksums},
		Shutdown:  &c.Shutdown,
		OneShot:   &c.Host.OneShot,
		Runtime:   &c.Runtime,
		NATS:      &c.NATS,
		Async:     &c.Async,
		Tracing:   &c.Tracing,
		Node:      node{ScriptsDir: &c.Host.ScriptsDir},
		Pools:     pools,
		Schedules: &c.Schedules,
	}
}

// Options says where Load finds the layers above the built-in defaults.
type Options struct {
	// File is the path of the config file; empty means no file. Load does
	// not read --config itself: pass its value here.
	File string
	// Environ is the environment as "NAME=value" strings, like
	// os.Environ(); nil means no environment variables. Load never reads
	// the process environment on its own.
	Environ []string
	// Flags holds the flags added by RegisterFlags, already parsed; nil
	// means no flags. Only flags the user set override other layers.
	Flags *pflag.FlagSet
}

// flagKeys maps each flag RegisterFlags adds, except --config, to its key.
var flagKeys = []struct{ flag, key, usage string }{
	{"addr", "http.addr", "address to listen on, host:port"},
	{"role", "role", "what this host does: all, api (HTTP only) or worker (workers only)"},
	{"plugins-dir", "plugins.dir", "directory the plugin binaries are in"},
	{"log-level", "log.level", "log level: trace, debug, info, warn or error"},
	{"log-format", "log.format", "log format: text or json"},
}

// RegisterFlags adds wpm's config flags to fs: --config (the file, default
// DefaultFile) and those named in only (all when none: --addr, --role,
// --plugins-dir, --log-level, --log-format), which override http.addr,
// role, plugins.dir, log.level and log.format when given.
func RegisterFlags(fs *pflag.FlagSet, only ...string) {
	RegisterConfigFlag(fs)
	for _, f := range flagKeys {
		if len(only) == 0 || slices.Contains(only, f.flag) {
			fs.String(f.flag, "", f.usage+" (overrides "+f.key+")")
		}
	}
}

// RegisterConfigFlag adds --config alone to fs, for commands that read
// the config file but override none of its keys.
func RegisterConfigFlag(fs *pflag.FlagSet) {
	fs.String("config", DefaultFile, "config file, YAML (.yaml, .yml) or JSON (.json)")
}

// flagKey returns the key flag sets, or "" when flag sets none.
func flagKey(flag string) string {
	for _, f := range flagKeys {
		if f.flag == flag {
			return f.key
		}
	}
	return ""
}

// Load reads opts.File, opts.Environ and opts.Flags, in that order, over
// Default, checks the result and returns it. The error, if any, joins every
// problem found; each names its key and where its value came from.
func Load(opts Options) (Config, error) {
	l := &loader{
		k:        koanf.New("."),
		origin:   make(map[string]string),
		reported: make(map[string]bool),
	}
	if opts.File != "" {
		if m, ok := l.readFile(opts.File); ok {
			if err := l.k.Load(mapProvider(m), nil); err != nil {
				return Config{}, fmt.Errorf("%s: %w", opts.File, err)
			}
		}
	}
	l.otelEnv(opts.Environ)
	environ := func() []string { return opts.Environ }
	if err := l.k.Load(env.Provider(".", env.Opt{Prefix: EnvPrefix, TransformFunc: l.envVar, EnvironFunc: environ}), nil); err != nil {
		return Config{}, fmt.Errorf("reading the environment: %w", err)
	}
	if opts.Flags != nil {
		if err := l.k.Load(posflag.ProviderWithFlag(opts.Flags, ".", l.k, l.flag), nil); err != nil {
			return Config{}, fmt.Errorf("reading flags: %w", err)
		}
	}
	c, err := l.decode()
	if err != nil {
		return Config{}, err
	}
	if opts.File != "" {
		scriptsRelativeTo(&c.Host, filepath.Dir(opts.File))
	}
	l.report(c.check())
	l.report(c.Host.Validate())
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return c, nil
}

// scriptsRelativeTo makes the relative paths of Node.js worker scripts in
// h (pools[].script, node.scriptsDir) relative to dir, the config file's
// folder.
func scriptsRelativeTo(h *host.Config, dir string) {
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	rel(&h.ScriptsDir)
	for i := range h.Pools {
		rel(&h.Pools[i].Script)
	}
}

// mapProvider is a koanf.Provider over a nested map already in memory.
type mapProvider map[string]any

// ReadBytes is not supported: a mapProvider has no bytes to parse.
func (m mapProvider) ReadBytes() ([]byte, error) {
	return nil, errors.New("a map provider has no bytes")
}

// Read returns the map.
func (m mapProvider) Read() (map[string]any, error) { return m, nil }

// loader carries one Load's state.
type loader struct {
	k *koanf.Koanf
	// origin maps a key ("http.addr", "pools[0].workers", or "pools" for
	// all pools) to where its current value came from: a file path, a
	// variable name, a flag.
	origin map[string]string
	errs   []error
	// reported holds keys with a problem already reported, so that a
	// value that could not be read is not reported again by Validate.
	reported map[string]bool
}

// add records err, a problem with key found in src (empty: no source).
func (l *loader) add(src, key string, err error) {
	l.reported[key] = true
	if src != "" {
		err = fmt.Errorf("%s: %w", src, err)
	}
	l.errs = append(l.errs, err)
}

// problem records a problem with key found in src.
func (l *loader) problem(src, key, format string, args ...any) {
	l.add(src, key, &host.ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

// report adds the *host.ConfigError problems joined in err, except those
// about keys already reported, each with its value's source.
func (l *loader) report(err error) {
	for _, e := range flatten(err) {
		var ce *host.ConfigError
		if !errors.As(e, &ce) {
			l.errs = append(l.errs, e)
			continue
		}
		if !l.covered(ce.Key) {
			l.add(l.sourceOf(ce.Key), ce.Key, e)
		}
	}
}

// sourceOf returns where key's value came from, "" for the defaults: the
// source recorded for key or, failing that, for the nearest map or list
// holding it.
func (l *loader) sourceOf(key string) string {
	for {
		if src, ok := l.origin[key]; ok {
			return src
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return ""
		}
		key = key[:i]
	}
}

// covered reports whether a problem with key, or with a map or list
// holding it, has been reported.
func (l *loader) covered(key string) bool {
	for r := range l.reported {
		if key == r || strings.HasPrefix(key, r+".") || strings.HasPrefix(key, r+"[") {
			return true
		}
	}
	return false
}

// envVar is the env provider's TransformFunc: it maps WPM_SECTION_KEY to
// section.key, and records an error for a variable that names no key.
func (l *loader) envVar(name, value string) (string, any) {
	key, err := envKey(strings.TrimPrefix(name, EnvPrefix))
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %w", name, err))
		return "", nil
	}
	l.origin[key] = name
	return key, value
}

// flag is the posflag callback: a flag the user set overrides its key.
func (l *loader) flag(f *pflag.Flag) (string, any) {
	key := flagKey(f.Name)
	if key == "" || !f.Changed {
		return "", nil
	}
	l.origin[key] = "--" + f.Name
	return key, f.Value.String()
}

// otelEnv reads OpenTelemetry's own variables in environ as a layer
// under WPM_*: OTEL_EXPORTER_OTLP_ENDPOINT sets tracing.endpoint and
// OTEL_SERVICE_NAME tracing.serviceName, so a deployment that configures
// every service's exporter alike configures wpm's too.
func (l *loader) otelEnv(environ []string) {
	vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "endpoint", "OTEL_SERVICE_NAME": "serviceName"}
	set := map[string]any{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if key, ok := vars[name]; ok && value != "" {
			set[key] = value
			l.origin["tracing."+key] = name
		}
	}
	if len(set) > 0 {
		_ = l.k.Load(mapProvider{"tracing": set}, nil)
	}
}
