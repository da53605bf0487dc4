package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// pausedRetryAfter is the Retry-After, in seconds, of a task refused
// because its pool is paused: a pause is an operator's, not a moment's.
const pausedRetryAfter = "5"

// Routes of pausing and resuming a pool.
const (
	routePausePool  = "/v1/pools/:pool/pause"
	routeResumePool = "/v1/pools/:pool/resume"
)

// poolPaused is the answer of POST /v1/pools/{pool}/pause and /resume.
type poolPaused struct {
	Pool   string `json:"pool"`
	Paused bool   `json:"paused"`
}

// pauseRoutes serves pause and resume.
func (s *Server) pauseRoutes(mw []echo.MiddlewareFunc) {
	s.echo.POST(routePausePool, func(c echo.Context) error { return s.setPaused(c, true) }, mw...)
	s.echo.POST(routeResumePool, func(c echo.Context) error { return s.setPaused(c, false) }, mw...)
}

// setPaused pauses or resumes the pool for the whole cluster (the queue
// keeps the state in NATS, so it needs asynchronous tasks on).
func (s *Server) setPaused(c echo.Context, paused bool) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	pool := c.Param("pool")
	if paused {
		err = e.Pause(c.Request().Context(), pool)
	} else {
		err = e.Resume(c.Request().Context(), pool)
	}
	if err != nil {
		return taskError("", err)
	}
	return c.JSON(http.StatusOK, poolPaused{Pool: pool, Paused: paused})
}
