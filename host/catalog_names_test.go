package host_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// The known plugins an unknown_plugin message lists are those Plugins
// lists: a symlink leading outside the directory is in neither.
func TestCatalog_unknownListsWhatPluginsLists(t *testing.T) {
	dir := t.TempDir()
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "cpuload"), dir, "cpuload")
	outside := testkit.CopyPlugin(t, filepath.Join(pluginDir, "cpuload"), t.TempDir(), "elsewhere")
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "outside")))
	require.NoError(t, os.Symlink("cpuload", filepath.Join(dir, "inside")))
	cfg := host.DefaultConfig()
	cfg.PluginDir = dir
	m := newManagerWith(t, cfg, testLogger(t))

	assert.Equal(t, []string{"cpuload", "inside"}, pluginNames(t, m))
	_, err := m.RunOnce(context.Background(), "nope", []byte(`{}`), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrUnknownPlugin)
	assert.Contains(t, err.Error(), "known plugins: cpuload, inside")
	assert.NotContains(t, err.Error(), "outside")
}
