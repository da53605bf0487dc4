package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// routeCluster lists the cluster's live hosts.
const routeCluster = "/v1/cluster"

// headerHost names, on a forwarded task's answer, the host that ran it.
const headerHost = "X-Wpm-Host"

// ClusterView is GET /v1/cluster's answer.
type ClusterView struct {
	Hosts []queue.HostInfo `json:"hosts"`
}

func (s *Server) cluster(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ClusterView{Hosts: e.Cluster()})
}

// forwardsPool reports whether a synchronous task of pool goes through
// NATS: on a host of role api always; otherwise when the pool does not run
// here but on another live host. A pool that runs here runs here, queue and
// all: the local path costs no trip through NATS (docs/SCALING.md).
func (s *Server) forwardsPool(pool string) bool {
	switch {
	case s.opts.Tasks == nil:
		return false
	case s.opts.NoWorkers:
		return true
	}
	return !s.mgr.HasPool(pool) && s.opts.Tasks.RunsRemotely(pool)
}

// forward runs a synchronous task on whichever host takes it off the
// queue and answers as if it ran here (in the seed's shape when seed is
// set), naming the host in X-Wpm-Host.
func (s *Server) forward(c echo.Context, req queue.Request, seed bool) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	t, err := e.RunRemote(c.Request().Context(), prioritized(c, req))
	if t.ID != "" {
		c.Set(ctxTaskID, t.ID)
	}
	if t.Host != "" {
		c.Response().Header().Set(headerHost, t.Host)
	}
	if qerr := taskError("", err); qerr != err {
		return qerr // the queue's own: unavailable, store full, too large
	}
	switch {
	case err != nil && t.ID == "":
		return err // refused before it was queued: unknown pool, …
	case err != nil:
		return &Error{Code: host.Code(err), Message: err.Error(), TaskID: t.ID}
	case t.State != queue.StateSucceeded:
		te := t.Error
		if te == nil {
			te = &queue.TaskError{Code: host.CodeInternal, Message: "the task ended " + string(t.State) + " without an error"}
		}
		return &Error{Code: te.Code, Message: te.Message, TaskID: t.ID, Detail: te.Detail}
	}
	res := host.Result{TaskID: t.ID, Pool: t.Pool, Plugin: t.Plugin, WorkerPID: t.WorkerPID, Output: t.Result}
	if t.FinishedAt != nil {
		res.Duration = t.FinishedAt.Sub(t.CreatedAt)
	}
	return writeResult(c, res, seed)
}
