package api

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/host"
)

// DefaultInflightBodyLimitBytes is Options.InflightBodyLimitBytes's default.
const DefaultInflightBodyLimitBytes = 256 << 20

// codeOverloaded is the code of a request refused because wpm holds as
// many request bodies as Options.InflightBodyLimitBytes allows.
const codeOverloaded host.ErrorCode = "overloaded"

// ctxReservation is the echo context key of a request's *reservation.
const ctxReservation = "wpm.reservation"

// drainAfterBytes is how many body bytes must have been held at once for
// the budget's drain to hand freed memory back to the OS.
const drainAfterBytes = 64 << 20

// bodyBudget bounds the request-body bytes held at once by the requests
// being served. It is safe for concurrent use.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
	// peak is the most held at once since the budget last drained.
	peak atomic.Int64
	// drained, when not nil, runs (in its own goroutine, one at a time)
	// when nothing is held any more after at least drainAfterBytes were.
	drained  func()
	draining atomic.Bool
}

// take reserves n bytes, or reports false without waiting when that would
// go over the limit.
func (b *bodyBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			b.raisePeak(used + n)
			return true
		}
	}
}

func (b *bodyBudget) raisePeak(held int64) {
	for {
		p := b.peak.Load()
		if held <= p || b.peak.CompareAndSwap(p, held) {
			return
		}
	}
}

// give returns n reserved bytes.
func (b *bodyBudget) give(n int64) {
	if b.used.Add(-n) != 0 || b.peak.Load() < drainAfterBytes || b.drained == nil {
		return
	}
	b.peak.Store(0)
	if b.draining.CompareAndSwap(false, true) {
		go func() {
			defer b.draining.Store(false)
			b.drained()
		}()
	}
}

// reservation is one request's share of the budget.
type reservation struct {
	budget *bodyBudget
	// copies is how many copies of the body are held (see heldCopies).
	copies int64
	mu     sync.Mutex
	n      int64
}

// shrink gives back what the request reserved beyond copies of size, the
// bytes its body turned out to take.
func (r *reservation) shrink(size int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	size *= r.copies
	if size < r.n {
		r.budget.give(r.n - size)
		r.n = size
	}
}

// release gives back the whole reservation.
func (r *reservation) release() { r.shrink(0) }

// heldCopies is how many copies of a request's body on route wpm holds
// while its task runs: one (the body read, which the host hands to the
// worker as it is), but two for a one-shot, whose input net/rpc's gob
// encoder copies into a buffer of its own that lives as long as the
// one-shot process. Measured with 9.5 MB bodies: a one-shot held 2.07
// times its body, a pool task one.
func heldCopies(route string) int64 {
	switch route {
	case routeRun, routeExampleOneShot:
		return 2
	}
	return 1
}

// InflightBodyBytes returns the bytes reserved from the budget by
// requests being served now: their bodies and the copies held of them.
// Safe for concurrent use.
func (s *Server) InflightBodyBytes() int64 { return s.budget.used.Load() }

// reserveBody wraps the routes that take a task: before the body is read,
// the request reserves its Content-Length (the body limit when the length
// is not known, given back once the body is read), times the copies held
// of it (heldCopies), from the budget, and
// keeps it until the handler returns, which is when its task has ended
// and the host holds its input no more. A request the budget can not hold
// gets 503 overloaded, with Retry-After, once its body has been read and
// dropped (see discardBody), holding none of it.
func (s *Server) reserveBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		n := c.Request().ContentLength
		switch {
		case n == 0:
			return next(c)
		case n > s.opts.BodyLimitBytes:
			return &http.MaxBytesError{Limit: s.opts.BodyLimitBytes}
		case n < 0:
			n = s.opts.BodyLimitBytes
		}
		// At most the whole budget, so that one body of any size allowed
		// still gets in when nothing else is held.
		copies := heldCopies(c.Path())
		n = min(n*copies, s.budget.limit)
		if !s.budget.take(n) {
			s.discardBody(c)
			return &Error{Code: codeOverloaded, Message: fmt.Sprintf(
				"wpm holds as many request bodies as http.inflightBodyLimit (%d bytes) allows; retry after Retry-After seconds, send smaller tasks, or raise http.inflightBodyLimit",
				s.budget.limit)}
		}
		r := &reservation{budget: &s.budget, copies: copies, n: n}
		defer r.release()
		c.Set(ctxReservation, r)
		return next(c)
	}
}

// discardBody reads and drops the body of a request about to be refused
// unread, up to the body limit, so that the client, likely still sending
// it, reads the answer: Go's server closes a connection with more than
// 256 KiB of body unread, and the kernel answers the bytes the client
// still sends to a closed socket with a reset, which can destroy the
// answer before the client reads it. Dropping costs no memory (a small
// buffer) and is bounded by Options.ReadTimeout like any body. A body
// that fails or runs over the limit closes the connection as before.
func (s *Server) discardBody(c echo.Context) {
	n, err := io.Copy(io.Discard, io.LimitReader(c.Request().Body, s.opts.BodyLimitBytes+1))
	if err != nil || n > s.opts.BodyLimitBytes {
		closeConnection(c)
	}
}

// bodyRead gives back what c's request reserved beyond size bytes.
func bodyRead(c echo.Context, size int) {
	if r, ok := c.Get(ctxReservation).(*reservation); ok {
		r.shrink(int64(size))
	}
}
