package main

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

// newStatusServer serves the real API, with token, over pools CPU
// (cpuload, two workers, one task done) and BROKEN, whose plugin exits at
// once every time it is started.
func newStatusServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	testkit.CopyPlugin(t, filepath.Join(binDir, "plugins", "cpuload"), dir, "cpuload")
	testkit.CopyPlugin(t, filepath.Join(binDir, "plugins", "misbehave"), dir, "failstart")
	cfg := host.DefaultConfig()
	cfg.PluginDir = dir
	cfg.Pools = []host.PoolConfig{
		{Name: "CPU", Plugin: "cpuload", Workers: 2, QueueLimit: 8},
		{Name: "BROKEN", Plugin: "failstart", Workers: 1, QueueLimit: 8},
	}
	mgr, err := host.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(api.New(mgr, api.Options{AuthToken: token}).Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, mgr.Shutdown(ctx))
		testkit.RequireNoChildren(t)
	})
	_, err = mgr.Submit(context.Background(), "CPU", []byte(`{"duration": 1}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p, err := mgr.Pool("CPU")
		return err == nil && p.Ready == 2
	}, 10*time.Second, 5*time.Millisecond)
	return srv
}

// runStatusCmd runs wpm status in-process with environ and args.
func runStatusCmd(environ []string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"status"}, args...), env{stdout: &stdout, stderr: &stderr, environ: environ})
	return code, stdout.String(), stderr.String()
}

func TestStatus_table(t *testing.T) {
	srv := newStatusServer(t, "tok")
	code, out, errOut := runStatusCmd(nil, "--url", srv.URL, "--token", "tok")
	require.Equal(t, 0, code, errOut)
	t.Log("\n" + out)
	assert.Regexp(t, `(?m)^POOL\s+PLUGIN\s+READY\s+QUEUED\s+OLDEST\s+RUNNING\s+HEALTH$`, out)
	assert.Regexp(t, `(?m)^CPU\s+cpuload\s+2/2\s+0\s+-\s+0\s+ok$`, out)
	assert.Regexp(t, `(?m)^BROKEN\s+failstart\s+0/1\s+0\s+-\s+0\s+down$`, out)
	assert.Regexp(t, `(?m)^  SLOT\s+PID\s+STATE\s+RUNNING\s+TASKS\s+RSS MB\s+UPTIME\s+RESTARTS\s+LAST EXIT$`, out)
	// CPU's workers: one did the task; both are live, with memory and uptime.
	assert.Regexp(t, `(?m)^  [01]\s+\d+\s+idle\s+0\s+1\s+\d+\.\d\s+\S+\s+0\s+-$`, out)
	assert.Regexp(t, `(?m)^  [01]\s+\d+\s+idle\s+0\s+0\s+\d+\.\d\s+\S+\s+0\s+-$`, out)
	// BROKEN's slot has no process and says why.
	assert.Regexp(t, `(?m)^  last start failure \(\d+s ago\):\n    .*failstart`, out)
	assert.Regexp(t, `(?m)^  0\s+-\s+(starting|stopping)\s+0\s+0\s+0\.0\s+-\s+[1-9]\d*\s+start_failed$`, out)
}

func TestStatus_tokenSources(t *testing.T) {
	srv := newStatusServer(t, "from-env")
	code, out, errOut := runStatusCmd([]string{"WPM_HTTP_AUTHTOKEN=from-env"}, "--url", srv.URL)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "cpuload")

	// No --url: the address and the token come from the config file.
	file := filepath.Join(t.TempDir(), "wpm.yaml")
	addr := srv.Listener.Addr().String()
	require.NoError(t, os.WriteFile(file, []byte("http:\n  addr: \""+addr+"\"\n  authToken: from-env\n"), 0o600))
	code, out, errOut = runStatusCmd(nil, "--config", file)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "cpuload")

	// WPM_HTTP_ADDR overrides the file's address, as for wpm serve (status
	// has no --addr: that is serve's address to listen on).
	code, _, errOut = runStatusCmd([]string{"WPM_HTTP_ADDR=127.0.0.1:1"}, "--config", file)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "127.0.0.1:1")
}

func TestStatus_errors(t *testing.T) {
	srv := newStatusServer(t, "right")
	code, _, errOut := runStatusCmd(nil, "--url", srv.URL, "--token", "wrong")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "401 unauthorized")
	assert.Contains(t, errOut, "--token")

	code, _, errOut = runStatusCmd(nil, "--url", srv.URL)
	assert.Equal(t, 1, code, "no token")
	assert.Contains(t, errOut, "unauthorized")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	code, _, errOut = runStatusCmd(nil, "--url", closed, "--token", "x")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "is wpm serve running")

	code, _, errOut = runStatusCmd(nil, "--url", srv.URL, "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "unexpected argument")

	code, _, errOut = runStatusCmd(nil, "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "missing.yaml")

	code, out, _ := runStatusCmd(nil, "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Usage: wpm status")
	assert.Contains(t, out, "--token")
}

func TestStatus_addrURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:3000": "http://127.0.0.1:3000",
		":3000":          "http://127.0.0.1:3000",
		"0.0.0.0:3999":   "http://127.0.0.1:3999",
		"[::]:3000":      "http://[::1]:3000",
		"example.org:80": "http://example.org:80",
		"nonsense":       defaultStatusURL,
	} {
		assert.Equal(t, want, addrURL(addr), addr)
	}
	assert.Equal(t, "http://h:1", normalizeURL("h:1/"))
	assert.Equal(t, "https://h", normalizeURL("https://h/"))
}

func TestStatus_age(t *testing.T) {
	for ms, want := range map[float64]string{0: "-", 12.3: "12ms", 1234: "1.2s", 61_500: "1m2s", 3_723_000: "1h2m3s"} {
		assert.Equal(t, want, age(ms), ms)
	}
}
