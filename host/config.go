package host

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is everything a [Manager] needs. It maps one to one onto wpm's
// config file; zero fields take the values of [DefaultConfig].
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
}

// PoolConfig describes one pool of identical workers.
type PoolConfig struct {
	// Name identifies the pool in the API; unique within a Config.
	Name string
	// Plugin is the plugin binary's name in the plugins directory.
	Plugin string
	// Workers is the number of worker processes kept running (≥ 1).
	Workers int
	// MemoryLimitMB caps each worker's resident memory; 0 means no limit.
	MemoryLimitMB int
	// Concurrency is how many tasks one worker runs at once (default 1).
	Concurrency int
	// Prefetch is how many tasks may wait at a worker beyond the
	// Concurrency it runs (pipelining, 0 to MaxPrefetch): the worker starts
	// the next task without waiting for a round trip to the host. A worker
	// gets them only when no worker has a free place and while the pool's
	// recent tasks ran under 2 ms; a task waiting at a worker that dies is
	// sent to another. 0 (the library's default) sends a worker only as
	// many tasks as it runs; wpm's shipped pools set 4. Plugins built with
	// an SDK older than pipelining are sent tasks as with 0.
	Prefetch int
	// QueueLimit is how many tasks may wait for a free worker before
	// Submit answers ErrQueueFull; 0 means tasks never wait.
	QueueLimit int
	// TaskTimeout bounds a task from acceptance, queue wait included; 0
	// means no limit.
	TaskTimeout time.Duration
	// MaxTasksPerWorker recycles a worker after that many tasks (with some
	// jitter); 0 means never.
	MaxTasksPerWorker int
	// MaxWorkerAge recycles a worker once it is that old, after its current
	// task; 0 means never.
	MaxWorkerAge time.Duration
	// StartTimeout bounds a worker's start and handshake.
	StartTimeout time.Duration
}

// OneShotConfig describes how single-task processes are run.
type OneShotConfig struct {
	// MemoryLimitMB is the default memory limit of a one-shot; 0 means none.
	MemoryLimitMB int
	// Timeout is the default timeout of a one-shot, and the most a caller
	// may ask for; 0 means no limit.
	Timeout time.Duration
	// MaxConcurrent caps one-shots running at once (≥ 1).
	MaxConcurrent int
	// MaxWait is how long a one-shot may wait for a free slot before
	// ErrQueueFull.
	MaxWait time.Duration
	// Spares is how many started processes per plugin wait for one-shots;
	// 0 disables warm spares. A plugin gets them once it has run as a
	// one-shot; each serves one run and is replaced in the background.
	// They count against MaxConcurrent but never keep a run waiting.
	Spares int
	// StartTimeout bounds a one-shot's start and handshake.
	StartTimeout time.Duration
}

// Defaults used for zero fields.
const (
	DefaultConcurrency   = 1
	MaxPrefetch          = 1024
	DefaultQueueLimit    = 1024
	DefaultStartTimeout  = 10 * time.Second
	DefaultMaxConcurrent = 8
	DefaultOneShotWait   = 5 * time.Second
)

// DefaultConfig returns the configuration wpm ships with, less its pools.
func DefaultConfig() Config {
	return Config{
		PluginDir: "bin/plugins",
		OneShot: OneShotConfig{
			MemoryLimitMB: 4096,
			Timeout:       5 * time.Minute,
			MaxConcurrent: DefaultMaxConcurrent,
			MaxWait:       DefaultOneShotWait,
			StartTimeout:  DefaultStartTimeout,
		},
	}
}

// withDefaults returns c with zero fields filled in.
func (c PoolConfig) withDefaults() PoolConfig {
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

func (c OneShotConfig) withDefaults() OneShotConfig {
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultOneShotWait
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

// Validate reports every problem in c, each naming its key as in the
// config file (for example "pools[1].workers"). It does not look at the
// plugins directory; New checks that each pool's plugin exists.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.PluginDir == "" {
		bad("plugins.dir", "must name the plugins directory")
	}
	for name, sum := range c.Checksums {
		key := "plugins.checksums." + name
		if !validName(name) {
			bad(key, "%q is not a plugin name", name)
		}
		if len(sum) != 64 || strings.Trim(strings.ToLower(sum), "0123456789abcdef") != "" {
			bad(key, "must be a SHA-256 in hex (64 characters), got %q", sum)
		}
	}
	seen := make(map[string]int, len(c.Pools))
	for i, p := range c.Pools {
		key := fmt.Sprintf("pools[%d]", i)
		switch {
		case p.Name == "":
			bad(key+".name", "must not be empty")
		case !validName(p.Name):
			bad(key+".name", "%q may hold only letters, digits, '.', '_' and '-'", p.Name)
		}
		if j, dup := seen[p.Name]; dup && p.Name != "" {
			bad(key+".name", "%q is already the name of pools[%d]", p.Name, j)
		}
		seen[p.Name] = i
		if p.Plugin == "" {
			bad(key+".plugin", "must name a plugin in the plugins directory")
		} else if !validName(p.Plugin) {
			bad(key+".plugin", "%q must be a plain file name in the plugins directory", p.Plugin)
		}
		if p.Workers < 1 {
			bad(key+".workers", "must be at least 1, got %d", p.Workers)
		}
		if p.Concurrency < 0 {
			bad(key+".concurrency", "must be at least 1, got %d", p.Concurrency)
		}
		if p.Prefetch < 0 || p.Prefetch > MaxPrefetch {
			bad(key+".prefetch", "must be from 0 (none) to %d, got %d", MaxPrefetch, p.Prefetch)
		}
		if p.MemoryLimitMB < 0 {
			bad(key+".memoryLimitMB", "must be 0 (no limit) or more, got %d", p.MemoryLimitMB)
		}
		if p.QueueLimit < 0 {
			bad(key+".queueLimit", "must be 0 or more, got %d", p.QueueLimit)
		}
		if p.TaskTimeout < 0 {
			bad(key+".taskTimeout", "must not be negative, got %s", p.TaskTimeout)
		}
		if p.MaxTasksPerWorker < 0 {
			bad(key+".maxTasksPerWorker", "must be 0 (never) or more, got %d", p.MaxTasksPerWorker)
		}
		if p.MaxWorkerAge < 0 {
			bad(key+".maxWorkerAge", "must not be negative, got %s", p.MaxWorkerAge)
		}
		if p.StartTimeout < 0 {
			bad(key+".startTimeout", "must not be negative, got %s", p.StartTimeout)
		}
	}
	o := c.OneShot
	if o.MemoryLimitMB < 0 {
		bad("oneShot.memoryLimitMB", "must be 0 (no limit) or more, got %d", o.MemoryLimitMB)
	}
	if o.Timeout < 0 {
		bad("oneShot.timeout", "must not be negative, got %s", o.Timeout)
	}
	if o.MaxConcurrent < 0 {
		bad("oneShot.maxConcurrent", "must be at least 1, got %d", o.MaxConcurrent)
	}
	if o.MaxWait < 0 {
		bad("oneShot.maxWait", "must not be negative, got %s", o.MaxWait)
	}
	if o.Spares < 0 {
		bad("oneShot.spares", "must be 0 (none) or more, got %d", o.Spares)
	}
	if o.StartTimeout < 0 {
		bad("oneShot.startTimeout", "must not be negative, got %s", o.StartTimeout)
	}
	return errors.Join(errs...)
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
