package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shippedConfig is config/default.yaml, relative to this package.
const shippedConfig = "../../../../config/default.yaml"

// mustWriteFile writes content to a file called name in a fresh directory
// and returns its path.
func mustWriteFile(tb testing.TB, name, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	require.NoError(tb, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// mustFlags returns a flag set with RegisterFlags' flags, parsed from args.
func mustFlags(tb testing.TB, args ...string) *pflag.FlagSet {
	tb.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	RegisterFlags(fs)
	require.NoError(tb, fs.Parse(args))
	return fs
}

// problems returns the separate problems in err, which Load joined.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// mustFail loads a YAML file with content and returns the problems.
func mustFail(tb testing.TB, content string) (path string, probs []string) {
	tb.Helper()
	path = mustWriteFile(tb, "wpm.yaml", content)
	_, err := Load(Options{File: path})
	require.Error(tb, err)
	return path, problems(err)
}

const onePool = `
pools:
  - { name: CPU, plugin: cpuload, workers: 1 }
`

func TestLoad_defaults(t *testing.T) {
	c, err := Load(Options{})
	require.NoError(t, err)
	assert.Equal(t, HTTP{Addr: "127.0.0.1:3000", BodyLimitBytes: 10_000_000, ReadTimeout: time.Minute,
		IdleTimeout: time.Minute, MaxConns: 1024, InflightBodyLimitBytes: 256_000_000}, c.HTTP)
	assert.Equal(t, Runtime{MemoryLimitBytes: 1_000_000_000}, c.Runtime)
	assert.Equal(t, Log{Level: "info", Format: "text"}, c.Log)
	assert.Equal(t, 30*time.Second, c.Shutdown.Grace)
	want := host.DefaultConfig()
	want.OneShot.Spares = DefaultSpares
	assert.Equal(t, want.PluginDir, c.Host.PluginDir)
	assert.Equal(t, want.OneShot, c.Host.OneShot)
	assert.Equal(t, host.OneShotConfig{
		MemoryLimitMB: 4096, Timeout: 5 * time.Minute, MaxConcurrent: 8,
		MaxWait: 5 * time.Second, Spares: 1, StartTimeout: 10 * time.Second,
	}, c.Host.OneShot)
	assert.Empty(t, c.Host.Pools)
}

func TestLoad_layering(t *testing.T) {
	file := mustWriteFile(t, "wpm.yaml", `
http: { addr: "127.0.0.1:1001", authToken: from-file }
log: { level: debug, format: json }
plugins: { dir: file/plugins }
oneShot: { spares: 3 }
`)
	environ := []string{"WPM_HTTP_ADDR=127.0.0.1:1002", "WPM_LOG_LEVEL=warn", "WPM_ONESHOT_SPARES=2", "HOME=/root"}
	tests := []struct {
		name   string
		opts   Options
		addr   string
		level  string
		format string
		dir    string
		token  string
		spares int
	}{
		{"defaults", Options{}, "127.0.0.1:3000", "info", "text", "bin/plugins", "", DefaultSpares},
		{"file over defaults", Options{File: file}, "127.0.0.1:1001", "debug", "json", "file/plugins", "from-file", 3},
		{"env over file", Options{File: file, Environ: environ}, "127.0.0.1:1002", "warn", "json", "file/plugins", "from-file", 2},
		{"flags over env", Options{File: file, Environ: environ, Flags: mustFlags(t, "--addr", "127.0.0.1:1003", "--log-format=text")},
			"127.0.0.1:1003", "warn", "text", "file/plugins", "from-file", 2},
		{"unset flags override nothing", Options{File: file, Environ: environ, Flags: mustFlags(t)},
			"127.0.0.1:1002", "warn", "json", "file/plugins", "from-file", 2},
		{"flags over defaults", Options{Flags: mustFlags(t, "--plugins-dir", "flag/plugins", "--log-level", "error")},
			"127.0.0.1:3000", "error", "text", "flag/plugins", "", DefaultSpares},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.opts)
			require.NoError(t, err)
			assert.Equal(t, tt.addr, c.HTTP.Addr)
			assert.Equal(t, tt.level, c.Log.Level)
			assert.Equal(t, tt.format, c.Log.Format)
			assert.Equal(t, tt.dir, c.Host.PluginDir)
			assert.Equal(t, tt.token, c.HTTP.AuthToken)
			assert.Equal(t, tt.spares, c.Host.OneShot.Spares)
		})
	}
}

func TestLoad_doesNotReadProcessEnvironment(t *testing.T) {
	t.Setenv("WPM_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("WPM_NO_SUCH_KEY", "x")
	c, err := Load(Options{})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:3000", c.HTTP.Addr)
}

func TestLoad_envMapsLevelsCaseInsensitively(t *testing.T) {
	c, err := Load(Options{Environ: []string{
		"WPM_ONESHOT_MEMORYLIMITMB=2048",
		"WPM_http_authToken=s3cret",
		"WPM_Http_MetricsAuth=true",
		"WPM_HTTP_BODYLIMIT=1MiB",
		"WPM_ONESHOT_TIMEOUT=90s",
		"WPM_SHUTDOWN_GRACE=0",
		"WPM_PLUGINS_DIR=/opt/wpm/plugins",
		"WPM_LOG_LEVEL=DEBUG",
		"NOT_WPM_HTTP_ADDR=ignored",
	}})
	require.NoError(t, err)
	assert.Equal(t, 2048, c.Host.OneShot.MemoryLimitMB)
	assert.Equal(t, "s3cret", c.HTTP.AuthToken)
	assert.True(t, c.HTTP.MetricsAuth)
	assert.Equal(t, int64(1<<20), c.HTTP.BodyLimitBytes)
	assert.Equal(t, 90*time.Second, c.Host.OneShot.Timeout)
	assert.Equal(t, time.Duration(0), c.Shutdown.Grace)
	assert.Equal(t, "/opt/wpm/plugins", c.Host.PluginDir)
	assert.Equal(t, "debug", c.Log.Level)
}

func TestLoad_envUnknownVariable(t *testing.T) {
	tests := []struct{ env, want string }{
		{"WPM_HTTP_ADR=x", `WPM_HTTP_ADR: unknown variable: no key "ADR" under http (known keys under http: addr, bodyLimit, authToken, metricsAuth, readTimeout, idleTimeout, maxConns, inflightBodyLimit)`},
		{"WPM_HTPP_ADDR=x", `WPM_HTPP_ADDR: unknown variable: no section "HTPP"`},
		{"WPM_HTTP=x", `WPM_HTTP: unknown variable: expected WPM_HTTP_<KEY>`},
		{"WPM_ONESHOT_MEMORY_LIMIT_MB=1", `WPM_ONESHOT_MEMORY_LIMIT_MB: unknown variable`},
		{"WPM_POOLS_0_WORKERS=3", `WPM_POOLS_0_WORKERS: pools can not be set from the environment`},
		{"WPM_PLUGIN=wpm-task-v1", `WPM_PLUGIN: unknown variable: no section "PLUGIN"`}, // no exception, not even for a handshake cookie
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := Load(Options{Environ: []string{tt.env}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoad_envValueProblemNamesVariableAndKey(t *testing.T) {
	_, err := Load(Options{Environ: []string{"WPM_ONESHOT_TIMEOUT=5 minutes", "WPM_ONESHOT_SPARES=two"}})
	require.Error(t, err)
	assert.ElementsMatch(t, []string{
		`WPM_ONESHOT_TIMEOUT: oneShot.timeout: "5 minutes" is not a duration like 30s or 5m`,
		`WPM_ONESHOT_SPARES: oneShot.spares: must be a whole number, got "two"`,
	}, problems(err))
}

func TestLoad_flagValueProblemNamesFlagAndKey(t *testing.T) {
	_, err := Load(Options{Flags: mustFlags(t, "--log-level=verbose", "--addr=3000")})
	require.Error(t, err)
	assert.ElementsMatch(t, []string{
		`--log-level: log.level: "verbose" is not one of trace, debug, info, warn, error`,
		`--addr: http.addr: "3000" is not host:port like 127.0.0.1:3000`,
	}, problems(err))
}

func TestLoad_validationMessagesNameTheKey(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"unknown section key", "http: { adr: x }",
			`unknown key "http.adr" (known keys under http: addr, bodyLimit, authToken, metricsAuth, readTimeout, idleTimeout, maxConns, inflightBodyLimit)`},
		{"unknown top-level key", "htp: { addr: x }",
			`unknown key "htp" (known top-level keys: role, http, log, plugins, shutdown, oneShot, runtime, nats, async, tracing, node, pools, schedules)`},
		{"unknown pool key", "pools: [{ name: CPU, plugin: cpuload, workers: 1, wrokers: 2 }]",
			`unknown key "pools[0].wrokers" (known keys in a pool: name, plugin, script, workers, minWorkers, maxWorkers, scaleDownAfter, memoryLimitMB, concurrency, prefetch, queueLimit, taskTimeout, maxTasksPerWorker, maxWorkerAge, startTimeout, retries)`},
		{"key differs only in case", "oneShot: { memorylimitmb: 1 }",
			`unknown key "oneShot.memorylimitmb" (keys are case-sensitive: did you mean memoryLimitMB?)`},
		{"pool key differs only in case", "pools: [{ name: CPU, plugin: cpuload, Workers: 1 }]",
			`unknown key "pools[0].Workers" (keys are case-sensitive: did you mean workers?)`},
		{"section not a map", "log: debug",
			`log: must be a map of log settings (level, format), got "debug"`},
		{"pools not a list", "pools: { CPU: { plugin: cpuload } }",
			`pools: must be a list of pools`},
		{"pool not a map", "pools: [CPU]",
			`pools[0]: must be a map of pool settings (name, plugin, script, workers,`},
		{"wrong type of count", "pools: [{ name: CPU, plugin: cpuload, workers: two }]",
			`pools[0].workers: must be a whole number, got "two"`},
		{"fractional count", "oneShot: { maxConcurrent: 2.5 }",
			`oneShot.maxConcurrent: must be a whole number, got 2.5`},
		{"wrong type of string", "plugins: { dir: [a, b] }",
			`plugins.dir: must be a string, got a list`},
		{"number for a string", "http: { authToken: 12345 }",
			`http.authToken: must be a string, got 12345 (put it in quotes)`},
		{"wrong type of bool", "http: { metricsAuth: maybe }",
			`http.metricsAuth: must be true or false, got "maybe"`},
		{"bad duration", "oneShot: { timeout: 5 minutes }",
			`oneShot.timeout: "5 minutes" is not a duration like 30s or 5m`},
		{"duration without unit", "shutdown: { grace: 30 }",
			`shutdown.grace: 30 is not a duration like 30s or 5m (give a unit)`},
		{"bad pool duration", "pools: [{ name: CPU, plugin: cpuload, workers: 1, taskTimeout: soon }]",
			`pools[0].taskTimeout: "soon" is not a duration like 30s or 5m`},
		{"garbage size", "http: { bodyLimit: lots }",
			`http.bodyLimit: "lots" is not a size like 10MB, 512KB, 1MiB or 1048576 (bytes)`},
		{"zero read timeout", "http: { readTimeout: 0 }",
			`http.readTimeout: must be more than 0, like 60s, got 0s`},
		{"no connections", "http: { maxConns: 0 }",
			`http.maxConns: must be 1 or more, got 0`},
		{"negative memory limit", `runtime: { memoryLimit: "-1GB" }`,
			`runtime.memoryLimit: must be more than 0 bytes, got "-1GB"`},
		{"zero size", "http: { bodyLimit: 0 }",
			`http.bodyLimit: must be more than 0 bytes, got 0`},
		{"negative size", `http: { bodyLimit: "-1MB" }`,
			`http.bodyLimit: must be more than 0 bytes, got "-1MB"`},
		{"bad address", `http: { addr: "localhost" }`,
			`http.addr: "localhost" is not host:port like 127.0.0.1:3000`},
		{"bad log level", "log: { level: verbose }",
			`log.level: "verbose" is not one of trace, debug, info, warn, error`},
		{"bad log format", "log: { format: xml }",
			`log.format: "xml" is not one of text, json`},
		{"negative grace", "shutdown: { grace: -1s }",
			`shutdown.grace: must not be negative, got -1s`},
		{"host: count below 1", "pools: [{ name: CPU, plugin: cpuload, workers: 0 }]",
			`pools[0].workers: must be at least 1, got 0; for a pool that sizes itself leave it out and set maxWorkers (and minWorkers)`},
		{"host: missing workers", "pools: [{ name: CPU, plugin: cpuload }]",
			`pools[0].workers: must be at least 1, got 0; for a pool that sizes itself leave it out and set maxWorkers (and minWorkers)`},
		{"host: empty plugins dir", `plugins: { dir: "" }`,
			`plugins.dir: must name the plugins directory`},
		{"host: bad plugin name", "pools: [{ name: CPU, plugin: ../bin/sh, workers: 1 }]",
			`pools[0].plugin: "../bin/sh" must be a plain file name in the plugins directory`},
		{"host: negative oneShot count", "oneShot: { spares: -1 }",
			`oneShot.spares: must be 0 (none) or more, got -1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, probs := mustFail(t, tt.file)
			require.Len(t, probs, 1, "problems: %q", probs)
			assert.True(t, strings.HasPrefix(probs[0], path+": "), "%q does not name the file", probs[0])
			assert.Contains(t, probs[0], tt.want)
		})
	}
}

func TestLoad_reportsEveryProblemOnce(t *testing.T) {
	path, probs := mustFail(t, `
http: { adr: x, bodyLimit: none }
log: { level: loud }
oneShot: { timeout: 5 minutes }
pools:
  - { name: CPU, plugin: cpuload, workers: two, wrokers: 2 }
  - { name: MEM, plugin: memusage, workers: 0, concurrency: x }
`)
	want := []string{
		`unknown key "http.adr"`,
		`http.bodyLimit: "none" is not a size`,
		`log.level: "loud" is not one of`,
		`oneShot.timeout: "5 minutes" is not a duration`,
		`unknown key "pools[0].wrokers"`,
		`pools[0].workers: must be a whole number, got "two"`, // and not again as "at least 1"
		`pools[1].workers: must be at least 1, got 0; for a pool that sizes itself leave it out and set maxWorkers (and minWorkers)`,
		`pools[1].concurrency: must be a whole number, got "x"`,
	}
	require.Len(t, probs, len(want), "problems: %q", probs)
	for _, w := range want {
		found := false
		for _, p := range probs {
			if strings.HasPrefix(p, path+": ") && strings.Contains(p, w) {
				found = true
			}
		}
		assert.True(t, found, "no problem %q among %q", w, probs)
	}
}

func TestLoad_duplicatePoolNames(t *testing.T) {
	_, probs := mustFail(t, `
pools:
  - { name: CPU, plugin: cpuload, workers: 1 }
  - { name: MEM, plugin: memusage, workers: 1 }
  - { name: CPU, plugin: memusage, workers: 1 }
`)
	require.Len(t, probs, 1)
	assert.Contains(t, probs[0], `pools[2].name: "CPU" is already the name of pools[0]`)
}

func TestLoad_yamlAndJSONAgree(t *testing.T) {
	yamlFile := mustWriteFile(t, "wpm.yml", `
http: { addr: "0.0.0.0:8080", bodyLimit: 512KB, authToken: tok, metricsAuth: true,
        readTimeout: 5s, idleTimeout: 6s, maxConns: 7, inflightBodyLimit: 8MB }
runtime: { memoryLimit: 0 }
log: { level: warn, format: json }
plugins: { dir: /p }
shutdown: { grace: 1m }
nats: { storeDir: /s, listen: "127.0.0.1:4222", listenAuth: { token: nt }, url: "", syncAlways: true }
async: { retention: 1h, maxResultBytes: 2MB, dedupWindow: 1m, ackWait: 5s }
tracing: { endpoint: "http://127.0.0.1:4318", serviceName: svc, sampleRatio: 0.5 }
oneShot: { memoryLimitMB: 64, timeout: 1s, maxConcurrent: 2, maxWait: 100ms, spares: 1, startTimeout: 3s }
pools:
  - { name: A, plugin: cpuload, workers: 3, memoryLimitMB: 128, concurrency: 2, queueLimit: 5,
      taskTimeout: 2s, maxTasksPerWorker: 100, maxWorkerAge: 1h, startTimeout: 4s,
      retries: { max: 2, backoff: 10ms, maxBackoff: 1s } }
`)
	jsonFile := mustWriteFile(t, "wpm.JSON", `{
  "http": {"addr": "0.0.0.0:8080", "bodyLimit": "512KB", "authToken": "tok", "metricsAuth": true,
           "readTimeout": "5s", "idleTimeout": "6s", "maxConns": 7, "inflightBodyLimit": "8MB"},
  "runtime": {"memoryLimit": "0"},
  "log": {"level": "warn", "format": "json"},
  "plugins": {"dir": "/p"},
  "shutdown": {"grace": "1m"},
  "nats": {"storeDir": "/s", "listen": "127.0.0.1:4222", "listenAuth": {"token": "nt"}, "url": "", "syncAlways": true},
  "async": {"retention": "1h", "maxResultBytes": "2MB", "dedupWindow": "1m", "ackWait": "5s"},
  "tracing": {"endpoint": "http://127.0.0.1:4318", "serviceName": "svc", "sampleRatio": 0.5},
  "oneShot": {"memoryLimitMB": 64, "timeout": "1s", "maxConcurrent": 2, "maxWait": "100ms", "spares": 1, "startTimeout": "3s"},
  "pools": [{"name": "A", "plugin": "cpuload", "workers": 3, "memoryLimitMB": 128, "concurrency": 2, "queueLimit": 5,
             "taskTimeout": "2s", "maxTasksPerWorker": 100, "maxWorkerAge": "1h", "startTimeout": "4s",
             "retries": {"max": 2, "backoff": "10ms", "maxBackoff": "1s"}}]
}`)
	want := Config{
		Role: RoleAll,
		HTTP: HTTP{Addr: "0.0.0.0:8080", BodyLimitBytes: 512_000, AuthToken: "tok", MetricsAuth: true,
			ReadTimeout: 5 * time.Second, IdleTimeout: 6 * time.Second, MaxConns: 7, InflightBodyLimitBytes: 8_000_000},
		Log:      Log{Level: "warn", Format: "json"},
		Shutdown: Shutdown{Grace: time.Minute},
		NATS:     NATS{StoreDir: "/s", Listen: "127.0.0.1:4222", ListenAuth: NATSAuth{Token: "nt"}, SyncAlways: true, Replicas: 1},
		Async:    Async{Retention: time.Hour, MaxResultBytes: 2_000_000, DedupWindow: time.Minute, AckWait: 5 * time.Second, MaxDelay: queue.MaxDelayDefault},
		Tracing:  Tracing{Endpoint: "http://127.0.0.1:4318", ServiceName: "svc", SampleRatio: 0.5},
		Host: host.Config{
			PluginDir: "/p",
			OneShot: host.OneShotConfig{MemoryLimitMB: 64, Timeout: time.Second, MaxConcurrent: 2,
				MaxWait: 100 * time.Millisecond, Spares: 1, StartTimeout: 3 * time.Second},
			Pools: []host.PoolConfig{{Name: "A", Plugin: "cpuload", Workers: 3, MemoryLimitMB: 128,
				Concurrency: 2, QueueLimit: 5, TaskTimeout: 2 * time.Second, MaxTasksPerWorker: 100,
				MaxWorkerAge: time.Hour, StartTimeout: 4 * time.Second, ScaleDownAfter: 30 * time.Second}},
		},
		Retries: map[string]queue.Retries{"A": {Max: 2, Backoff: 10 * time.Millisecond, MaxBackoff: time.Second}},
	}
	for _, path := range []string{yamlFile, jsonFile} {
		c, err := Load(Options{File: path})
		require.NoError(t, err, path)
		assert.Equal(t, want, c, path)
	}
}

func TestLoad_poolDefaults(t *testing.T) {
	c, err := Load(Options{File: mustWriteFile(t, "wpm.yaml", onePool)})
	require.NoError(t, err)
	d := host.DefaultPoolConfig()
	assert.Equal(t, []host.PoolConfig{{
		Name: "CPU", Plugin: "cpuload", Workers: 1,
		Concurrency:    d.Concurrency,
		QueueLimit:     d.QueueLimit,
		StartTimeout:   d.StartTimeout,
		ScaleDownAfter: d.ScaleDownAfter,
	}}, c.Host.Pools)
	assert.Equal(t, host.PoolConfig{Concurrency: 1, QueueLimit: 1024, StartTimeout: 10 * time.Second, ScaleDownAfter: 30 * time.Second}, d)
}

func TestLoad_nullMeansDefault(t *testing.T) {
	c, err := Load(Options{File: mustWriteFile(t, "wpm.yaml", "http:\n  addr:\n  authToken:\nlog:\npools:\n")})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:3000", c.HTTP.Addr)
	assert.Equal(t, "info", c.Log.Level)
	assert.Empty(t, c.Host.Pools)
}

func TestLoad_fileProblems(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	_, err := Load(Options{File: missing})
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), missing+": can not read the config file")

	toml := mustWriteFile(t, "wpm.toml", "")
	_, err = Load(Options{File: toml})
	require.Error(t, err)
	assert.Contains(t, err.Error(), toml+`: unsupported config file type ".toml"; use .yaml, .yml or .json`)

	broken := mustWriteFile(t, "wpm.yaml", "http: { addr: [\n")
	_, err = Load(Options{File: broken})
	require.Error(t, err)
	assert.Contains(t, err.Error(), broken+": not valid YAML")

	brokenJSON := mustWriteFile(t, "wpm.json", `{"http": }`)
	_, err = Load(Options{File: brokenJSON})
	require.Error(t, err)
	assert.Contains(t, err.Error(), brokenJSON+": not valid JSON")

	// A broken file does not hide the other layers' problems.
	_, err = Load(Options{File: missing, Environ: []string{"WPM_HTTP_ADR=x"}})
	assert.Len(t, problems(err), 2)
}

func TestLoad_emptyFile(t *testing.T) {
	c, err := Load(Options{File: mustWriteFile(t, "wpm.yaml", "")})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:3000", c.HTTP.Addr)
}

func TestLoad_shippedConfig(t *testing.T) {
	c, err := Load(Options{File: shippedConfig})
	require.NoError(t, err)
	require.Len(t, c.Host.Pools, 2)
	for i, want := range []struct{ name, plugin string }{{"CPU", "cpuload"}, {"MEM", "memusage"}} {
		p := c.Host.Pools[i]
		assert.Equal(t, want.name, p.Name)
		assert.Equal(t, want.plugin, p.Plugin)
		assert.Equal(t, 2, p.Workers)
		assert.Equal(t, 4096, p.MemoryLimitMB)
		assert.Equal(t, 1, p.Concurrency)
		assert.Equal(t, 1024, p.QueueLimit)
		assert.Equal(t, 5*time.Minute, p.TaskTimeout)
		assert.Equal(t, 0, p.MaxTasksPerWorker)
	}
	assert.Equal(t, "127.0.0.1:3000", c.HTTP.Addr)
	assert.Equal(t, int64(10_000_000), c.HTTP.BodyLimitBytes)
	assert.Equal(t, "bin/plugins", c.Host.PluginDir)

	// The shipped file holds every key, so it says the same as the
	// built-in defaults wherever they overlap.
	d, err := Load(Options{})
	require.NoError(t, err)
	assert.Equal(t, queue.Retries{Backoff: time.Second, MaxBackoff: 30 * time.Second}, c.Retries["CPU"])
	c.Host.Pools, c.Retries = nil, nil
	assert.Equal(t, d, c)
}

func TestShippedConfig_hasEveryKey(t *testing.T) {
	l := &loader{origin: map[string]string{}, reported: map[string]bool{}}
	m, ok := l.readFile(shippedConfig)
	require.True(t, ok)
	require.Empty(t, l.errs)
	assertEveryKey(t, "", m, shapeType)
}

// assertEveryKey checks that m, the map of settings at key, holds every
// key of t, and so on down.
func assertEveryKey(t *testing.T, key string, m map[string]any, typ reflect.Type) {
	t.Helper()
	for _, f := range fieldsOf(typ) {
		k := strings.TrimPrefix(key+"."+f.key, ".")
		if !assert.Contains(t, m, f.key, k) {
			continue
		}
		if isSettings(f.typ) {
			sub, _ := m[f.key].(map[string]any)
			assertEveryKey(t, k, sub, f.typ)
		}
		if elem, ok := listOf(f.typ); ok {
			list, _ := m[f.key].([]any)
			for i, e := range list {
				sub, _ := e.(map[string]any)
				assertEveryKey(t, fmt.Sprintf("%s[%d]", k, i), sub, elem)
			}
		}
	}
}

func TestRegisterFlags(t *testing.T) {
	fs := mustFlags(t)
	file, err := fs.GetString("config")
	require.NoError(t, err)
	assert.Equal(t, DefaultFile, file)
	for _, name := range []string{"addr", "plugins-dir", "log-level", "log-format"} {
		assert.NotNil(t, fs.Lookup(name), name)
	}
	// Flags Load does not know are left alone.
	fs.Bool("verbose", false, "")
	require.NoError(t, fs.Parse([]string{"--verbose", "--config", "x.yaml"}))
	_, err = Load(Options{Flags: fs})
	require.NoError(t, err)
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"10MB", 10_000_000},
		{"512KB", 512_000},
		{"1MiB", 1 << 20},
		{"1048576", 1048576},
		{"1", 1},
		{"100B", 100},
		{"2GB", 2_000_000_000},
		{"1GiB", 1 << 30},
		{"4KiB", 4096},
		{"10 MB", 10_000_000},
		{" 10mb ", 10_000_000},
		{"1kib", 1024},
		{"1.5KB", 1500},
		{"0.5MiB", 1 << 19},
		{"1.0001KB", 1000},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if assert.NoError(t, err, tt.in) {
			assert.Equal(t, tt.want, got, tt.in)
		}
	}
	bad := []string{"", "0", "0MB", "0.0001B", "-1", "-5MB", "MB", "ten", "10 megabytes", "10M", "10K", "1e6",
		"1.", ".5KB", "1.2.3MB", "10MB extra", "0x10", "+5", "99999999999999999999", "99999999999GiB"}
	for _, in := range bad {
		_, err := parseSize(in)
		assert.Error(t, err, "%q", in)
	}
}

func TestToSize_numbers(t *testing.T) {
	n, err := toSize(1048576)
	require.NoError(t, err)
	assert.Equal(t, int64(1048576), n)
	n, err = toSize(float64(2048)) // JSON numbers
	require.NoError(t, err)
	assert.Equal(t, int64(2048), n)
	for _, v := range []any{0, -1, 1.5, true, []any{}} {
		_, err := toSize(v)
		assert.Error(t, err, "%v", v)
	}
}

func TestLoad_errorsAreJoined(t *testing.T) {
	_, err := Load(Options{Environ: []string{"WPM_A_B=1", "WPM_C_D=2"}})
	var j interface{ Unwrap() []error }
	require.True(t, errors.As(err, &j))
	assert.Len(t, j.Unwrap(), 2)
}

func TestLoad_checksums(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	path := mustWriteFile(t, "wpm.yaml", "plugins:\n  checksums: {cpuload: \""+sum+"\"}\n"+onePool)
	cfg, err := Load(Options{File: path})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"cpuload": sum}, cfg.Host.Checksums)

	_, probs := mustFail(t, "plugins:\n  checksums: {cpuload: \"abc\", \"../x\": \""+sum+"\"}\n"+onePool)
	assert.Contains(t, strings.Join(probs, "\n"), "plugins.checksums.cpuload")
	assert.Contains(t, strings.Join(probs, "\n"), `plugins.checksums.../x`)
	_, probs = mustFail(t, "plugins:\n  checksums: [1]\n"+onePool)
	assert.Contains(t, strings.Join(probs, "\n"), "plugins.checksums")
}

func TestLoad_rangesNameKeyAndSource(t *testing.T) {
	path, probs := mustFail(t, `
pools:
  - { name: A, plugin: cpuload, workers: 1, memoryLimitMB: 17592186044416 }
  - { name: B, plugin: cpuload, workers: 1, memoryLimitMB: 9223372036854775807 }
  - { name: C, plugin: cpuload, workers: 1, queueLimit: -2 }
`)
	assert.ElementsMatch(t, []string{
		path + ": pools[0].memoryLimitMB: must be from 0 (no limit) to 1048576 (1 TiB), got 17592186044416",
		path + ": pools[1].memoryLimitMB: must be from 0 (no limit) to 1048576 (1 TiB), got 9223372036854775807",
		path + ": pools[2].queueLimit: must be -1 (no queue), 0 (the default, 1024) or more, got -2",
	}, probs)

	_, err := Load(Options{Environ: []string{"WPM_ONESHOT_MEMORYLIMITMB=9223372036854775807", "WPM_ONESHOT_SPARES=18446744073709551616"}})
	assert.ElementsMatch(t, []string{
		"WPM_ONESHOT_MEMORYLIMITMB: oneShot.memoryLimitMB: must be from 0 (no limit) to 1048576 (1 TiB), got 9223372036854775807",
		`WPM_ONESHOT_SPARES: oneShot.spares: must be a whole number, got "18446744073709551616"`,
	}, problems(err))

	_, probs = mustFail(t, "oneShot: { memoryLimitMB: 18446744073709551615 }")
	assert.Contains(t, probs[0], "oneShot.memoryLimitMB: must be a whole number that fits in 64 bits, got 18446744073709551615")
}

func TestLoad_queueLimit(t *testing.T) {
	c, err := Load(Options{File: mustWriteFile(t, "wpm.yaml", `
pools:
  - { name: A, plugin: cpuload, workers: 1, queueLimit: -1 }
  - { name: B, plugin: cpuload, workers: 1, queueLimit: 0 }
  - { name: C, plugin: cpuload, workers: 1 }
`)})
	require.NoError(t, err)
	assert.Equal(t, host.NoQueue, c.Host.Pools[0].QueueLimit)
	assert.Equal(t, 0, c.Host.Pools[1].QueueLimit, "0 is kept; the library reads it as 1024")
	assert.Equal(t, 1024, c.Host.Pools[2].QueueLimit)
}

func TestLoad_checksumValues(t *testing.T) {
	path, probs := mustFail(t, "plugins:\n  checksums: { cpuload: 5, memusage: [1] }\n")
	assert.ElementsMatch(t, []string{
		path + ": plugins.checksums.cpuload: must be a string, got 5 (put it in quotes)",
		path + ": plugins.checksums.memusage: must be a string, got a list",
	}, probs)
}

func TestLoad_problemsAreConfigErrors(t *testing.T) {
	_, err := Load(Options{Environ: []string{"WPM_ONESHOT_SPARES=-1", "WPM_LOG_LEVEL=loud"}})
	require.Error(t, err)
	var keys []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *host.ConfigError
		require.True(t, errors.As(e, &ce), "%v", e)
		keys = append(keys, ce.Key)
	}
	assert.ElementsMatch(t, []string{"oneShot.spares", "log.level"}, keys)
}

func TestKeyOf(t *testing.T) {
	for name, want := range map[string]string{
		"http.addr":                  "http.addr",
		"pools[0].workers":           "pools[0].workers",
		"plugins.checksums[cpuload]": "plugins.checksums.cpuload",
		"pools[12]":                  "pools[12]",
	} {
		assert.Equal(t, want, keyOf(name), name)
	}
}

func TestLoad_connectionAndMemoryKeysFromEnv(t *testing.T) {
	c, err := Load(Options{Environ: []string{
		"WPM_HTTP_READTIMEOUT=5s", "WPM_HTTP_IDLETIMEOUT=2m", "WPM_HTTP_MAXCONNS=10",
		"WPM_HTTP_INFLIGHTBODYLIMIT=64MiB", "WPM_RUNTIME_MEMORYLIMIT=2GiB",
	}})
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, c.HTTP.ReadTimeout)
	assert.Equal(t, 2*time.Minute, c.HTTP.IdleTimeout)
	assert.Equal(t, 10, c.HTTP.MaxConns)
	assert.Equal(t, int64(64<<20), c.HTTP.InflightBodyLimitBytes)
	assert.Equal(t, int64(2<<30), c.Runtime.MemoryLimitBytes)

	c, err = Load(Options{Environ: []string{"WPM_RUNTIME_MEMORYLIMIT=0"}})
	require.NoError(t, err)
	assert.Equal(t, int64(0), c.Runtime.MemoryLimitBytes, "0 leaves Go's default")

	_, err = Load(Options{Environ: []string{"WPM_HTTP_INFLIGHTBODYLIMIT=0", "WPM_HTTP_IDLETIMEOUT=-1s"}})
	assert.ElementsMatch(t, []string{
		"WPM_HTTP_INFLIGHTBODYLIMIT: http.inflightBodyLimit: must be more than 0 bytes, got 0",
		"WPM_HTTP_IDLETIMEOUT: http.idleTimeout: must be more than 0, like 60s, got -1s",
	}, problems(err))
}

// async.callbackAllow is a list in the file and comma-separated in the
// environment; each prefix must be an http(s) URL.
func TestLoad_callbackAllow(t *testing.T) {
	c, err := Load(Options{Environ: []string{"WPM_ASYNC_CALLBACKALLOW=http://127.0.0.1:1880/wpm/, https://hooks.example/"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"http://127.0.0.1:1880/wpm/", "https://hooks.example/"}, c.Async.CallbackAllow)

	for bad, says := range map[string]string{
		"ftp://x/":                 "absolute http or https URL",
		"http://127.0.0.1:9999@h/": "user information",
		"http://h/?token=1":        "query",
		"http://h/cb%2f..%2fx/":    "slash",
		"http://h/#done":           "fragment",
	} {
		_, err = Load(Options{File: mustWriteFile(t, "wpm.yaml", fmt.Sprintf("async: {callbackAllow: [\"http://ok/\", %q]}\n", bad))})
		if assert.Error(t, err, bad) {
			assert.Contains(t, err.Error(), "async.callbackAllow[1]", bad)
			assert.Contains(t, err.Error(), says, bad)
		}
	}
}

func TestLoad_roleAndNATSConnection(t *testing.T) {
	c, err := Load(Options{Environ: []string{"WPM_ROLE=API", "WPM_NATS_URL=nats://a:4222,nats://b:4222", "WPM_NATS_NAME=h1"}})
	require.NoError(t, err)
	assert.Equal(t, RoleAPI, c.Role)
	assert.Equal(t, "nats://a:4222,nats://b:4222", c.NATS.URL)
	assert.Equal(t, "h1", c.NATS.Name)

	_, err = Load(Options{Environ: []string{"WPM_ROLE=boss"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "WPM_ROLE")
	assert.Contains(t, err.Error(), "all, api, worker")

	_, err = Load(Options{Environ: []string{"WPM_NATS_TLS_CERT=/c.pem", "WPM_NATS_URL=nats://a:4222"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cert and key go together")
	_, err = Load(Options{Environ: []string{"WPM_NATS_CREDENTIALS=/x.creds"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nats.url")
}

// nats.listen opens the task store to other processes: it needs
// credentials, or the explicit insecure switch.
func TestLoad_natsListenNeedsCredentials(t *testing.T) {
	env := []string{"WPM_NATS_LISTEN=127.0.0.1:4222"}
	_, err := Load(Options{Environ: env})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nats.listen")
	assert.Contains(t, err.Error(), "nats.listenAuth.token")

	for _, ok := range [][]string{
		{"WPM_NATS_LISTENAUTH_TOKEN=t"},
		{"WPM_NATS_LISTENAUTH_USER=u", "WPM_NATS_LISTENAUTH_PASSWORD=p"},
		{"WPM_NATS_LISTENINSECURE=true"},
	} {
		_, err := Load(Options{Environ: append(ok, env...)})
		assert.NoError(t, err, ok)
	}
	for _, bad := range [][]string{
		{"WPM_NATS_LISTENAUTH_TOKEN=t", "WPM_NATS_LISTENAUTH_USER=u", "WPM_NATS_LISTENAUTH_PASSWORD=p"},
		{"WPM_NATS_LISTENAUTH_USER=u"},
	} {
		_, err := Load(Options{Environ: append(bad, env...)})
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "nats.listenAuth", bad)
	}
}

func TestLoad_scriptsAreRelativeToTheFile(t *testing.T) {
	path := mustWriteFile(t, "wpm.yaml", `
node: { scriptsDir: scripts }
pools:
  - { name: JS, script: workers/worker.js, workers: 1 }
  - { name: ABS, script: /opt/w.js, workers: 1 }
`)
	c, err := Load(Options{File: path})
	require.NoError(t, err)
	dir := filepath.Dir(path)
	assert.Equal(t, filepath.Join(dir, "scripts"), c.Host.ScriptsDir)
	assert.Equal(t, filepath.Join(dir, "workers", "worker.js"), c.Host.Pools[0].Script)
	assert.Equal(t, "/opt/w.js", c.Host.Pools[1].Script)
}

func TestLoad_retriesAreTheQueues(t *testing.T) {
	_, probs := mustFail(t, `
pools:
  - { name: A, plugin: cpuload, workers: 1, retries: { max: -1, backoff: -1s } }
`)
	require.Len(t, probs, 2)
	assert.Contains(t, probs[0], "pools[0].retries.max: must be 0 (never) or more, got -1")
	assert.Contains(t, probs[1], "pools[0].retries.backoff: must not be negative, got -1s")
}

func TestLoad_poolNamesPluginOrScript(t *testing.T) {
	_, probs := mustFail(t, `
pools:
  - { name: BOTH, plugin: cpuload, script: w.js, workers: 1 }
  - { name: NEITHER, workers: 1 }
`)
	require.Len(t, probs, 2)
	assert.Contains(t, probs[0], `pools[0].script: pool "BOTH" sets both plugin and script`)
	assert.Contains(t, probs[1], `pools[1].plugin: pool "NEITHER" must name a plugin in the plugins directory, or set script`)
}

// Tracing is off by default; tracing.endpoint turns it on, from the
// file, WPM_TRACING_ENDPOINT or OpenTelemetry's own variable, which
// WPM_* overrides.
func TestLoad_tracing(t *testing.T) {
	c, err := Load(Options{})
	require.NoError(t, err)
	assert.Equal(t, Tracing{ServiceName: "wpm", SampleRatio: 1}, c.Tracing)

	c, err = Load(Options{Environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318", "OTEL_SERVICE_NAME=edge"}})
	require.NoError(t, err)
	assert.Equal(t, Tracing{Endpoint: "http://collector:4318", ServiceName: "edge", SampleRatio: 1}, c.Tracing)

	c, err = Load(Options{Environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318",
		"WPM_TRACING_ENDPOINT=https://other:4318", "WPM_TRACING_SAMPLERATIO=0.25"}})
	require.NoError(t, err)
	assert.Equal(t, Tracing{Endpoint: "https://other:4318", ServiceName: "wpm", SampleRatio: 0.25}, c.Tracing)

	_, err = Load(Options{Environ: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT")
	assert.Contains(t, err.Error(), "tracing.endpoint")
	_, err = Load(Options{Environ: []string{"WPM_TRACING_SAMPLERATIO=2"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tracing.sampleRatio")
	_, err = Load(Options{Environ: []string{"WPM_TRACING_SAMPLERATIO=half"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "must be a number")
}
