package api

import (
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/netutil"
)

// Defaults of the connection limits in [Options].
const (
	DefaultReadTimeout = 60 * time.Second
	DefaultIdleTimeout = 60 * time.Second
	DefaultMaxConns    = 1024
	// headerTimeout bounds reading a request's headers, unless
	// Options.ReadTimeout is shorter.
	headerTimeout = 10 * time.Second
)

// HTTPServer returns a new http.Server for the API with the configured
// timeouts: a request's headers and body must arrive within ReadTimeout
// (headers within 10 s), and a keep-alive connection idle for IdleTimeout
// is closed. There is no write timeout: a task may run as long as its own
// timeout allows, and the server lifts the read deadline once the body is
// read, so a long task is not cut off by ReadTimeout.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: min(headerTimeout, s.opts.ReadTimeout),
		ReadTimeout:       s.opts.ReadTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
	}
}

// LimitListener wraps ln so that at most Options.MaxConns connections are
// open at once. Further connections wait in the kernel's accept queue,
// costing wpm no file descriptor, until one closes; the read and idle
// timeouts make sure one does.
func (s *Server) LimitListener(ln net.Listener) net.Listener {
	return netutil.LimitListener(ln, s.opts.MaxConns)
}

// closeConnection makes the answer to c the connection's last and stops
// reading from it: whatever body the client still sends is not waited for,
// so the answer goes out at once.
func closeConnection(c echo.Context) {
	c.Response().Header().Set(echo.HeaderConnection, "close")
	// Go's server reads up to 256 KiB of an unread body before it answers
	// a request on a connection it keeps; a deadline in the past makes
	// that read fail at once. Not every ResponseWriter supports it
	// (httptest.ResponseRecorder does not), and then the header alone has
	// to do.
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now())
}

// bodyTimedOut reports whether err is a body read cut off by ReadTimeout.
func bodyTimedOut(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
