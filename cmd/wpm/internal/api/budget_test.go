package api_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Request bodies held at once are bounded by http.inflightBodyLimit: a
// request is charged its Content-Length before its body is read, until its
// task ends; one that does not fit gets 503 overloaded at once, with
// Retry-After.
func TestAPI_inflightBodyLimit(t *testing.T) {
	const limit = 100_000
	s := newServer(t, withInflightBodyLimit(limit))
	body, err := io.ReadAll(bigBody(60_000))
	require.NoError(t, err)

	// A request whose body is on its way holds its length.
	slow := s.dial(t)
	slow.send(t, fmt.Sprintf("POST /v1/pools/M/tasks HTTP/1.1\nHost: wpm\nContent-Type: application/json\nContent-Length: %d\n\n", len(body)))
	_, err = slow.Write(body[:10])
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.api.InflightBodyBytes() == int64(len(body)) }, 5*time.Second, time.Millisecond)

	// Another that would go over the budget is refused without being read.
	a := s.do(t, http.MethodPost, "/v1/pools/CPU/tasks", bigBody(50_000))
	requireError(t, a, http.StatusServiceUnavailable, "overloaded")
	assert.Equal(t, "1", a.Header.Get("Retry-After"))
	assert.Contains(t, a.Raw, "http.inflightBodyLimit")
	// So is one of unknown length: it is charged the body limit.
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/plugins/misbehave/run", io.MultiReader(bigBody(10)))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// Once the first task ends, its bytes are free again.
	_, err = slow.Write(body[10:])
	require.NoError(t, err)
	a, _ = slow.answer(t)
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	require.Eventually(t, func() bool { return s.api.InflightBodyBytes() == 0 }, 5*time.Second, time.Millisecond)
	a = s.do(t, http.MethodPost, "/v1/pools/M/tasks", bigBody(50_000))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	a = s.do(t, http.MethodPost, "/v1/plugins/misbehave/run", io.MultiReader(bigBody(10)))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	assert.Zero(t, s.api.InflightBodyBytes())
	s.requireStillServes(t)
}
