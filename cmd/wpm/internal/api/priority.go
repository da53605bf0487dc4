package api

import (
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// ctxPriority is the task's priority, read by checkPriority.
const ctxPriority = "wpm.priority"

// checkPriority reads a task route's ?priority= (high, normal or low;
// normal when absent) for the handler (priorityOf), and refuses any other
// value with 400 naming the parameter.
func (s *Server) checkPriority(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := host.ParsePriority(c.QueryParam("priority"))
		if err != nil {
			return badRequest(fmt.Sprintf("query parameter priority must be one of high, normal, low, got %q", clip(c.QueryParam("priority"))))
		}
		c.Set(ctxPriority, p)
		return next(c)
	}
}

// priorityOf is the task's priority; normal on a route checkPriority does
// not read.
func priorityOf(c echo.Context) host.TaskPriority {
	if p, ok := c.Get(ctxPriority).(host.TaskPriority); ok {
		return p
	}
	return host.PriorityNormal
}

// prioritized is req with the request's priority.
func prioritized(c echo.Context, req queue.Request) queue.Request {
	req.Priority = priorityOf(c)
	return req
}
