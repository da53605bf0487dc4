package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A one-shot's memory limit must be a whole number of MB no higher than
// oneShot.memoryLimitMB; values that used to overflow into a malformed
// GOMEMLIMIT (502) are 400s naming the parameter and the range.
func TestAPI_memoryLimit_range(t *testing.T) {
	s := newServer(t, withOneShotMemoryLimit(512))
	for _, v := range []string{"17592186044416", "9223372036854775807", "99999999999999999999", "513", "0", "1.5"} {
		a := s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB="+v, `{"duration": 1}`)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, a.Raw, "memoryLimitMB must be a whole number of MB from 1 to 512 (oneShot.memoryLimitMB", v)

		a = s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {"duration": 1}, "workerMemoryLimit": `+v+`}`)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, a.Raw, "workerMemoryLimit", v)
	}
	a := s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {}, "workerMemoryLimit": 513}`)
	assert.Contains(t, a.Raw, "from 1 to 512", "the message names the maximum")
	a = s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {}, "workerMemoryLimit": 1.5}`)
	assert.Contains(t, a.Raw, `"workerMemoryLimit\" must be a whole number, got number 1.5`)

	a = s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB=512", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	a = s.post(t, "/example/oneShot", `{"workerScript": "cpuload", "workerTask": {"duration": 1}, "workerMemoryLimit": 512}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
}

// Without a configured maximum, the limit still has a range.
func TestAPI_memoryLimit_rangeWithoutMaximum(t *testing.T) {
	s := newServer(t, withOneShotMemoryLimit(0))
	a := s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB=17592186044416", `{"duration": 1}`)
	requireError(t, a, http.StatusBadRequest, "bad_request")
	assert.Contains(t, a.Raw, "from 1 to 1073741824 (1 PiB)")
	a = s.post(t, "/v1/plugins/cpuload/run?memoryLimitMB=4097", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
}

// A query parameter an endpoint does not take is a 400 naming the ones it
// takes: a misspelled memorylimitmb used to run with no limit at all.
func TestAPI_unknownQueryParam(t *testing.T) {
	s := newServer(t)
	for path, want := range map[string]string{
		"/v1/plugins/cpuload/run?memorylimitmb=1":                 `did you mean memoryLimitMB?`,
		"/v1/plugins/cpuload/run?timeout=1s&memory=1":             `unknown query parameter \"memory\"; this endpoint takes memoryLimitMB, timeout, async, callbackUrl`,
		"/v1/plugins/cpuload/run?memoryLimitMB=1&memoryLimitMB=2": `memoryLimitMB is given 2 times`,
		"/v1/pools/CPU/tasks?timeout=1s":                          `unknown query parameter \"timeout\"; this endpoint takes async, callbackUrl`,
		"/example/pool?poolName=CPU":                              `this endpoint takes async, callbackUrl`,
	} {
		a := s.post(t, path, `{"duration": 1}`)
		requireError(t, a, http.StatusBadRequest, "bad_request")
		assert.Contains(t, a.Raw, want, path)
	}
	a := s.do(t, http.MethodGet, "/v1/pools?verbose=1", nil)
	requireError(t, a, http.StatusBadRequest, "bad_request")
	assert.Contains(t, a.Raw, "this endpoint takes none")
	a = s.do(t, http.MethodGet, "/v1/tasks?State=queued", nil)
	assert.Contains(t, a.Raw, "did you mean state?")
	requireError(t, a, http.StatusBadRequest, "bad_request")
	// The probes take what monitoring systems add.
	a = s.do(t, http.MethodGet, "/readyz?probe=lb", nil)
	assert.Equal(t, http.StatusOK, a.Status, a.Raw)
}

// Percent-encoded names are decoded: /v1/pools/%43PU/tasks is pool CPU.
func TestAPI_percentEncodedNames(t *testing.T) {
	s := newServer(t)
	a := s.post(t, "/v1/pools/%43PU/tasks", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "CPU", a.Body["pool"])
	a = s.do(t, http.MethodGet, "/v1/pools/%43%50%55", nil)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	a = s.post(t, "/v1/plugins/%63puload/run", `{"duration": 1}`)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Equal(t, "cpuload", a.Body["plugin"])
	// Decoded, a name still can not leave the plugins directory.
	a = s.post(t, "/v1/plugins/..%2Fcpuload/run", `{}`)
	requireError(t, a, http.StatusNotFound, "unknown_plugin")
	// A name with a literal %, sent encoded, is that name.
	a = s.post(t, "/v1/pools/C%25PU/tasks", `{}`)
	requireError(t, a, http.StatusNotFound, "unknown_pool")
	assert.Contains(t, a.Raw, `no pool \"C%PU\"`)
}

// Messages repeat at most 64 characters of a name the caller sent.
func TestAPI_longNamesClipped(t *testing.T) {
	s := newServer(t)
	long := strings.Repeat("n", 5000)
	clipped := strings.Repeat("n", 64) + "…"
	for _, c := range []struct{ method, path, body, code string }{
		{"POST", "/v1/pools/" + long + "/tasks", `{}`, "unknown_pool"},
		{"GET", "/v1/pools/" + long, "", "unknown_pool"},
		{"POST", "/v1/plugins/" + long + "/run", `{}`, "unknown_plugin"},
		{"POST", "/example/pool", `{"poolName": "` + long + `", "workerTask": {}}`, "unknown_pool"},
		{"POST", "/example/oneShot", `{"workerScript": "` + long + `", "workerTask": {}}`, "unknown_plugin"},
		{"POST", "/example/pool", `{"` + long + `": 1}`, "bad_request"},
		{"POST", "/v1/plugins/cpuload/run?" + long + "=1", `{}`, "bad_request"},
		{"POST", "/v1/plugins/cpuload/run?timeout=" + long, `{}`, "bad_request"},
		{"POST", "/v1/plugins/cpuload/run?memoryLimitMB=" + long, `{}`, "bad_request"},
	} {
		a := s.do(t, c.method, c.path, strings.NewReader(c.body))
		msg := a.Body["error"].(map[string]any)["message"].(string)
		what := c.method + " " + c.path[:min(len(c.path), 24)]
		assert.Equal(t, c.code, a.Body["error"].(map[string]any)["code"], what)
		assert.Contains(t, msg, clipped, what)
		assert.Less(t, len(msg), 400, what)
	}
}

// With auth on, the open /readyz says which pools are not ready but not
// why: a start error holds paths and a plugin's output. With the token it
// says why.
func TestAPI_readyz_authHidesDetails(t *testing.T) {
	const token = "t0ken"
	s := newBrokenServer(t, withAuth(token, false))
	require.Eventually(t, func() bool { p, _ := s.mgr.Pool("BROKEN"); return p.LastError != "" }, 10*time.Second, 5*time.Millisecond)

	a := decode(t, s.send(t, http.MethodGet, "/readyz", nil, ""))
	requireError(t, a, http.StatusServiceUnavailable, "not_ready")
	assert.Equal(t, "no ready worker", a.Body["pools"].(map[string]any)["BROKEN"])
	assert.NotContains(t, a.Raw, "last error")
	assert.NotContains(t, a.Raw, pluginDir)
	assert.NotContains(t, a.Raw, "failstart")

	a = decode(t, s.send(t, http.MethodGet, "/readyz", nil, "Bearer "+token))
	requireError(t, a, http.StatusServiceUnavailable, "not_ready")
	assert.Contains(t, a.Body["pools"].(map[string]any)["BROKEN"], "last error")
}

// Query parameters on no route or a wrong method do not change the answer.
func TestAPI_unknownQueryParam_noRoute(t *testing.T) {
	s := newServer(t)
	requireError(t, s.do(t, http.MethodGet, "/nope?x=1", nil), http.StatusNotFound, "not_found")
	requireError(t, s.do(t, http.MethodGet, "/example/pool?x=1", nil), http.StatusMethodNotAllowed, "method_not_allowed")
}
