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
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
	"github.com/wpmdev/wpm/cmd/wpm/internal/events"
	"github.com/wpmdev/wpm/cmd/wpm/internal/metrics"
	"github.com/wpmdev/wpm/cmd/wpm/internal/ui"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/internal/testkit"
	"github.com/wpmdev/wpm/queue"
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
	mgr     *host.Manager
	tasks   *queue.Engine
	api     *api.Server
	metrics *metrics.Metrics
	bus     *events.Bus
	// token is sent as a bearer token by do, when not empty.
	token string
	// seen records the documented responses the server gave.
	seen *seenResponses
	// reloadTo is the config POST /v1/admin/reload applies; nil means the
	// one the server started with.
	reloadTo atomic.Pointer[host.Config]
}

const bodyLimit = 64 << 10

// serverOption changes newServer's host config or API options.
type serverOption func(*host.Config, *api.Options)

// withAuth turns auth on with token; metricsAuth covers /metrics too.
func withAuth(token string, metricsAuth bool) serverOption {
	return func(_ *host.Config, o *api.Options) { o.AuthToken, o.MetricsAuth = token, metricsAuth }
}

// withConnLimits sets the API's read and idle timeouts and connection cap.
func withConnLimits(read, idle time.Duration, maxConns int) serverOption {
	return func(_ *host.Config, o *api.Options) { o.ReadTimeout, o.IdleTimeout, o.MaxConns = read, idle, maxConns }
}

// withInflightBodyLimit sets the budget of request-body bytes held at once.
func withInflightBodyLimit(n int64) serverOption {
	return func(_ *host.Config, o *api.Options) { o.InflightBodyLimitBytes = n }
}

// withOneShotMemoryLimit sets oneShot.memoryLimitMB.
func withOneShotMemoryLimit(mb int) serverOption {
	return func(c *host.Config, _ *api.Options) { c.OneShot.MemoryLimitMB = mb }
}

// newServer serves the API, with metrics, over pools CPU (cpuload), MEM
// (memusage) and M (misbehave: one worker, a queue of one, 1.5 s task
// timeout). Every JSON answer do gets is checked against the OpenAPI
// document.
func newServer(t *testing.T, opts ...serverOption) *server {
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
	bus := events.New(0, 0)
	apiOpts := api.Options{BodyLimitBytes: bodyLimit, Events: bus, UI: ui.Handler()}
	for _, o := range opts {
		o(&cfg, &apiOpts)
	}
	apiOpts.OneShotMemoryLimitMB = cfg.OneShot.MemoryLimitMB
	mx := metrics.New()
	mgr, err := host.New(cfg, host.WithObserver(mx), host.WithEvents(bus.Publish))
	require.NoError(t, err)
	require.NoError(t, mx.WatchPools(mgr))
	apiOpts.Metrics = mx.Handler()
	tasks := startTasks(t, mgr)
	apiOpts.Tasks = tasks
	s := &server{mgr: mgr, tasks: tasks, metrics: mx, bus: bus, token: apiOpts.AuthToken, seen: newSeen()}
	apiOpts.Reload = func() error {
		next := cfg
		if p := s.reloadTo.Load(); p != nil {
			next = *p
		}
		return mgr.Reload(next)
	}
	s.api = api.New(mgr, apiOpts)
	// Served as wpm serves it: with its timeouts and connection cap.
	s.Server = httptest.NewUnstartedServer(nil)
	s.Config = s.api.HTTPServer()
	s.Listener = s.api.LimitListener(s.Listener)
	s.Start()
	t.Cleanup(func() {
		bus.Close() // event streams end, so that Close need not wait for them
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, tasks.Stop(ctx))
		require.NoError(t, mgr.Shutdown(ctx))
		testkit.RequireNoChildren(t)
	})
	return s
}

// startTasks starts an asynchronous-task engine over mgr on an embedded
// NATS server with its store in a temporary directory; newServer stops it.
func startTasks(t *testing.T, mgr *host.Manager) *queue.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := queue.Start(ctx, mgr, queue.Options{StoreDir: t.TempDir(), AckWait: 2 * time.Second, PollInterval: 50 * time.Millisecond, MaxInputBytes: bodyLimit})
	require.NoError(t, err)
	return e
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
	a := s.doRaw(t, method, path, body, s.token)
	require.NoError(t, json.Unmarshal([]byte(a.Raw), &a.Body), "body is not JSON: %s", a.Raw)
	return a
}

// doRaw sends a request with token as bearer token (none if empty), checks
// the answer against the OpenAPI document, and returns it undecoded.
func (s *server) doRaw(t *testing.T, method, path string, body io.Reader, token string) answer {
	t.Helper()
	authorization := ""
	if token != "" {
		authorization = "Bearer " + token
	}
	return s.send(t, method, path, body, authorization)
}

// send makes a request with the given Authorization header (none if
// empty), checks the answer against the OpenAPI document, and returns it
// undecoded.
func (s *server) send(t *testing.T, method, path string, body io.Reader, authorization string) answer {
	t.Helper()
	headers := []string{"Content-Type", "application/json"}
	if authorization != "" {
		headers = append(headers, "Authorization", authorization)
	}
	return s.sendHeaders(t, method, path, body, headers...)
}

// noRedirects is a client that returns a redirect as it is, so that the
// answer checked against the document is the one the route gave.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// sendHeaders makes a request with headers (name, value, ...), checks the
// answer against the OpenAPI document, and returns it undecoded.
func (s *server) sendHeaders(t *testing.T, method, path string, body io.Reader, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := noRedirects.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	checkDocumented(t, s.seen, method, path, a)
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
