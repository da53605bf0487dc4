package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"strings"

	"github.com/labstack/echo/v4"
)

// Routes that answer without a token even when one is configured: probes
// must work for whoever runs the process.
const (
	routeHealthz = "/healthz"
	routeReadyz  = "/readyz"
	routeMetrics = "/metrics"
	// The dashboard's page and files hold no data: the page asks for the
	// token and sends it with its API requests.
	routeUI     = "/ui"
	routeUIPage = "/ui/"
	routeUIFile = "/ui/:file"
	routeUITask = "/ui/tasks/:id"
)

// authenticate refuses a request without the configured bearer token with
// 401 unauthorized. /healthz and /readyz are always open; /metrics is open
// unless Options.MetricsAuth is set. Tokens are compared in constant time.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.needsToken(c.Path()) {
			return next(c)
		}
		if err := s.checkToken(c); err != nil {
			return err
		}
		return next(c)
	}
}

// checkToken returns nil when auth is off or c's request carries the
// configured token, else the 401 error to answer.
func (s *Server) checkToken(c echo.Context) error {
	if s.tokenSum == nil {
		return nil
	}
	token, ok := bearerToken(c.Request().Header.Get(echo.HeaderAuthorization))
	if !ok {
		return &Error{Code: codeUnauthorized, Message: "this endpoint needs a bearer token: send the header Authorization: Bearer <http.authToken>"}
	}
	// Hashing first makes the comparison's time independent of the
	// token's length as well as of its content.
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], s.tokenSum) != 1 {
		return &Error{Code: codeUnauthorized, Message: "the bearer token is wrong: send the token set in http.authToken (or WPM_HTTP_AUTHTOKEN)"}
	}
	return nil
}

// needsToken says whether the route with this path needs the token. An
// unknown path needs it too, so that without a token every answer but the
// probes' is 401 and says nothing about the API.
func (s *Server) needsToken(route string) bool {
	switch route {
	case routeHealthz, routeReadyz, routeUI, routeUIPage, routeUIFile, routeUITask:
		return false
	case routeMetrics:
		return s.opts.MetricsAuth
	}
	return true
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Loopback reports whether addr, an address a listener is bound to, can
// only be reached from this machine. An unspecified address (0.0.0.0,
// [::]) listens on every interface and is not loopback.
func Loopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
