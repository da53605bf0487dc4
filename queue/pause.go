package queue

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wpmdev/wpm/host"
)

// Paused pools. Whether a pool is paused is the cluster's, kept across
// restarts in the file bucket wpm_pools (one key per pool: "pool-" and the
// name in hex, as pool names may hold characters keys may not), which every
// engine watches: a paused pool's runners take no task off the queue
// (those queued wait; those running finish), its host refuses synchronous
// tasks with pool_paused (host.Manager.SetPaused), and so does RunRemote.
// A task a runner held while it waited for a place when the pause came is
// handed back. The consumers themselves are not paused (JetStream's
// PauseUntil): a consumer's config is rewritten when its settings change
// (ensureConsumer), which would resume it unseen, and the bucket is needed
// anyway for the state the API, the metrics and a pause across restarts
// show.

// pausesBucket is the bucket of the pools' pause state.
const pausesBucket = "wpm_pools"

// poolState is a pool's value in pausesBucket.
type poolState struct {
	Pool   string    `json:"pool"`
	Paused bool      `json:"paused"`
	At     time.Time `json:"at"`
	Host   string    `json:"host,omitempty"` // the host that paused or resumed it
}

// pausesBucketConfig is the bucket's config: a pool's state lasts until
// it is changed.
func (e *Engine) pausesBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: pausesBucket, Storage: jetstream.FileStorage, Replicas: e.opts.Replicas}
}

// pauseKey is pool's key in the bucket.
func pauseKey(pool string) string { return "pool-" + hex.EncodeToString([]byte(pool)) }

// startPauses makes the bucket, reads every pool's state before the
// runners start (a pool paused before a restart takes nothing after it),
// then follows the changes until the engine stops.
func (e *Engine) startPauses(ctx context.Context) error {
	kv, err := ensureKV(ctx, e.js, e.pausesBucketConfig())
	if err != nil {
		return fmt.Errorf("make the pools bucket %s: %w", pausesBucket, err)
	}
	e.pausesKV = kv
	w, err := e.watchPauses(ctx)
	if err != nil {
		return err
	}
	e.runners.Go(func() { e.followPauses(w) })
	return nil
}

// watchPauses watches the bucket and applies its current values; the
// watcher then gives the changes.
func (e *Engine) watchPauses(ctx context.Context) (jetstream.KeyWatcher, error) {
	w, err := e.pausesKV.WatchAll(e.loops)
	if err != nil {
		return nil, fmt.Errorf("watch the pools bucket %s: %w", pausesBucket, err)
	}
	for {
		select {
		case entry, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("watch the pools bucket %s: the watch ended", pausesBucket)
			}
			if entry == nil {
				return w, nil // the current values are read
			}
			e.applyPause(entry)
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		}
	}
}

// followPauses applies the bucket's changes until the engine stops; a
// watch that ends (the bucket lost with a server) is made again.
func (e *Engine) followPauses(w jetstream.KeyWatcher) {
	for {
		func() {
			defer func() { _ = w.Stop() }()
			for {
				select {
				case <-e.loops.Done():
					return
				case entry, ok := <-w.Updates():
					if !ok {
						return
					}
					if entry != nil {
						e.applyPause(entry)
					}
				}
			}
		}()
		for e.loops.Err() == nil {
			select {
			case <-e.loops.Done():
				return
			case <-time.After(time.Second):
			}
			ctx, cancel := context.WithTimeout(e.loops, setUpAttempt)
			// The handle names the bucket: it works again once it exists.
			_, err := ensureKV(ctx, e.js, e.pausesBucketConfig())
			if err == nil {
				w, err = e.watchPauses(ctx)
			}
			cancel()
			if err == nil {
				break
			}
			e.logger.Debug("can not watch the pools bucket yet", "error", err)
		}
		if e.loops.Err() != nil {
			return
		}
	}
}

// applyPause takes one pool's state from the bucket.
func (e *Engine) applyPause(entry jetstream.KeyValueEntry) {
	var st poolState
	if entry.Operation() != jetstream.KeyValuePut {
		hexName, ok := strings.CutPrefix(entry.Key(), "pool-")
		name, err := hex.DecodeString(hexName)
		if !ok || err != nil {
			return
		}
		st.Pool = string(name)
	} else if err := json.Unmarshal(entry.Value(), &st); err != nil || st.Pool == "" {
		e.logger.Warn("ignoring a broken entry of the pools bucket", "key", entry.Key(), "error", err)
		return
	}
	e.mu.Lock()
	was := e.paused[st.Pool]
	if st.Paused {
		e.paused[st.Pool] = true
	} else {
		delete(e.paused, st.Pool)
	}
	e.mu.Unlock()
	e.mgr.SetPaused(st.Pool, st.Paused)
	if was != st.Paused {
		e.logger.Info("pool paused state changed", "pool", st.Pool, "paused", st.Paused, "by", st.Host)
	}
	if !st.Paused {
		e.notePriority(st.Pool, "") // its queued tasks run again
		e.signal(subject(st.Pool))
	}
}

// Paused reports whether the pool is paused, as this engine last heard.
func (e *Engine) Paused(pool string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.paused[pool]
}

// PausedPools lists the paused pools, sorted.
func (e *Engine) PausedPools() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.paused))
}

// Pause pauses the pool for the whole cluster, until Resume, across
// restarts: no host takes its queued tasks (they wait), its running tasks
// finish, and synchronous tasks are refused with host.ErrPoolPaused. The
// pool must run on some live host (host.ErrUnknownPool otherwise). It
// returns once this engine applies it; other hosts follow within moments.
func (e *Engine) Pause(ctx context.Context, pool string) error {
	return e.unavailable(e.setPaused(ctx, pool, true))
}

// Resume undoes Pause: the pool's queued tasks run again.
func (e *Engine) Resume(ctx context.Context, pool string) error {
	return e.unavailable(e.setPaused(ctx, pool, false))
}

// setPaused writes the pool's state and applies it here at once.
func (e *Engine) setPaused(ctx context.Context, pool string, paused bool) error {
	if _, err := e.checkPool(pool); err != nil {
		return err
	}
	if e.pausesKV == nil {
		return fmt.Errorf("%w: the pools bucket is not ready", ErrUnavailable)
	}
	val, err := json.Marshal(poolState{Pool: pool, Paused: paused, At: time.Now().UTC(), Host: e.opts.Name})
	if err != nil {
		return err
	}
	if _, err := e.pausesKV.Put(ctx, pauseKey(pool), val); err != nil {
		return fmt.Errorf("store the state of pool %s: %w", pool, err)
	}
	e.mu.Lock()
	if paused {
		e.paused[pool] = true
	} else {
		delete(e.paused, pool)
	}
	e.mu.Unlock()
	e.mgr.SetPaused(pool, paused)
	if !paused {
		e.notePriority(pool, "")
		e.signal(subject(pool))
		e.wakeAll(subject(pool))
	}
	return nil
}

// pausedDesc is the gauge of paused pools.
var pausedDesc = prometheus.NewDesc("wpm_pool_paused",
	"1 while a pool is paused (POST /v1/pools/{pool}/pause), for the whole cluster; 0 for this host's pools that are not.", []string{"pool"}, nil)

// collectPaused sends wpm_pool_paused for the paused pools and this
// host's others.
func (e *Engine) collectPaused(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, p := range e.PausedPools() {
		seen[p] = true
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, 1, p)
	}
	for _, p := range e.mgr.PoolNames() {
		if !seen[p] {
			ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, 0, p)
		}
	}
}

// pausedHere reports whether the runner's pool is paused (never for
// one-shots).
func (r *runner) pausedHere() bool { return r.pool != "" && r.e.Paused(r.pool) }

// refusePaused is RunRemote's check: a paused pool takes no synchronous
// task.
func (e *Engine) refusePaused(pool string) error {
	if pool != "" && e.Paused(pool) {
		return fmt.Errorf("%w: pool %s is paused: it takes no new synchronous tasks until it is resumed (POST /v1/pools/%s/resume); retry later", host.ErrPoolPaused, pool, pool)
	}
	return nil
}
