package host_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// pluginDir holds the plugins built for this test binary. Tests run in its
// parent's parent, so the examples can say "bin/plugins" as wpm's users do.
var pluginDir string

func TestMain(m *testing.M) {
	os.Exit(testkit.RunMain(m, func(root string) error {
		pluginDir = filepath.Join(root, "bin", "plugins")
		if err := testkit.BuildPlugins(pluginDir); err != nil {
			return err
		}
		if err := testkit.BuildPythonPlugins(pluginDir); err != nil {
			return err
		}
		return os.Chdir(root)
	}))
}

// testLogger logs through t, so a failing test shows what its workers said.
func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "wpm", Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// newManager starts a manager with these pools on the test plugins, and
// shuts it down and checks that no worker is left when the test ends.
func newManager(t *testing.T, pools ...host.PoolConfig) *host.Manager {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.Pools = pools
	return newManagerWith(t, cfg, testLogger(t))
}

// newManagerWith starts a manager with a full config and a logger, and
// shuts it down when the test ends. DefaultConfig's plugins directory,
// bin/plugins, is the test plugins: tests run in its parent's parent.
func newManagerWith(t *testing.T, cfg host.Config, logger hclog.Logger, opts ...host.Option) *host.Manager {
	t.Helper()
	m, err := host.New(cfg, append([]host.Option{host.WithLogger(logger)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, m.Shutdown(ctx))
		testkit.RequireNoChildren(t)
	})
	return m
}

// waitReady waits until every worker of the pool is ready.
func waitReady(t *testing.T, m *host.Manager, pool string) host.PoolStats {
	t.Helper()
	var s host.PoolStats
	require.Eventually(t, func() bool {
		var err error
		s, err = m.Pool(pool)
		require.NoError(t, err)
		return s.Ready == s.Target
	}, 10*time.Second, 5*time.Millisecond, "pool %s never became ready", pool)
	return s
}

func pids(s host.PoolStats) []int {
	var out []int
	for _, w := range s.Workers {
		out = append(out, w.PID)
	}
	return out
}

// fault builds a misbehave plugin input.
func fault(name string, kv ...any) []byte {
	in := map[string]any{"fault": name}
	for i := 0; i+1 < len(kv); i += 2 {
		in[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(in)
	return b
}

// outputPID reads the "pid" field of a plugin's output.
func outputPID(t *testing.T, out []byte) int {
	t.Helper()
	var v struct {
		PID int `json:"pid"`
	}
	require.NoError(t, json.Unmarshal(out, &v), "output %s", out)
	return v.PID
}

func misbehavePool(name string, workers int) host.PoolConfig {
	return host.PoolConfig{Name: name, Plugin: "misbehave", Workers: workers, QueueLimit: 16}
}

// outputInt reads an integer field of a plugin's output.
func outputInt(t *testing.T, out []byte, field string) int {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(out, &v), "output %s", out)
	n, _ := v[field].(float64)
	return int(n)
}

func itoa(n int) string { return strconv.Itoa(n) }
