package host

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Reload applies cfg to the running manager without failing a task. Pools
// new in cfg are started; pools missing from it take no new tasks, finish
// their queued and running ones, and stop; pools in both are resized and
// re-tuned (see the pool settings' docs for what applies when). The
// plugins directory, socket directory and one-shot settings can not change
// without a restart. A cfg that does not validate is refused as a whole and
// the running configuration stays. Safe for concurrent use; reloads run
// one at a time.
func (m *Manager) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	if m.closed.Load() {
		return fmt.Errorf("%w: no reload during shutdown", ErrShuttingDown)
	}
	if err := m.checkFixed(cfg); err != nil {
		return err
	}
	paths := make([]string, len(cfg.Pools))
	for i, pc := range cfg.Pools {
		var err error
		if paths[i], err = m.catalog.resolvePool(pc); err != nil {
			return fmt.Errorf("pools[%d].%w", i, err)
		}
	}

	var added, kept []*pool
	var keptCfg []PoolConfig
	var keptLaunch []launch
	m.mu.Lock()
	wanted := make(map[string]bool, len(cfg.Pools))
	for i, pc := range cfg.Pools {
		pc = pc.withDefaults()
		wanted[pc.Name] = true
		l := m.launchFor(pc, paths[i], cfg.Checksums)
		if p, ok := m.pools[pc.Name]; ok {
			kept, keptCfg, keptLaunch = append(kept, p), append(keptCfg, pc), append(keptLaunch, l)
			continue
		}
		p := newPool(m.withEventScope(m.sup.ctx, pc), pc, l, m.observer, m.start, m.sup.spawn)
		m.pools[pc.Name] = p
		added = append(added, p)
	}
	var removed []*pool
	for name, p := range m.pools {
		if !wanted[name] {
			delete(m.pools, name)
			m.retiring[p] = struct{}{}
			removed = append(removed, p)
		}
	}
	m.poolNames = slices.Sorted(maps.Keys(m.pools))
	m.cfg = cfg
	m.mu.Unlock()

	for i, p := range kept {
		p.reconfigure(keptCfg[i], keptLaunch[i])
	}
	for _, p := range added {
		p.startSlots()
	}
	for _, p := range removed {
		m.retire(p)
	}
	m.logger.Info("config reloaded", "pools", len(cfg.Pools), "added", len(added), "removed", len(removed), "kept", len(kept))
	m.emit(Event{Type: EventPoolReloaded, Message: fmt.Sprintf("%d pools: %d added, %d removed, %d kept", len(cfg.Pools), len(added), len(removed), len(kept))})
	return nil
}

// retire drains a pool removed from the config, under the supervisor:
// it takes no new tasks, finishes its queued and running ones, and stops;
// shutdown interrupts it like any other actor.
func (m *Manager) retire(p *pool) {
	p.close()
	ok := m.sup.spawn(func() {
		select {
		case <-p.drained:
		case <-m.sup.ctx.Done():
		}
		p.stop(fmt.Errorf("%w: the pool was removed", ErrShuttingDown))
		m.mu.Lock()
		delete(m.retiring, p)
		m.mu.Unlock()
	})
	if !ok { // shutting down: Shutdown stops it
		return
	}
}

// checkFixed refuses changes that need a restart.
func (m *Manager) checkFixed(cfg Config) error {
	var errs []error
	if cat, err := newCatalog(cfg.PluginDir); err != nil || cat.dir != m.catalog.dir {
		errs = append(errs, fmt.Errorf("plugins.dir: can not change from %s without a restart", m.catalog.dir))
	}
	if cfg.ScriptsDir != m.cfg.ScriptsDir {
		errs = append(errs, errors.New("node.scriptsDir: can not change without a restart"))
	}
	if cfg.SocketDir != m.cfg.SocketDir {
		errs = append(errs, errors.New("the socket directory can not change without a restart"))
	}
	if cfg.OneShot.withDefaults() != m.cfg.OneShot.withDefaults() {
		errs = append(errs, errors.New("oneShot: its settings can not change without a restart"))
	}
	return errors.Join(errs...)
}
