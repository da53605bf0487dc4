package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
)

var pluginDir string

func TestMain(m *testing.M) {
	os.Exit(testkit.RunMain(m, func(root string) error {
		pluginDir = filepath.Join(root, "plugins")
		return testkit.BuildPlugins(pluginDir)
	}))
}

// server is a running API over real workers.
type server struct {
	*httptest.Server
	mgr *host.Manager
	api *api.Server
}

const bodyLimit = 64 << 10

// newServer serves the API over pools CPU (cpuload), MEM (memusage) and M
// (misbehave: one worker, a queue of one, 1.5 s task timeout).
func newServer(t *testing.T) *server {
	t.Helper()
	cfg := host.DefaultConfig()
	cfg.PluginDir = pluginDir
	cfg.OneShot.MaxConcurrent = 2
	cfg.OneShot.MaxWait = 100 * time.Millisecond
	cfg.Pools = []host.PoolConfig{
		{Name: "CPU", Plugin: "cpuload", Workers: 1, QueueLimit: 8},
		{Name: "MEM", Plugin: "memusage", Workers: 1, QueueLimit: 8},
		{Name: "M", Plugin: "misbehave", Workers: 1, QueueLimit: 1, TaskTimeout: 1500 * time.Millisecond},
	}
	mgr, err := host.New(cfg)
	require.NoError(t, err)
	a := api.New(mgr, api.Options{BodyLimitBytes: bodyLimit})
	s := &server{Server: httptest.NewServer(a.Handler()), mgr: mgr, api: a}
	t.Cleanup(func() {
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, mgr.Shutdown(ctx))
		testkit.RequireNoChildren(t)
	})
	return s
}

// answer is a decoded response.
type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (s *server) do(t *testing.T, method, path string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	require.NoError(t, json.Unmarshal(raw, &a.Body), "body is not JSON: %s", raw)
	return a
}

func (s *server) post(t *testing.T, path, body string) answer {
	t.Helper()
	return s.do(t, http.MethodPost, path, strings.NewReader(body))
}

// requireError checks SPEC §3's error shape, status and code.
func requireError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	require.Equal(t, status, a.Status, "body: %s", a.Raw)
	assert.Equal(t, false, a.Body["ok"], a.Raw)
	e, ok := a.Body["error"].(map[string]any)
	require.True(t, ok, "no error object: %s", a.Raw)
	assert.Equal(t, code, e["code"], a.Raw)
	msg, _ := e["message"].(string)
	assert.NotEmpty(t, strings.TrimSpace(msg), "empty message: %s", a.Raw)
}

// requireStillServes checks that the server and its pools still work.
func (s *server) requireStillServes(t *testing.T) {
	t.Helper()
	a := s.do(t, http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, a.Status)
	a = s.post(t, "/v1/pools/CPU/tasks", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	a = s.post(t, "/v1/pools/M/tasks", `{"fault": "echo"}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
}

func bigBody(n int) *bytes.Reader {
	return bytes.NewReader(append(append([]byte(`{"fault":"echo","lines":["`), bytes.Repeat([]byte("x"), n)...), `"]}`...))
}

func childPIDs() []int { return testkit.Children() }
