package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/shared"
)

// DefaultFile is the config file wpm reads when --config is not given.
const DefaultFile = "config/default.yaml"

// EnvPrefix starts the name of every environment variable wpm reads.
const EnvPrefix = "WPM_"

// Config is wpm's loaded and checked configuration.
type Config struct {
	// HTTP configures the HTTP API (section http).
	HTTP HTTP
	// Log configures the host's log (section log).
	Log Log
	// Shutdown configures stopping on SIGINT/SIGTERM (section shutdown).
	Shutdown Shutdown
	// Runtime tunes wpm's own Go runtime (section runtime).
	Runtime Runtime
	// Host is what the host library needs: plugins.dir, oneShot and pools.
	Host host.Config
}

// HTTP is the http section.
type HTTP struct {
	// Addr is the host:port the API listens on (http.addr).
	Addr string
	// BodyLimitBytes is the largest request body accepted (http.bodyLimit).
	BodyLimitBytes int64
	// AuthToken, when not empty, is the token every request must carry
	// (http.authToken).
	AuthToken string
	// MetricsAuth says whether GET /metrics needs the token too
	// (http.metricsAuth).
	MetricsAuth bool
	// ReadTimeout bounds reading a request, headers and body
	// (http.readTimeout).
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long
	// (http.idleTimeout).
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once; more wait to be accepted
	// (http.maxConns).
	MaxConns int
	// InflightBodyLimitBytes caps the request-body bytes held at once by
	// requests being served (http.inflightBodyLimit).
	InflightBodyLimitBytes int64
}

// Runtime is the runtime section.
type Runtime struct {
	// MemoryLimitBytes is wpm's own soft memory limit
	// (debug.SetMemoryLimit); 0 leaves Go's default (runtime.memoryLimit).
	MemoryLimitBytes int64
}

// Log is the log section.
type Log struct {
	// Level is one of trace, debug, info, warn and error, in lower case
	// (log.level).
	Level string
	// Format is text or json (log.format).
	Format string
}

// Shutdown is the shutdown section.
type Shutdown struct {
	// Grace is how long in-flight tasks may take to finish after a stop
	// signal before every worker is stopped (shutdown.grace).
	Grace time.Duration
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
	{"plugins-dir", "plugins.dir", "directory the plugin binaries are in"},
	{"log-level", "log.level", "log level: trace, debug, info, warn or error"},
	{"log-format", "log.format", "log format: text or json"},
}

// RegisterFlags adds wpm's config flags to fs: --config (the file, default
// DefaultFile) and --addr, --plugins-dir, --log-level and --log-format, which
// override http.addr, plugins.dir, log.level and log.format when given.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", DefaultFile, "config file, YAML (.yaml, .yml) or JSON (.json)")
	for _, f := range flagKeys {
		fs.String(f.flag, "", f.usage+" (overrides "+f.key+")")
	}
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

// Load reads the defaults, opts.File, opts.Environ and opts.Flags, in that
// order, checks the result and returns it. The error, if any, joins every
// problem found; each names its key and where its value came from.
func Load(opts Options) (Config, error) {
	l := &loader{
		k:        koanf.New("."),
		origin:   make(map[string]string),
		reported: make(map[string]bool),
	}
	if err := l.k.Load(mapProvider(defaults()), nil); err != nil {
		return Config{}, fmt.Errorf("loading defaults: %w", err)
	}
	if opts.File != "" {
		if m, ok := l.readFile(opts.File); ok {
			if err := l.k.Load(mapProvider(m), nil); err != nil {
				return Config{}, fmt.Errorf("%s: %w", opts.File, err)
			}
		}
	}
	environ := func() []string { return opts.Environ }
	if err := l.k.Load(env.Provider(".", env.Opt{Prefix: EnvPrefix, TransformFunc: l.envVar, EnvironFunc: environ}), nil); err != nil {
		return Config{}, fmt.Errorf("reading the environment: %w", err)
	}
	if opts.Flags != nil {
		if err := l.k.Load(posflag.ProviderWithFlag(opts.Flags, ".", l.k, l.flag), nil); err != nil {
			return Config{}, fmt.Errorf("reading flags: %w", err)
		}
	}
	c := l.decode()
	l.validateHost(c.Host)
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return c, nil
}

// DefaultSpares is the command's oneShot.spares: one warm process per plugin
// that runs one-shots, so a one-shot after the first starts in about a
// millisecond instead of tens. The library's default (host.DefaultConfig)
// is none, so that an embedding program starts no process it did not ask
// for.
const DefaultSpares = 1

// defaults returns the built-in layer, shaped like a config file.
func defaults() map[string]any {
	h := host.DefaultConfig()
	return map[string]any{
		"http": map[string]any{
			"addr":              "127.0.0.1:3000",
			"bodyLimit":         "10MB",
			"authToken":         "",
			"metricsAuth":       false,
			"readTimeout":       "60s",
			"idleTimeout":       "60s",
			"maxConns":          1024,
			"inflightBodyLimit": "256MB",
		},
		"runtime":  map[string]any{"memoryLimit": "1GB"},
		"log":      map[string]any{"level": "info", "format": "text"},
		"plugins":  map[string]any{"dir": h.PluginDir},
		"shutdown": map[string]any{"grace": "30s"},
		"oneShot": map[string]any{
			"memoryLimitMB": h.OneShot.MemoryLimitMB,
			"timeout":       h.OneShot.Timeout.String(),
			"maxConcurrent": h.OneShot.MaxConcurrent,
			"maxWait":       h.OneShot.MaxWait.String(),
			"spares":        DefaultSpares,
			"startTimeout":  h.OneShot.StartTimeout.String(),
		},
		"pools": []any{},
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
	// origin maps a key ("http.addr", or "pools" for all pools) to where
	// its current value came from: a file path, a variable name, a flag.
	origin map[string]string
	errs   []error
	// reported holds keys with a problem already reported, so that a
	// value that could not be read is not reported again by Validate.
	reported map[string]bool
}

// problem records a problem with key found in src (empty: no source).
func (l *loader) problem(src, key, format string, args ...any) {
	l.reported[key] = true
	l.errs = append(l.errs, withSource(src, key+": "+fmt.Sprintf(format, args...)))
}

// fail records a problem with key's current value.
func (l *loader) fail(key string, err error) {
	l.problem(l.sourceOf(key), key, "%v", err)
}

// sourceOf returns where key's value came from, "" for the defaults.
func (l *loader) sourceOf(key string) string {
	if src, ok := l.origin[key]; ok {
		return src
	}
	if top, _, ok := strings.Cut(key, "["); ok {
		return l.origin[top]
	}
	return ""
}

func withSource(src, msg string) error {
	if src == "" {
		return errors.New(msg)
	}
	return errors.New(src + ": " + msg)
}

// envVar is the env provider's TransformFunc: it maps WPM_SECTION_KEY to
// section.key, and records an error for a variable that names no key.
func (l *loader) envVar(name, value string) (string, any) {
	if name == shared.Handshake.MagicCookieKey {
		return "", nil // go-plugin's handshake, not a setting
	}
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

// validateHost adds the problems host.Config.Validate finds in h, except
// those about keys already reported, each with its value's source.
func (l *loader) validateHost(h host.Config) {
	err := h.Validate()
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		key, _, _ := strings.Cut(e.Error(), ": ")
		if l.covered(key) {
			continue
		}
		if src := l.sourceOf(key); src != "" {
			e = fmt.Errorf("%s: %w", src, e)
		}
		l.errs = append(l.errs, e)
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
