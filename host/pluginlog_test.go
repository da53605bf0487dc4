package host_test

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// A plugin's hclog JSON lines, logged during a task through shared.Logger,
// keep their level in the host's log and are in the detail of the crash
// that follows them (the logcrash test plugin logs a warning and an error,
// then exits).
func TestManager_pluginLogKeepsLevelAndReachesCrashDetail(t *testing.T) {
	var logs testkit.SyncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Name: "wpm", Level: hclog.Debug, Output: &logs})
	cfg := host.DefaultConfig()
	cfg.Pools = []host.PoolConfig{{Name: "L", Plugin: "logcrash", Workers: 1, QueueLimit: 1}}
	m := newManagerWith(t, cfg, logger)
	waitReady(t, m, "L")

	_, err := m.Submit(context.Background(), "L", []byte(`{}`))
	require.ErrorIs(t, err, host.ErrWorkerCrashed)
	var te *host.TaskError
	require.ErrorAs(t, err, &te)
	assert.Contains(t, te.Detail, "logcrash: disk nearly full")
	assert.Contains(t, te.Detail, "logcrash: giving up")

	out := logs.String()
	assert.Regexp(t, `\[WARN\] +wpm\.pool(\.plugin)?: logcrash: disk nearly full:.* freeMB=12`, out)
	assert.Regexp(t, `\[ERROR\] +wpm\.pool(\.plugin)?: logcrash: giving up:.* step=write`, out)
	assert.NotContains(t, out, `"@message":"logcrash:`, "no line arrives as raw JSON")
}
