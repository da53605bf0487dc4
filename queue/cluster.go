package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Every wpm pointed at the same NATS is one cluster (docs/SCALING.md). Each
// host announces itself in the key-value bucket wpm_hosts every
// heartbeatInterval; an entry older than hostTTL is gone, so a host that
// stops heartbeating drops out within hostTTL. Submits wake every host's
// runner of the task's subject through a core NATS message, and a cancel
// reaches the host that runs the task the same way.
const (
	hostsBucket       = "wpm_hosts"
	heartbeatInterval = time.Second
	hostTTL           = 4 * time.Second
	pluginsEvery      = 10 // heartbeats between two listings of the plugins
	wakePrefix        = "wpm.wake."
	cancelSubject     = "wpm.cancel"
)

// HostInfo is what a host announces about itself.
type HostInfo struct {
	// Name identifies the host in the cluster (nats.name).
	Name string `json:"name"`
	// Address is its HTTP API's address (http.addr).
	Address string `json:"address"`
	// Role is all, api or worker.
	Role string `json:"role"`
	// Version is wpm's version.
	Version string `json:"version"`
	// StartedAt is when it started; SeenAt when it last heartbeated.
	StartedAt time.Time `json:"startedAt"`
	SeenAt    time.Time `json:"seenAt"`
	// Pools are the pools it runs.
	Pools []HostPool `json:"pools"`
	// Plugins are the plugins it runs one-shots of.
	Plugins []string `json:"plugins"`
	// Self marks the host that answers.
	Self bool `json:"self,omitempty"`
}

// HostPool is one pool of a host.
type HostPool struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Workers is the pool's size now (its target), Ready those that take
	// tasks; Capacity is Ready times the pool's concurrency.
	Workers  int `json:"workers"`
	Ready    int `json:"ready"`
	Capacity int `json:"capacity"`
	// Running and Queued are the tasks on its workers and waiting.
	Running int `json:"running"`
	Queued  int `json:"queued"`
	// TaskTimeoutMs is the pool's taskTimeout; 0 means none.
	TaskTimeoutMs int64 `json:"taskTimeoutMs"`
	// Paused says the pool is paused on the host (pause.go), as its
	// GET /v1/pools says: as it last announced, or now for this host.
	Paused bool `json:"paused"`
}

// members is the engine's view of the cluster, refreshed by announce.
type members struct {
	kv   jetstream.KeyValue
	self HostInfo

	mu      sync.Mutex
	hosts   []HostInfo // live, self included, by name
	plugins []string
	readAt  time.Time // when hosts was last read whole from NATS
}

// hostKey turns a host name into a key: keys take letters, digits and
// -_=/. only.
var keyUnsafe = regexp.MustCompile(`[^-_=/.a-zA-Z0-9]`)

func hostKey(name string) string { return keyUnsafe.ReplaceAllString(name, "_") }

// hostsBucketConfig is the hosts bucket's: in memory, so a restart of the
// NATS server empties it (repair makes it again).
func (e *Engine) hostsBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:   hostsBucket,
		TTL:      hostTTL,
		Storage:  jetstream.MemoryStorage,
		Replicas: e.opts.Replicas,
	}
}

// startCluster makes the hosts bucket, announces this host once, starts
// the heartbeat and subscribes to wake-ups and cancels.
func (e *Engine) startCluster(ctx context.Context) error {
	kv, err := ensureKV(ctx, e.js, e.hostsBucketConfig())
	if err != nil {
		return fmt.Errorf("make the hosts bucket %s: %w", hostsBucket, err)
	}
	if err := e.checkNameFree(ctx, kv); err != nil {
		return err
	}
	e.members = &members{kv: kv, self: HostInfo{
		Name: e.opts.Name, Address: e.opts.Address, Role: e.opts.Role, Version: e.opts.Version,
		StartedAt: time.Now().UTC(),
	}}
	if _, err := e.nc.Subscribe(wakePrefix+">", func(m *nats.Msg) { e.woken(m.Subject[len(wakePrefix):], m.Data) }); err != nil {
		return fmt.Errorf("subscribe to wake-ups: %w", err)
	}
	if _, err := e.nc.Subscribe(cancelSubject, func(m *nats.Msg) { e.stopLocal(string(m.Data)) }); err != nil {
		return fmt.Errorf("subscribe to cancels: %w", err)
	}
	if err := e.receiveEvents(); err != nil {
		return fmt.Errorf("subscribe to task events: %w", err)
	}
	e.announce(ctx, 0)
	e.runners.Go(e.heartbeatLoop)
	return nil
}

// ErrNameTaken means another live host announces itself under this
// host's nats.name: two hosts of one name hide each other's pools.
var ErrNameTaken = errors.New("nats.name is taken by a live host")

// checkNameFree fails with ErrNameTaken when a live host heartbeats under
// this host's name: an entry that is still renewed a heartbeat later. An
// entry left by this host's own previous life, stopped without removing
// it, is not renewed, and does not count.
func (e *Engine) checkNameFree(ctx context.Context, kv jetstream.KeyValue) error {
	key := hostKey(e.opts.Name)
	first, err := kv.Get(ctx, key)
	if err != nil {
		return nil // no entry (or none readable): nothing to tell
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(heartbeatInterval * 3 / 2):
	}
	again, err := kv.Get(ctx, key)
	if err != nil || again.Revision() == first.Revision() {
		return nil
	}
	var other HostInfo
	_ = json.Unmarshal(again.Value(), &other)
	return fmt.Errorf("%w: host %q (address %s, started %s) is live; give each host its own nats.name, or leave it empty for the machine's name and HTTP port", ErrNameTaken, e.opts.Name, other.Address, other.StartedAt.Format(time.RFC3339))
}

// heartbeatLoop announces this host every heartbeatInterval until the
// engine stops, then removes its entry.
func (e *Engine) heartbeatLoop() {
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-e.loops.Done():
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = e.members.kv.Delete(ctx, hostKey(e.opts.Name))
			cancel()
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(e.loops, heartbeatInterval)
			e.announce(ctx, n)
			cancel()
		}
	}
}

// announce puts this host's entry and reads everyone's.
func (e *Engine) announce(ctx context.Context, n int) {
	m := e.members
	self := m.self
	self.SeenAt = time.Now().UTC()
	if !e.opts.APIOnly {
		for _, p := range e.mgr.Pools() {
			self.Pools = append(self.Pools, HostPool{
				Name: p.Config.Name, Plugin: p.Config.Plugin, Workers: p.Target,
				Ready: p.Ready, Capacity: p.Ready * p.Config.Concurrency,
				Running: p.Running, Queued: p.QueueDepth, TaskTimeoutMs: p.Config.TaskTimeout.Milliseconds(),
				Paused: p.Paused,
			})
		}
		m.mu.Lock()
		plugins := m.plugins
		m.mu.Unlock()
		if n%pluginsEvery == 0 || plugins == nil {
			plugins = e.pluginNames()
		}
		self.Plugins = plugins
	}
	if self.Pools == nil {
		self.Pools = []HostPool{}
	}
	if self.Plugins == nil {
		self.Plugins = []string{}
	}
	b, _ := json.Marshal(self)
	if _, err := m.kv.Put(ctx, hostKey(self.Name), b); err != nil {
		e.logger.Debug("can not announce this host", "error", err)
		e.needRepair() // the bucket may be gone with a restart of the server
	}
	hosts := []HostInfo{self}
	keys, err := m.kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		// Not read is not empty: the last view stays, marked stale by
		// its age, and this host's own entry is fresh.
		e.logger.Debug("can not read the cluster's hosts", "error", err)
		m.mu.Lock()
		for i := range m.hosts {
			if m.hosts[i].Name == self.Name {
				m.hosts[i] = self
			}
		}
		m.plugins = self.Plugins
		m.mu.Unlock()
		return
	}
	for _, k := range keys {
		if k == hostKey(self.Name) {
			continue
		}
		entry, err := m.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var h HostInfo
		if json.Unmarshal(entry.Value(), &h) != nil || time.Since(entry.Created()) > hostTTL {
			continue
		}
		hosts = append(hosts, h)
	}
	slices.SortFunc(hosts, func(a, b HostInfo) int { return cmpString(a.Name, b.Name) })
	m.mu.Lock()
	m.hosts = hosts
	m.plugins = self.Plugins
	m.readAt = time.Now()
	m.mu.Unlock()
}

// ViewStale reports whether this host could not read the cluster's hosts
// for longer than their TTL (NATS unreachable): then the view is old, not
// empty, and a pool missing from it may well run elsewhere.
func (e *Engine) ViewStale() bool {
	e.members.mu.Lock()
	defer e.members.mu.Unlock()
	return time.Since(e.members.readAt) > hostTTL
}

// errStaleView is checkPool's error for a pool it can not find while the
// view is stale.
func (e *Engine) errStaleView(what string) error {
	return fmt.Errorf("%w: %s does not run here, and this host has not heard from the cluster for over %s (NATS unreachable), so it can not tell where it runs; retry later", ErrUnavailable, what, hostTTL)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pluginNames lists the plugins this host runs one-shots of.
func (e *Engine) pluginNames() []string {
	infos, err := e.mgr.Plugins()
	if err != nil {
		return []string{}
	}
	names := make([]string, len(infos))
	for i, p := range infos {
		names[i] = p.Name
	}
	return names
}

// Cluster returns the live hosts, this one included (Self), by name.
// This host's pools say whether they are paused now, not at its last
// announce, so that a pause shows at once where it was made.
func (e *Engine) Cluster() []HostInfo {
	e.members.mu.Lock()
	out := slices.Clone(e.members.hosts)
	e.members.mu.Unlock()
	for i := range out {
		if out[i].Self = out[i].Name == e.opts.Name; out[i].Self {
			out[i].Pools = slices.Clone(out[i].Pools) // the view's own are shared
			for j := range out[i].Pools {
				out[i].Pools[j].Paused = e.mgr.Paused(out[i].Pools[j].Name)
			}
		}
	}
	return out
}

// Self returns this host's name.
func (e *Engine) Self() string { return e.opts.Name }

// remotePool returns a live host's entry of pool, other than this host's.
func (e *Engine) remotePool(pool string) (HostPool, bool) {
	for _, h := range e.Cluster() {
		if h.Self {
			continue
		}
		if i := slices.IndexFunc(h.Pools, func(p HostPool) bool { return p.Name == pool }); i >= 0 {
			return h.Pools[i], true
		}
	}
	return HostPool{}, false
}

// RunsRemotely reports whether another live host runs pool.
func (e *Engine) RunsRemotely(pool string) bool {
	_, ok := e.remotePool(pool)
	return ok
}

// remotePlugin reports whether another live host runs one-shots of plugin.
func (e *Engine) remotePlugin(plugin string) bool {
	for _, h := range e.Cluster() {
		if !h.Self && slices.Contains(h.Plugins, plugin) {
			return true
		}
	}
	return false
}

// hostLive reports whether the host named name heartbeats.
func (e *Engine) hostLive(name string) bool {
	return slices.ContainsFunc(e.Cluster(), func(h HostInfo) bool { return h.Name == name })
}

// ClusterPool sums a pool's figures over the live hosts.
type ClusterPool struct {
	Hosts    int `json:"hosts"`
	Workers  int `json:"workers"`
	Ready    int `json:"ready"`
	Capacity int `json:"capacity"`
	Running  int `json:"running"`
	Queued   int `json:"queued"`
	// Paused says the pool is paused for the whole cluster (pause.go).
	Paused bool `json:"paused"`
}

// ClusterPools sums every pool's figures over the live hosts, by pool.
func (e *Engine) ClusterPools() map[string]ClusterPool {
	out := map[string]ClusterPool{}
	for _, h := range e.Cluster() {
		for _, p := range h.Pools {
			c := out[p.Name]
			c.Hosts++
			c.Workers += p.Workers
			c.Ready += p.Ready
			c.Capacity += p.Capacity
			c.Running += p.Running
			c.Queued += p.Queued
			c.Paused = e.Paused(p.Name)
			out[p.Name] = c
		}
	}
	return out
}

// wakeAll wakes every host's runner of subj.
func (e *Engine) wakeAll(subj string) {
	_ = e.nc.Publish(wakePrefix+subj, nil)
}

// stopLocal stops task id if it runs here, because it was canceled.
func (e *Engine) stopLocal(id string) {
	e.mu.Lock()
	stop := e.running[id]
	e.mu.Unlock()
	if stop != nil {
		stop(errCanceled)
	}
}

// errNoHost is why a forwarded task's wait ended: the host running it
// stopped heartbeating.
var errNoHost = errors.New("the host running the task stopped answering")

// runsHere reports whether this host takes pool's tasks ("" for
// one-shots) off the queue.
func (e *Engine) runsHere(pool string) bool {
	if e.opts.APIOnly {
		return false
	}
	if pool == "" {
		return true
	}
	return e.mgr.HasPool(pool)
}

// checkPool returns pool's plugin if pool runs here or on a live host.
func (e *Engine) checkPool(pool string) (string, error) {
	pc, err := e.mgr.PoolConfig(pool)
	if err == nil {
		return pc.Plugin, nil
	}
	if hp, ok := e.remotePool(pool); ok {
		return hp.Plugin, nil
	}
	if e.ViewStale() {
		return "", e.errStaleView(fmt.Sprintf("pool %q", pool))
	}
	return "", err
}
