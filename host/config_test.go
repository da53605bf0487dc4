package host

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPoolConfig_withDefaults(t *testing.T) {
	d := DefaultPoolConfig()
	got := PoolConfig{Name: "A", Plugin: "p", Workers: 2}.withDefaults()
	assert.Equal(t, PoolConfig{Name: "A", Plugin: "p", Workers: 2, MinWorkers: 2, MaxWorkers: 2, ScaleDownAfter: d.ScaleDownAfter,
		Concurrency: d.Concurrency, QueueLimit: d.QueueLimit, StartTimeout: d.StartTimeout}, got)
	assert.Equal(t, 30*time.Second, got.ScaleDownAfter)
	assert.Equal(t, 1024, got.QueueLimit, "a pool that sets no queue limit queues")

	assert.Equal(t, 0, PoolConfig{QueueLimit: NoQueue}.withDefaults().QueueLimit, "NoQueue: no places")
	set := PoolConfig{Concurrency: 3, QueueLimit: 5, StartTimeout: time.Second, MaxWorkers: 4, ScaleDownAfter: time.Second}
	assert.Equal(t, set, set.withDefaults(), "set fields stay")
}

func TestOneShotConfig_withDefaults(t *testing.T) {
	d := DefaultConfig().OneShot
	got := OneShotConfig{}.withDefaults()
	assert.Equal(t, OneShotConfig{MaxConcurrent: d.MaxConcurrent, MaxWait: d.MaxWait, StartTimeout: d.StartTimeout}, got,
		"0 memory limit, timeout and spares mean none")
	assert.Equal(t, d, d.withDefaults())
}

func TestConfig_Validate_defaults(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Pools = []PoolConfig{{Name: "A", Plugin: "p", Workers: 1}, {Name: "B", Plugin: "p", Workers: 1, QueueLimit: NoQueue}}
	require.NoError(t, cfg.Validate())
}

func TestConfig_Validate_ranges(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		key  string
		want string
	}{
		{"pool memory limit overflows", func(c *Config) { c.Pools[0].MemoryLimitMB = 17592186044416 },
			"pools[0].memoryLimitMB", "must be from 0 (no limit) to 1048576 (1 TiB), got 17592186044416"},
		{"pool memory limit at int max", func(c *Config) { c.Pools[0].MemoryLimitMB = 9223372036854775807 },
			"pools[0].memoryLimitMB", "must be from 0 (no limit) to 1048576 (1 TiB), got 9223372036854775807"},
		{"negative pool memory limit", func(c *Config) { c.Pools[0].MemoryLimitMB = -1 },
			"pools[0].memoryLimitMB", "must be from 0 (no limit) to 1048576 (1 TiB), got -1"},
		{"one-shot memory limit", func(c *Config) { c.OneShot.MemoryLimitMB = MaxMemoryLimitMB + 1 },
			"oneShot.memoryLimitMB", "must be from 0 (no limit) to 1048576 (1 TiB), got 1048577"},
		{"too many workers", func(c *Config) { c.Pools[0].Workers = 1 << 40 },
			"pools[0].workers", "must be at most 2147483647, got 1099511627776"},
		{"no workers", func(c *Config) { c.Pools[0].Workers = 0 },
			"pools[0].workers", "must be at least 1, got 0; for a pool that sizes itself leave it out and set maxWorkers (and minWorkers)"},
		{"min above max", func(c *Config) { c.Pools[0].Workers, c.Pools[0].MinWorkers, c.Pools[0].MaxWorkers = 0, 3, 2 },
			"pools[0].minWorkers", "must be at most maxWorkers (2), got 3; lower minWorkers or raise maxWorkers"},
		{"negative min", func(c *Config) { c.Pools[0].Workers, c.Pools[0].MinWorkers, c.Pools[0].MaxWorkers = 0, -1, 2 },
			"pools[0].minWorkers", "must be 0 or more, got -1"},
		{"negative max", func(c *Config) { c.Pools[0].Workers, c.Pools[0].MaxWorkers = 0, -2 },
			"pools[0].maxWorkers", "must be at least 1, got -2"},
		{"min without max", func(c *Config) { c.Pools[0].Workers, c.Pools[0].MinWorkers = 0, 1 },
			"pools[0].maxWorkers", "must be set, at least minWorkers (1), when minWorkers is"},
		{"workers and bounds", func(c *Config) { c.Pools[0].MaxWorkers = 4 },
			"pools[0].workers", "set either workers (a fixed size, 1) or minWorkers and maxWorkers, not both; workers: N means minWorkers = maxWorkers = N"},
		{"negative scale-down time", func(c *Config) { c.Pools[0].ScaleDownAfter = -time.Second },
			"pools[0].scaleDownAfter", "must not be negative, got -1s"},
		{"queue limit below -1", func(c *Config) { c.Pools[0].QueueLimit = -2 },
			"pools[0].queueLimit", "must be -1 (no queue), 0 (the default, 1024) or more, got -2"},
		{"too many spares", func(c *Config) { c.OneShot.Spares = 1 << 31 },
			"oneShot.spares", "must be at most 2147483647, got 2147483648"},
		{"negative recycling", func(c *Config) { c.Pools[0].MaxTasksPerWorker = -1 },
			"pools[0].maxTasksPerWorker", "must be 0 (never) or more, got -1"},
		{"negative duration", func(c *Config) { c.OneShot.MaxWait = -time.Second },
			"oneShot.maxWait", "must not be negative, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Pools = []PoolConfig{{Name: "A", Plugin: "p", Workers: 1}}
			tt.edit(&cfg)
			err := cfg.Validate()
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "%v", err)
			assert.Equal(t, &ConfigError{Key: tt.key, Problem: tt.want}, ce)
			assert.Equal(t, tt.key+": "+tt.want, err.Error())
		})
	}
}

func TestConfig_Validate_scaleBounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Pools = []PoolConfig{
		{Name: "A", Plugin: "p", MaxWorkers: 4},
		{Name: "B", Plugin: "p", MinWorkers: 1, MaxWorkers: 1, ScaleDownAfter: time.Second},
		{Name: "C", Plugin: "p", MinWorkers: 2, MaxWorkers: 8},
	}
	require.NoError(t, cfg.Validate(), "minWorkers 0 is allowed, and min = max")
	got := cfg.Pools[0].withDefaults()
	assert.Equal(t, [3]int{0, 0, 4}, [3]int{got.Workers, got.MinWorkers, got.MaxWorkers}, "bounds stay as set")
}

func TestConfig_Validate_joinsEveryProblem(t *testing.T) {
	cfg := Config{Pools: []PoolConfig{{Name: "A", Plugin: "p", Workers: 1}, {Name: "A", Plugin: "../sh", Workers: 1}}}
	err := cfg.Validate()
	j, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok)
	var keys []string
	for _, e := range j.Unwrap() {
		var ce *ConfigError
		require.True(t, errors.As(e, &ce))
		keys = append(keys, ce.Key)
	}
	assert.ElementsMatch(t, []string{"plugins.dir", "pools[1].plugin", "pools[1].name"}, keys)
}
