package host_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

func pluginNames(t *testing.T, m *host.Manager) []string {
	t.Helper()
	infos, err := m.Plugins()
	require.NoError(t, err)
	var names []string
	for _, p := range infos {
		names = append(names, p.Name)
		assert.Len(t, p.SHA256, 64, p.Name)
		assert.Positive(t, p.SizeBytes, p.Name)
	}
	return names
}

func TestCatalog_dropInWithoutRestart(t *testing.T) {
	m := newManager(t, host.PoolConfig{Name: "CPU", Plugin: "cpuload", Workers: 1})
	assert.NotContains(t, pluginNames(t, m), "greeter")
	_, err := m.RunOnce(context.Background(), "greeter", []byte(`{"duration": 1}`), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrUnknownPlugin)

	// Copied in the way the README says: written aside, then renamed.
	tmp := testkit.CopyPlugin(t, filepath.Join(pluginDir, "cpuload"), t.TempDir(), "greeter")
	dst := filepath.Join(pluginDir, "greeter")
	require.NoError(t, os.Rename(tmp, dst))
	t.Cleanup(func() { _ = os.Remove(dst) })

	assert.Contains(t, pluginNames(t, m), "greeter")
	res, err := m.RunOnce(context.Background(), "greeter", []byte(`{"duration": 1}`), host.RunOptions{})
	require.NoError(t, err, "a dropped-in plugin runs at once")
	assert.Equal(t, "greeter", res.Plugin)
	infos, _ := m.Plugins()
	for _, p := range infos {
		if p.Name == "cpuload" {
			assert.Equal(t, []string{"CPU"}, p.Pools)
		}
	}
}

func TestCatalog_halfWrittenOrForeignBinaryNeverRuns(t *testing.T) {
	m := newManager(t)
	full, err := os.ReadFile(filepath.Join(pluginDir, "cpuload"))
	require.NoError(t, err)

	// Half a binary, still open for writing: the kernel refuses to run it.
	half := filepath.Join(pluginDir, "halfway")
	f, err := os.OpenFile(half, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.Remove(half) })
	_, err = f.Write(full[:len(full)/2])
	require.NoError(t, err)
	_, err = m.RunOnce(context.Background(), "halfway", []byte(`{}`), host.RunOptions{})
	require.Error(t, err)
	assert.Equal(t, host.CodeWorkerCrashed, host.Code(err))
	assert.Contains(t, err.Error(), "text file busy")
	require.NoError(t, f.Close())

	// Half a binary, closed: it starts and dies, or fails to exec.
	_, err = m.RunOnce(context.Background(), "halfway", []byte(`{}`), host.RunOptions{})
	require.Error(t, err)
	assert.Equal(t, host.CodeWorkerCrashed, host.Code(err))

	// An executable that is not a wpm plugin.
	script := filepath.Join(pluginDir, "notaplugin")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755))
	t.Cleanup(func() { _ = os.Remove(script) })
	_, err = m.RunOnce(context.Background(), "notaplugin", []byte(`{}`), host.RunOptions{})
	require.Error(t, err)
	assert.Equal(t, host.CodeWorkerCrashed, host.Code(err))
	assert.Contains(t, err.Error(), "not a wpm plugin")

	// A file without the executable bit is not a plugin at all.
	data := filepath.Join(pluginDir, "data.json")
	require.NoError(t, os.WriteFile(data, []byte(`{}`), 0o644))
	t.Cleanup(func() { _ = os.Remove(data) })
	_, err = m.RunOnce(context.Background(), "data.json", []byte(`{}`), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrUnknownPlugin)
	assert.NotContains(t, pluginNames(t, m), "data.json")
	testkit.RequireNoChildren(t)
}

func TestCatalog_checksumsPinBinaries(t *testing.T) {
	dir := t.TempDir()
	pinned := testkit.CopyPlugin(t, filepath.Join(pluginDir, "cpuload"), dir, "pinned")
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "misbehave")
	cfg := host.DefaultConfig()
	cfg.PluginDir = dir
	probe, err := host.New(cfg)
	require.NoError(t, err)
	infos, err := probe.Plugins()
	require.NoError(t, err)
	require.NoError(t, probe.Shutdown(context.Background()))
	sums := map[string]string{}
	for _, p := range infos {
		sums[p.Name] = p.SHA256
	}

	cfg.Checksums = map[string]string{"pinned": sums["pinned"], "misbehave": sums["pinned"]} // misbehave pinned to the wrong sum
	cfg.Pools = []host.PoolConfig{{Name: "P", Plugin: "pinned", Workers: 1}, {Name: "M", Plugin: "misbehave", Workers: 1}}
	m, err := host.New(cfg, host.WithLogger(testLogger(t)))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, m.Shutdown(context.Background()))
		testkit.RequireNoChildren(t)
	})

	_, err = m.Submit(context.Background(), "P", []byte(`{"duration": 1}`))
	require.NoError(t, err, "a binary matching its checksum runs")
	s, _ := m.Pool("M")
	assert.Zero(t, s.Ready, "a binary that differs never starts")
	assert.Contains(t, s.LastError, "plugins.checksums")
	_, err = m.RunOnce(context.Background(), "misbehave", []byte(`{}`), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrUnknownPlugin)
	assert.Contains(t, err.Error(), "refusing to start it")

	// Swapping the pinned binary for another is caught at the next start.
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "pinned.new")
	require.NoError(t, os.Rename(filepath.Join(dir, "pinned.new"), pinned))
	_, err = m.RunOnce(context.Background(), "pinned", []byte(`{"duration": 1}`), host.RunOptions{})
	require.ErrorIs(t, err, host.ErrUnknownPlugin)
}

// Issue 8 item 14: a pin binds the name the caller used. A pinned name that
// is a symlink to an unpinned file is checked against the name's pin, for
// one-shots, their spares and pools alike.
func TestCatalog_pinBindsTheNameCalled(t *testing.T) {
	dir := t.TempDir()
	testkit.CopyPlugin(t, filepath.Join(pluginDir, "misbehave"), dir, "unpinned")
	require.NoError(t, os.Symlink("unpinned", filepath.Join(dir, "safe")))
	cfg := host.DefaultConfig()
	cfg.PluginDir = dir
	cfg.OneShot.Spares = 1
	// "safe" is pinned to a digest its target does not have.
	cfg.Checksums = map[string]string{"safe": strings.Repeat("ab", 32)}
	cfg.Pools = []host.PoolConfig{{Name: "S", Plugin: "safe", Workers: 1}}
	m, err := host.New(cfg, host.WithLogger(testLogger(t)))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, m.Shutdown(context.Background()))
		testkit.RequireNoChildren(t)
	})
	for range 2 { // the second would get a spare, if one had been started
		_, err = m.RunOnce(context.Background(), "safe", fault("echo"), host.RunOptions{})
		require.ErrorIs(t, err, host.ErrUnknownPlugin)
		assert.Contains(t, err.Error(), "plugins.checksums")
	}
	s, _ := m.Pool("S")
	assert.Zero(t, s.Ready, "the pool's worker never starts")
	assert.Contains(t, s.LastError, "plugins.checksums")
	_, err = m.RunOnce(context.Background(), "unpinned", fault("echo"), host.RunOptions{})
	require.NoError(t, err, "the file runs under its own, unpinned name")
}
