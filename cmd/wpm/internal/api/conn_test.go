package api_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawConn is a client connection written to by hand, to send requests
// that stall or never end.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

// dial opens a connection to s. Every read on it fails after 10 s, so a
// test waiting for an answer that never comes fails instead of hanging.
func (s *server) dial(t *testing.T) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	return &rawConn{Conn: conn, r: bufio.NewReader(conn)}
}

// send writes a request's head (and as much body as given).
func (c *rawConn) send(t *testing.T, head string) {
	t.Helper()
	_, err := io.WriteString(c, strings.ReplaceAll(head, "\n", "\r\n"))
	require.NoError(t, err)
}

// answer reads one response and decodes its JSON body.
func (c *rawConn) answer(t *testing.T) (answer, *http.Response) {
	t.Helper()
	resp, err := http.ReadResponse(c.r, nil)
	require.NoError(t, err, "no answer")
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	require.NoError(t, json.Unmarshal(raw, &a.Body), "not JSON: %s", raw)
	return a, resp
}

// requireClosed waits for the server to close the connection.
func (c *rawConn) requireClosed(t *testing.T) {
	t.Helper()
	_, err := c.r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the server keeps the connection open")
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// A body that stalls is answered 400 after http.readTimeout, and its
// connection is closed.
func TestAPI_slowBody_readTimeout(t *testing.T) {
	s := newServer(t, withConnLimits(300*time.Millisecond, time.Minute, 16))
	c := s.dial(t)
	c.send(t, "POST /v1/pools/CPU/tasks HTTP/1.1\nHost: wpm\nContent-Type: application/json\nContent-Length: 100\n\n{\"dura")
	a, resp := c.answer(t)
	requireError(t, a, http.StatusBadRequest, "bad_request")
	assert.Contains(t, a.Raw, "http.readTimeout")
	assert.True(t, resp.Close, "the answer ends the connection")
	c.requireClosed(t)
	s.requireStillServes(t)
}

// Idle keep-alive connections are closed after http.idleTimeout, and their
// file descriptors with them.
func TestAPI_idleConns_closed(t *testing.T) {
	s := newServer(t, withConnLimits(time.Minute, 200*time.Millisecond, 256))
	s.requireStillServes(t) // workers and the client's pool are up
	http.DefaultClient.CloseIdleConnections()
	before := openFDs(t)
	conns := make([]*rawConn, 50)
	for i := range conns {
		conns[i] = s.dial(t)
		conns[i].send(t, "GET /healthz HTTP/1.1\nHost: wpm\n\n")
		a, resp := conns[i].answer(t)
		require.Equal(t, http.StatusOK, a.Status)
		require.False(t, resp.Close, "a keep-alive connection")
	}
	for _, c := range conns {
		c.requireClosed(t)
		c.Close()
	}
	require.Eventually(t, func() bool { return openFDs(t) <= before }, 5*time.Second, 5*time.Millisecond,
		"the idle connections' descriptors stay open")
}

// At most http.maxConns connections are served at once; the next waits
// until one closes.
func TestAPI_maxConns(t *testing.T) {
	s := newServer(t, withConnLimits(time.Minute, time.Minute, 2))
	held := []*rawConn{s.dial(t), s.dial(t)}
	for _, c := range held {
		c.send(t, "GET /healthz HTTP/1.1\nHost: wpm\n\n")
		a, _ := c.answer(t)
		require.Equal(t, http.StatusOK, a.Status)
	}
	waiting := s.dial(t)
	waiting.send(t, "GET /healthz HTTP/1.1\nHost: wpm\n\n")
	require.NoError(t, waiting.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err := waiting.r.ReadByte()
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "a third connection was served while two were open: %v", err)

	require.NoError(t, held[0].Close())
	require.NoError(t, waiting.SetReadDeadline(time.Now().Add(10*time.Second)))
	a, _ := waiting.answer(t)
	assert.Equal(t, http.StatusOK, a.Status, "served once a place is free")
}

// With auth on, a request without the token is answered 401 at once, body
// or no body, and its connection is closed.
func TestAPI_auth_answersBeforeBody(t *testing.T) {
	s := newServer(t, withAuth("t0ken", false))
	c := s.dial(t)
	c.send(t, "POST /v1/pools/CPU/tasks HTTP/1.1\nHost: wpm\nContent-Type: application/json\nContent-Length: 1000\n\n{")
	a, resp := c.answer(t)
	requireError(t, a, http.StatusUnauthorized, "unauthorized")
	assert.True(t, resp.Close, "the answer ends the connection")
	c.requireClosed(t)
}
