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
	assert.Equal(t, PoolConfig{Name: "A", Plugin: "p", Workers: 2,
		Concurrency: d.Concurrency, QueueLimit: d.QueueLimit, StartTimeout: d.StartTimeout}, got)
	assert.Equal(t, 1024, got.QueueLimit, "a pool that sets no queue limit queues")

	assert.Equal(t, 0, PoolConfig{QueueLimit: NoQueue}.withDefaults().QueueLimit, "NoQueue: no places")
	set := PoolConfig{Concurrency: 3, QueueLimit: 5, StartTimeout: time.Second}
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
			"pools[0].workers", "must be at least 1, got 0"},
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
