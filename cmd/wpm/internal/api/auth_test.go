package api_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
)

// decode fills a.Body from a.Raw.
func decode(t *testing.T, a answer) answer {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(a.Raw), &a.Body), "not JSON: %s", a.Raw)
	return a
}

func TestAPI_auth_off(t *testing.T) {
	s := newServer(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/pools/CPU/tasks", `{"duration": 1}`},
		{"POST", "/example/pool", `{"poolName": "CPU", "workerTask": {"duration": 1}}`},
		{"GET", "/v1/pools", ""},
		{"GET", "/v1/plugins", ""},
		{"GET", "/metrics", ""},
		{"GET", "/v1/openapi.json", ""},
		{"GET", "/healthz", ""},
		{"GET", "/readyz", ""},
	} {
		a := s.send(t, c.method, c.path, strings.NewReader(c.body), "")
		assert.Equal(t, http.StatusOK, a.Status, "%s %s: %s", c.method, c.path, a.Raw)
		// A token sent to a server without one is ignored.
		a = s.send(t, c.method, c.path, strings.NewReader(c.body), "Bearer whatever")
		assert.Equal(t, http.StatusOK, a.Status, "%s %s: %s", c.method, c.path, a.Raw)
	}
}

func TestAPI_auth_on(t *testing.T) {
	const token = "correct horse battery staple"
	s := newServer(t, withAuth(token, false))
	protected := []struct{ method, path, body string }{
		{"POST", "/v1/pools/CPU/tasks", `{"duration": 1}`},
		{"POST", "/v1/plugins/cpuload/run", `{"duration": 1}`},
		{"POST", "/example/pool", `{"poolName": "CPU", "workerTask": {"duration": 1}}`},
		{"POST", "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {"duration": 1}}`},
		{"GET", "/v1/pools", ""},
		{"GET", "/v1/pools/CPU", ""},
		{"GET", "/v1/plugins", ""},
		{"GET", "/v1/openapi.json", ""},
		{"GET", "/v1/openapi.yaml", ""},
	}
	for _, c := range protected {
		for name, authz := range map[string]string{
			"missing":      "",
			"wrong":        "Bearer correct horse battery stapler",
			"prefix":       "Bearer correct",
			"empty":        "Bearer ",
			"other scheme": "Basic " + token,
			"no scheme":    token,
		} {
			a := s.send(t, c.method, c.path, strings.NewReader(c.body), authz)
			require.Equal(t, http.StatusUnauthorized, a.Status, "%s %s, token %s: %s", c.method, c.path, name, a.Raw)
			assert.Equal(t, `Bearer realm="wpm"`, a.Header.Get("WWW-Authenticate"))
			assert.Contains(t, a.Raw, `"code":"unauthorized"`)
			assert.Contains(t, a.Raw, `"ok":false`)
		}
		a := s.send(t, c.method, c.path, strings.NewReader(c.body), "Bearer "+token)
		assert.Equal(t, http.StatusOK, a.Status, "%s %s: %s", c.method, c.path, a.Raw)
		a = s.send(t, c.method, c.path, strings.NewReader(c.body), "bearer "+token)
		assert.Equal(t, http.StatusOK, a.Status, "the scheme is case-insensitive: %s", a.Raw)
	}
	// The probes, and /metrics unless metricsAuth, need no token.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		a := s.send(t, "GET", path, strings.NewReader(""), "")
		assert.Equal(t, http.StatusOK, a.Status, "%s: %s", path, a.Raw)
	}
	// An unknown path says nothing without the token.
	a := s.send(t, "GET", "/nope", strings.NewReader(""), "")
	assert.Equal(t, http.StatusUnauthorized, a.Status)
	a = s.send(t, "GET", "/nope", strings.NewReader(""), "Bearer "+token)
	assert.Equal(t, http.StatusNotFound, a.Status)
	s.requireStillServes(t)
}

func TestAPI_auth_metrics(t *testing.T) {
	const token = "t0ken"
	s := newServer(t, withAuth(token, true))
	a := s.send(t, "GET", "/metrics", strings.NewReader(""), "")
	requireError(t, decode(t, a), http.StatusUnauthorized, "unauthorized")
	a = s.send(t, "GET", "/metrics", strings.NewReader(""), "Bearer nope")
	assert.Equal(t, http.StatusUnauthorized, a.Status)
	a = s.send(t, "GET", "/metrics", strings.NewReader(""), "Bearer "+token)
	assert.Equal(t, http.StatusOK, a.Status)
	assert.Contains(t, a.Raw, "wpm_pool_workers")
	for _, path := range []string{"/healthz", "/readyz"} {
		a := s.send(t, "GET", path, strings.NewReader(""), "")
		assert.Equal(t, http.StatusOK, a.Status, path)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:3000": true,
		"127.0.0.2:3000": true,
		"[::1]:3000":     true,
		"0.0.0.0:3000":   false,
		"[::]:3000":      false,
		"10.1.2.3:3000":  false,
		"[fe80::1]:80":   false,
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err)
		assert.Equal(t, want, api.Loopback(tcp), addr)
	}
	assert.True(t, api.Loopback(&net.UnixAddr{Name: "/tmp/x.sock", Net: "unix"}))
}
