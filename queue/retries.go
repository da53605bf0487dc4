package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/wpmdev/wpm/host"
)

// Retries is a pool's retry policy for asynchronous tasks: a task that
// ends worker_crashed, memory_limit_exceeded or task_timeout (and, with
// OnTaskFailed, task_failed) runs again, up to Max more attempts, the n-th
// after Backoff·2^(n-1) with jitter, at most MaxBackoff. Synchronous tasks
// are never retried. The koanf tags are the keys of a pool's retries in
// wpm's config file.
type Retries struct {
	// Max is how many times a failed task runs again; 0 means never.
	Max int `koanf:"max"`
	// Backoff is the wait before the first retry; 0 means the default, 1s.
	Backoff time.Duration `koanf:"backoff"`
	// MaxBackoff caps the wait before any retry; 0 means the default, 30s.
	MaxBackoff time.Duration `koanf:"maxBackoff"`
	// OnTaskFailed retries tasks that end task_failed (the plugin
	// returned an error) too. Tasks the plugin rejected (invalid_task)
	// are never retried.
	OnTaskFailed bool `koanf:"onTaskFailed"`
}

// Delay returns the wait before retry n (1 for the first), before jitter:
// Backoff doubled n-1 times, at most MaxBackoff, with their defaults for 0.
func (r Retries) Delay(n int) time.Duration {
	d, limit := r.Backoff, r.MaxBackoff
	if d <= 0 {
		d = time.Second
	}
	if limit <= 0 {
		limit = 30 * time.Second
	}
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Validate reports what is wrong with r: a *host.ConfigError for each
// problem, whose key is prefix (as in "pools[0].retries.") and the field's.
func (r Retries) Validate(prefix string) error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &host.ConfigError{Key: prefix + key, Problem: fmt.Sprintf(format, args...)})
	}
	if r.Max < 0 {
		add("max", "must be 0 (never) or more, got %d", r.Max)
	}
	if r.Backoff < 0 {
		add("backoff", "must not be negative, got %s", r.Backoff)
	}
	if r.MaxBackoff < 0 {
		add("maxBackoff", "must not be negative, got %s", r.MaxBackoff)
	}
	return errors.Join(errs...)
}

// SetRetries replaces the pools' retry policies (a pool not named never
// retries), as a reload changes them.
func (e *Engine) SetRetries(policies map[string]Retries) {
	e.retriesMu.Lock()
	e.retries = policies
	e.retriesMu.Unlock()
}

// retriesOf returns pool's retry policy.
func (e *Engine) retriesOf(pool string) Retries {
	e.retriesMu.RLock()
	defer e.retriesMu.RUnlock()
	return e.retries[pool]
}
