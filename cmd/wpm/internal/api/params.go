package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// maxMemoryLimitMB is the largest memory limit, in MB, a caller may ask a
// one-shot for when oneShot.memoryLimitMB sets none: 1 PiB, more than any
// machine has, and far from overflowing the byte counts built from it.
const maxMemoryLimitMB = 1 << 30

// memoryLimitCap returns the largest memory limit a caller may ask for,
// and where that maximum comes from.
func (s *Server) memoryLimitCap() (maxMB int64, from string) {
	if s.opts.OneShotMemoryLimitMB > 0 {
		return int64(s.opts.OneShotMemoryLimitMB), "oneShot.memoryLimitMB, the most a caller may ask for"
	}
	return maxMemoryLimitMB, "1 PiB"
}

// memoryLimitMB checks n, a one-shot memory limit asked for as what (a
// query parameter or a field), and returns it.
func (s *Server) memoryLimitMB(what string, n int64) (int, error) {
	if maxMB, _ := s.memoryLimitCap(); n < 1 || n > maxMB {
		return 0, s.badMemoryLimit(what, strconv.FormatInt(n, 10))
	}
	return int(n), nil
}

// badMemoryLimit is the error of a memory limit asked for as what that is
// not a whole number of MB in range; got shows what the caller sent.
func (s *Server) badMemoryLimit(what, got string) error {
	maxMB, from := s.memoryLimitCap()
	return badRequest(fmt.Sprintf("%s must be a whole number of MB from 1 to %d (%s), got %s", what, maxMB, from, got))
}

// maxEcho is how many characters of a caller's value an error message
// repeats; the rest is cut and marked with "…".
const maxEcho = 64

// clip cuts s, a value a caller sent, to maxEcho characters for a message.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxEcho {
		return s
	}
	runes := []rune(s)
	return string(runes[:maxEcho]) + "…"
}

// clipName cuts every copy of name, a value the caller sent, in msg, a
// message made elsewhere (the host's "no pool %q" repeats the whole name).
func clipName(msg, name string) string {
	if name == clip(name) {
		return msg
	}
	msg = strings.ReplaceAll(msg, strconv.Quote(name), strconv.Quote(clip(name)))
	return strings.ReplaceAll(msg, name, clip(name))
}

// routeRun is the route of one-shot runs.
const routeRun = "/v1/plugins/:plugin/run"

// routeExampleOneShot is the route of the seed's one-shot runs.
const routeExampleOneShot = "/example/oneShot"

// routePoolTasks is the route of pool tasks.
const routePoolTasks = "/v1/pools/:pool/tasks"

// queryParams are the query parameters each route takes; a route not
// listed takes none.
var queryParams = map[string][]string{
	routeRun:            {"memoryLimitMB", "timeout", "async", "callbackUrl", "delay", "runAt", "priority"},
	routePoolTasks:      {"async", "callbackUrl", "delay", "runAt", "priority"},
	"/example/pool":     {"async", "callbackUrl", "delay", "runAt", "priority"},
	routeExampleOneShot: {"async", "callbackUrl", "delay", "runAt", "priority"},
	routeTasks:          {"state", "pool", "plugin", "schedule", "limit", "cursor"},
	routeTask:           {"wait"},
}

// runAt reads an asynchronous submit's delay (a Go duration, like 90s) or
// runAt (RFC 3339), at most one of them, and returns when the task is due;
// zero when neither is given. A runAt in the past is due now; a delay that
// is negative, or either beyond maxDelay (async.maxDelay) from now, is 400
// naming the parameter.
func runAt(c echo.Context, maxDelay time.Duration) (time.Time, error) {
	delay, at := c.QueryParam("delay"), c.QueryParam("runAt")
	now := time.Now()
	switch {
	case delay != "" && at != "":
		return time.Time{}, badRequest("query parameters delay and runAt go one at a time; give one of them")
	case delay != "":
		d, err := time.ParseDuration(delay)
		if err != nil || d < 0 || d > maxDelay {
			return time.Time{}, badRequest(fmt.Sprintf("query parameter delay must be a Go duration from 0 to %s (async.maxDelay), like 90s or 2h, got %q", maxDelay, clip(delay)))
		}
		return now.Add(d), nil
	case at != "":
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return time.Time{}, badRequest(fmt.Sprintf("query parameter runAt must be an RFC 3339 time, like 2030-01-02T15:04:05Z, got %q", clip(at)))
		}
		if t.Sub(now) > maxDelay {
			return time.Time{}, badRequest(fmt.Sprintf("query parameter runAt is more than %s (async.maxDelay) from now, got %q", maxDelay, clip(at)))
		}
		return t, nil
	}
	return time.Time{}, nil
}

// checkQuery refuses a query parameter the route does not take, or one
// given twice, with 400 bad_request naming the known ones: a misspelled
// memorylimitmb would otherwise run with no limit.
func (s *Server) checkQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		known := queryParams[c.Path()]
		for name, values := range c.QueryParams() {
			if !slices.Contains(known, name) {
				return badRequest(unknownParam(name, known))
			}
			if len(values) > 1 {
				return badRequest(fmt.Sprintf("query parameter %s is given %d times; give it once", name, len(values)))
			}
		}
		return next(c)
	}
}

// unknownParam says that the query parameter name is not one of known.
func unknownParam(name string, known []string) string {
	msg := fmt.Sprintf("unknown query parameter %q", clip(name))
	if len(known) == 0 {
		return msg + "; this endpoint takes none"
	}
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return msg + fmt.Sprintf(" (names are case-sensitive: did you mean %s?)", k)
		}
	}
	return msg + "; this endpoint takes " + strings.Join(known, ", ")
}

// decodePathParams decodes percent-encoded path parameters in place
// (/v1/pools/%43PU/tasks names the pool CPU): when a path is not in Go's
// default encoding, echo routes on the raw path and hands its parameters
// on encoded.
func (s *Server) decodePathParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().URL.RawPath == "" {
			return next(c) // routed on the decoded path
		}
		values := c.ParamValues()
		for i, v := range values {
			decoded, err := url.PathUnescape(v)
			if err != nil {
				return badRequest(fmt.Sprintf("the path holds %q, which is not valid percent-encoding; encode %% as %%25", clip(v)))
			}
			values[i] = decoded
		}
		c.SetParamValues(values...)
		return next(c)
	}
}
