package host

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"
)

// Config is everything a [Manager] needs. It maps one to one onto wpm's
// config file, whose keys name the fields (plugins.dir, oneShot, pools).
// Start from [DefaultConfig]: a field that is 0 takes its default where
// its doc says so, and otherwise means "none" or "never".
type Config struct {
	// PluginDir is the directory plugins are found in. Nothing outside it
	// is ever executed.
	PluginDir string
	// Checksums pins plugins by name to the hex SHA-256 of their binary; a
	// pinned plugin whose file differs is never started.
	Checksums map[string]string
	// SocketDir is where workers put their unix sockets. Empty means a
	// private directory under os.TempDir, removed by Shutdown.
	SocketDir string
	// Pools are the named pools of long-lived workers.
	Pools []PoolConfig
	// OneShot configures single-task processes.
	OneShot OneShotConfig
	// ScriptsDir is a directory of Node.js worker scripts: a one-shot whose
	// name's last element is a .js file there runs that file with node
	// (nodeproc.go), before the plugins directory is looked at. Empty means
	// none; nothing outside it is ever run as a one-shot script.
	ScriptsDir string
}

// PoolConfig describes one pool of identical workers. The koanf tags are
// the keys of a pool in wpm's config file; fields left at 0 take the values
// of [DefaultPoolConfig] where their doc says so.
type PoolConfig struct {
	// Name identifies the pool in the API; unique within a Config.
	Name string `koanf:"name"`
	// Plugin is the plugin binary's name in the plugins directory.
	Plugin string `koanf:"plugin"`
	// Script is, instead of Plugin, the path of a Node.js worker script
	// (the Node.js WorkerPoolManager's protocol) that node runs for each
	// worker. A relative path is relative to the working directory (wpm's
	// config file makes it relative to the file's folder).
	Script string `koanf:"script"`
	// Workers is the number of worker processes kept running (≥ 1): a
	// fixed size, the same as MinWorkers = MaxWorkers = Workers. Leave it 0
	// and set MaxWorkers for a pool that sizes itself.
	Workers int `koanf:"workers"`
	// MinWorkers is the fewest workers a pool that sizes itself keeps
	// running, 0 (the first task starts one) up to MaxWorkers.
	MinWorkers int `koanf:"minWorkers"`
	// MaxWorkers, when set (≥ 1), makes the pool size itself: it starts
	// workers, up to MaxWorkers, for tasks that would wait, and stops
	// workers above MinWorkers that idled for ScaleDownAfter.
	MaxWorkers int `koanf:"maxWorkers"`
	// ScaleDownAfter is how long a worker above MinWorkers may stay idle
	// before it is stopped; 0 means the default, 30s. A fixed-size pool
	// ignores it.
	ScaleDownAfter time.Duration `koanf:"scaleDownAfter"`
	// MemoryLimitMB caps each worker's resident memory, up to
	// MaxMemoryLimitMB; 0 means no limit.
	MemoryLimitMB int `koanf:"memoryLimitMB"`
	// Concurrency is how many tasks one worker runs at once; 0 means the
	// default, 1.
	Concurrency int `koanf:"concurrency"`
	// Prefetch is how many tasks may wait at a worker beyond the
	// Concurrency it runs (pipelining, 0 to MaxPrefetch): the worker starts
	// the next task without waiting for a round trip to the host. A worker
	// gets them only when no worker has a free place and while the pool's
	// recent tasks ran under 2 ms; a task waiting at a worker that dies is
	// sent to another. 0 (the library's default) sends a worker only as
	// many tasks as it runs; wpm's shipped pools set 4. Plugins built with
	// an SDK older than pipelining are sent tasks as with 0.
	Prefetch int `koanf:"prefetch"`
	// QueueLimit is how many tasks may wait for a free worker before
	// Submit answers ErrQueueFull; 0 means the default, 1024, and NoQueue
	// (-1) that tasks never wait.
	QueueLimit int `koanf:"queueLimit"`
	// TaskTimeout bounds a task from acceptance, queue wait included; 0
	// means no limit.
	TaskTimeout time.Duration `koanf:"taskTimeout"`
	// MaxTasksPerWorker recycles a worker after that many tasks (with some
	// jitter); 0 means never.
	MaxTasksPerWorker int `koanf:"maxTasksPerWorker"`
	// MaxWorkerAge recycles a worker once it is that old, after its current
	// task; 0 means never.
	MaxWorkerAge time.Duration `koanf:"maxWorkerAge"`
	// StartTimeout bounds a worker's start and handshake; 0 means the
	// default, 10s.
	StartTimeout time.Duration `koanf:"startTimeout"`
}

// OneShotConfig describes how single-task processes are run. The koanf
// tags are the keys of the oneShot section of wpm's config file.
type OneShotConfig struct {
	// MemoryLimitMB is the default memory limit of a one-shot, up to
	// MaxMemoryLimitMB; 0 means none. DefaultConfig sets 4096.
	MemoryLimitMB int `koanf:"memoryLimitMB"`
	// Timeout is the default timeout of a one-shot, and the most a caller
	// may ask for; 0 means no limit. DefaultConfig sets 5m.
	Timeout time.Duration `koanf:"timeout"`
	// MaxConcurrent caps one-shots running at once; 0 means the default, 8.
	MaxConcurrent int `koanf:"maxConcurrent"`
	// MaxWait is how long a one-shot may wait for a free slot before
	// ErrQueueFull; 0 means the default, 5s.
	MaxWait time.Duration `koanf:"maxWait"`
	// Spares is how many started processes per plugin wait for one-shots;
	// 0 disables warm spares. A plugin gets them once it has run as a
	// one-shot; each serves one run and is replaced in the background.
	// They count against MaxConcurrent but never keep a run waiting.
	// The library's default is 0, so that an embedding program starts no
	// process it did not ask for; the wpm command ships 1.
	Spares int `koanf:"spares"`
	// StartTimeout bounds a one-shot's start and handshake; 0 means the
	// default, 10s.
	StartTimeout time.Duration `koanf:"startTimeout"`
}

// NoQueue is the PoolConfig.QueueLimit of a pool whose tasks never wait:
// when every worker is busy, Submit answers ErrQueueFull at once.
const NoQueue = -1

// MaxPrefetch is the largest PoolConfig.Prefetch.
const MaxPrefetch = 1024

// MaxMemoryLimitMB is the largest memory limit, in MB, that a pool or a
// one-shot may have: 1 TiB.
const MaxMemoryLimitMB = 1 << 20

// maxCount bounds every count in a Config (workers, limits, spares).
const maxCount = math.MaxInt32

// defaultStartTimeout is the default start timeout of pools and one-shots.
const defaultStartTimeout = 10 * time.Second

// defaultScaleDownAfter is the default idle time before a pool that sizes
// itself stops a worker above its minimum.
const defaultScaleDownAfter = 30 * time.Second

// DefaultConfig returns the configuration wpm ships with, less its pools
// and with no warm spares (see OneShotConfig.Spares). Together with
// DefaultPoolConfig it is the one place defaults are kept.
func DefaultConfig() Config {
	return Config{
		PluginDir: "bin/plugins",
		OneShot: OneShotConfig{
			MemoryLimitMB: 4096,
			Timeout:       5 * time.Minute,
			MaxConcurrent: 8,
			MaxWait:       5 * time.Second,
			StartTimeout:  defaultStartTimeout,
		},
	}
}

// DefaultPoolConfig returns the settings of a pool that sets nothing but
// its name, plugin and workers, which have no default.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		Concurrency:    1,
		QueueLimit:     1024,
		StartTimeout:   defaultStartTimeout,
		ScaleDownAfter: defaultScaleDownAfter,
	}
}

// withDefaults returns c as a pool runs it: the fields whose 0 means "the
// default" filled from DefaultPoolConfig, a fixed size (Workers) as
// MinWorkers = MaxWorkers = Workers, and QueueLimit NoQueue as 0 places in
// the queue.
func (c PoolConfig) withDefaults() PoolConfig {
	d := DefaultPoolConfig()
	orDefault(&c.Concurrency, d.Concurrency)
	orDefault(&c.QueueLimit, d.QueueLimit)
	orDefault(&c.StartTimeout, d.StartTimeout)
	orDefault(&c.ScaleDownAfter, d.ScaleDownAfter)
	if c.MaxWorkers == 0 {
		c.MinWorkers, c.MaxWorkers = c.Workers, c.Workers
	}
	if c.QueueLimit < 0 {
		c.QueueLimit = 0
	}
	if c.Script != "" {
		// The name a script pool's worker goes by in events, stats and
		// metrics, and in plugins.checksums.
		c.Plugin = filepath.Base(c.Script)
	}
	return c
}

// withDefaults returns c with the fields whose 0 means "the default"
// filled from DefaultConfig.
func (c OneShotConfig) withDefaults() OneShotConfig {
	d := DefaultConfig().OneShot
	orDefault(&c.MaxConcurrent, d.MaxConcurrent)
	orDefault(&c.MaxWait, d.MaxWait)
	orDefault(&c.StartTimeout, d.StartTimeout)
	return c
}

// orDefault sets *v to d when *v is 0.
func orDefault[T int | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}

// ConfigError is one problem [Config.Validate] found: the key, named as in
// wpm's config file ("pools[1].workers"), and what is wrong with its value.
type ConfigError struct {
	// Key is the key whose value is wrong.
	Key string
	// Problem says what is wrong, and what is allowed.
	Problem string
}

// Error returns "key: problem".
func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

// Validate reports every problem in c, each a *ConfigError naming its key
// as in the config file (for example "pools[1].workers"), joined with
// errors.Join. It does not look at the plugins directory; New checks that
// each pool's plugin exists.
func (c Config) Validate() error {
	var p problems
	if c.PluginDir == "" {
		p.add("plugins.dir", "must name the plugins directory")
	}
	for name, sum := range c.Checksums {
		key := "plugins.checksums." + name
		if !validName(name) {
			p.add(key, "%q is not a plugin name", name)
		}
		if len(sum) != 64 || strings.Trim(strings.ToLower(sum), "0123456789abcdef") != "" {
			p.add(key, "must be a SHA-256 in hex (64 characters), got %q", sum)
		}
	}
	seen := make(map[string]int, len(c.Pools))
	for i, pc := range c.Pools {
		p.pool(fmt.Sprintf("pools[%d].", i), pc)
		if j, dup := seen[pc.Name]; dup && pc.Name != "" {
			p.add(fmt.Sprintf("pools[%d].name", i), "%q is already the name of pools[%d]", pc.Name, j)
		}
		seen[pc.Name] = i
	}
	p.oneShot("oneShot.", c.OneShot)
	return errors.Join(p...)
}

// problems collects what Validate finds.
type problems []error

// add records a problem with key.
func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

// pool checks one pool, whose keys start with prefix.
func (p *problems) pool(prefix string, c PoolConfig) {
	switch {
	case c.Name == "":
		p.add(prefix+"name", "must not be empty")
	case !validName(c.Name):
		p.add(prefix+"name", "%q may hold only letters, digits, '.', '_' and '-'", c.Name)
	}
	switch {
	case c.Plugin != "" && c.Script != "" && c.Plugin != filepath.Base(c.Script):
		p.add(prefix+"script", "pool %q sets both plugin and script; keep one: plugin for a plugin binary, script for a Node.js worker script", c.Name)
	case c.Script != "":
	case c.Plugin == "":
		p.add(prefix+"plugin", "pool %q must name a plugin in the plugins directory, or set script to a Node.js worker script", c.Name)
	case !validName(c.Plugin):
		p.add(prefix+"plugin", "%q must be a plain file name in the plugins directory", c.Plugin)
	}
	p.size(prefix, c)
	p.memoryLimit(prefix+"memoryLimitMB", c.MemoryLimitMB)
	p.count(prefix+"concurrency", c.Concurrency, 0, "at least 1")
	if c.Prefetch < 0 || c.Prefetch > MaxPrefetch {
		p.add(prefix+"prefetch", "must be from 0 (none) to %d, got %d", MaxPrefetch, c.Prefetch)
	}
	p.count(prefix+"queueLimit", c.QueueLimit, NoQueue, "-1 (no queue), 0 (the default, 1024) or more")
	p.duration(prefix+"taskTimeout", c.TaskTimeout)
	p.count(prefix+"maxTasksPerWorker", c.MaxTasksPerWorker, 0, "0 (never) or more")
	p.duration(prefix+"maxWorkerAge", c.MaxWorkerAge)
	p.duration(prefix+"startTimeout", c.StartTimeout)
}

// size checks a pool's workers, minWorkers, maxWorkers and
// scaleDownAfter, whose keys start with prefix: either a fixed size or
// bounds, never both.
func (p *problems) size(prefix string, c PoolConfig) {
	p.duration(prefix+"scaleDownAfter", c.ScaleDownAfter)
	if c.MinWorkers == 0 && c.MaxWorkers == 0 {
		if c.Workers < 1 {
			p.add(prefix+"workers", "must be at least 1, got %d; for a pool that sizes itself leave it out and set maxWorkers (and minWorkers)", c.Workers)
			return
		}
		p.count(prefix+"workers", c.Workers, 1, "at least 1")
		return
	}
	if c.Workers != 0 {
		p.add(prefix+"workers", "set either workers (a fixed size, %d) or minWorkers and maxWorkers, not both; workers: N means minWorkers = maxWorkers = N", c.Workers)
	}
	p.count(prefix+"minWorkers", c.MinWorkers, 0, "0 or more")
	p.count(prefix+"maxWorkers", c.MaxWorkers, 0, "at least 1")
	switch {
	case c.MaxWorkers == 0:
		p.add(prefix+"maxWorkers", "must be set, at least minWorkers (%d), when minWorkers is", c.MinWorkers)
	case c.MaxWorkers > 0 && c.MinWorkers > c.MaxWorkers:
		p.add(prefix+"minWorkers", "must be at most maxWorkers (%d), got %d; lower minWorkers or raise maxWorkers", c.MaxWorkers, c.MinWorkers)
	}
}

// oneShot checks the one-shot settings, whose keys start with prefix.
func (p *problems) oneShot(prefix string, c OneShotConfig) {
	p.memoryLimit(prefix+"memoryLimitMB", c.MemoryLimitMB)
	p.duration(prefix+"timeout", c.Timeout)
	p.count(prefix+"maxConcurrent", c.MaxConcurrent, 0, "at least 1")
	p.duration(prefix+"maxWait", c.MaxWait)
	p.count(prefix+"spares", c.Spares, 0, "0 (none) or more")
	p.duration(prefix+"startTimeout", c.StartTimeout)
}

// count checks that n is from min to maxCount; atLeast says what min
// allows, as in "at least 1".
func (p *problems) count(key string, n, min int, atLeast string) {
	switch {
	case n < min:
		p.add(key, "must be %s, got %d", atLeast, n)
	case n > maxCount:
		p.add(key, "must be at most %d, got %d", maxCount, n)
	}
}

// memoryLimit checks a memory limit in MB.
func (p *problems) memoryLimit(key string, mb int) {
	if mb < 0 || mb > MaxMemoryLimitMB {
		p.add(key, "must be from 0 (no limit) to %d (1 TiB), got %d", MaxMemoryLimitMB, mb)
	}
}

// duration checks that d is not negative.
func (p *problems) duration(key string, d time.Duration) {
	if d < 0 {
		p.add(key, "must not be negative, got %s", d)
	}
}

// validName reports whether s is a safe pool or plugin name: a plain file
// name that can not climb out of a directory.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 128 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return s[0] != '.' && s[0] != '-'
}
