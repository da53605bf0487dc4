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
		if paths[i], err = m.catalog.resolve(pc.Plugin); err != nil {
			return fmt.Errorf("pools[%d].plugin: %w", i, err)
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
		p := newPool(pc, l, m.observer)
		m.pools[pc.Name] = p
		added = append(added, p)
	}
	var removed []*pool
	for name, p := range m.pools {
		if !wanted[name] {
			delete(m.pools, name)
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
		p.start()
	}
	for _, p := range removed {
		m.retiring.Add(1)
		go func() {
			defer m.retiring.Done()
			p.close()
			<-p.drained
			p.halt()
		}()
	}
	m.logger.Info("config reloaded", "pools", len(cfg.Pools), "added", len(added), "removed", len(removed), "kept", len(kept))
	return nil
}

// checkFixed refuses changes that need a restart.
func (m *Manager) checkFixed(cfg Config) error {
	var errs []error
	if cat, err := newCatalog(cfg.PluginDir); err != nil || cat.dir != m.catalog.dir {
		errs = append(errs, fmt.Errorf("plugins.dir: can not change from %s without a restart", m.catalog.dir))
	}
	if cfg.SocketDir != m.cfg.SocketDir {
		errs = append(errs, errors.New("the socket directory can not change without a restart"))
	}
	if cfg.OneShot.withDefaults() != m.cfg.OneShot.withDefaults() {
		errs = append(errs, errors.New("oneShot: its settings can not change without a restart"))
	}
	return errors.Join(errs...)
}
