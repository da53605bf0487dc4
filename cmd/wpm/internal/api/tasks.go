package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// Codes of asynchronous tasks.
const (
	codeUnknownTask                     = queue.CodeUnknownTask
	codeTaskEnded                       = queue.CodeTaskEnded
	codeKeyReused                       = queue.CodeIdempotencyKeyReused
	codeStorageFull                     = queue.CodeStorageFull
	codeTaskNotEnded                    = queue.CodeTaskNotEnded
	codeNotRetryable                    = queue.CodeTaskNotRetryable
	codeAsyncUnavailable host.ErrorCode = "async_unavailable"
)

// Routes of asynchronous tasks.
const (
	routeTasks = "/v1/tasks"
	routeTask  = "/v1/tasks/:id"
	routeRetry = "/v1/tasks/:id/retry"
)

// maxWait is the longest GET /v1/tasks/{id}?wait= a caller may ask for.
const maxWait = 5 * time.Minute

// maxIdempotencyKey is the longest Idempotency-Key header taken.
const maxIdempotencyKey = 256

// accepted is the 202 answer of an asynchronous submit.
type accepted struct {
	OK    bool        `json:"ok"`
	ID    string      `json:"id"`
	State queue.State `json:"state"`
}

// taskList is the body of GET /v1/tasks.
type taskList struct {
	Tasks []queue.Task `json:"tasks"`
	Next  string       `json:"next,omitempty"`
}

// asyncWanted reports whether the request asks to run its task
// asynchronously: ?async=true, or the header Prefer: respond-async. A
// callbackUrl needs one of them.
func asyncWanted(c echo.Context) (bool, error) {
	wanted, err := asyncAsked(c)
	if err == nil && !wanted && c.QueryParam("callbackUrl") != "" {
		err = badRequest("query parameter callbackUrl needs async=true (or Prefer: respond-async): only asynchronous tasks call back")
	}
	for _, p := range []string{"delay", "runAt"} {
		if err == nil && !wanted && c.QueryParam(p) != "" {
			err = badRequest("query parameter " + p + " needs async=true (or Prefer: respond-async): only asynchronous tasks wait for their time")
		}
	}
	return wanted, err
}

// asyncAsked reads async and Prefer.
func asyncAsked(c echo.Context) (bool, error) {
	switch v := c.QueryParam("async"); v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
	default:
		return false, badRequest(fmt.Sprintf("query parameter async must be true or false, got %q", clip(v)))
	}
	for _, h := range c.Request().Header.Values("Prefer") {
		for _, p := range strings.Split(h, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "respond-async") {
				return true, nil
			}
		}
	}
	return false, nil
}

// tasks returns the engine, or the error that asynchronous tasks are off.
func (s *Server) tasks() (*queue.Engine, error) {
	if s.opts.Tasks == nil {
		return nil, &Error{Code: codeAsyncUnavailable, Message: "asynchronous tasks are not enabled on this server; run the task synchronously (leave out async=true and Prefer: respond-async)"}
	}
	return s.opts.Tasks, nil
}

// orAsync returns err, the error of asyncWanted, or else submits req
// asynchronously.
func (s *Server) orAsync(c echo.Context, err error, req queue.Request) error {
	if err != nil {
		return err
	}
	return s.submitAsync(c, prioritized(c, req))
}

// submitAsync stores the task durably and answers 202 with its id and a
// Location to poll.
func (s *Server) submitAsync(c echo.Context, req queue.Request) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	req.IdempotencyKey = c.Request().Header.Get("Idempotency-Key")
	if len(req.IdempotencyKey) > maxIdempotencyKey {
		return badRequest(fmt.Sprintf("the Idempotency-Key header is %d bytes; send at most %d", len(req.IdempotencyKey), maxIdempotencyKey))
	}
	req.CallbackURL = c.QueryParam("callbackUrl")
	if req.RunAt, err = runAt(c, e.MaxDelay()); err != nil {
		return err
	}
	t, err := e.Submit(c.Request().Context(), req)
	if err != nil {
		return taskError("", err)
	}
	c.Set(ctxTaskID, t.ID)
	if c.QueryParam("async") == "" {
		c.Response().Header().Set("Preference-Applied", "respond-async") // asked with Prefer
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/tasks/"+t.ID)
	return c.JSON(http.StatusAccepted, accepted{OK: true, ID: t.ID, State: t.State})
}

// queueCodes maps the queue's sentinel errors to the API's codes: the one
// place they are translated.
var queueCodes = []struct {
	err  error
	code host.ErrorCode
}{
	{queue.ErrUnknownTask, codeUnknownTask},
	{queue.ErrTaskEnded, codeTaskEnded},
	{queue.ErrTaskNotEnded, codeTaskNotEnded},
	{queue.ErrNotRetryable, codeNotRetryable},
	{queue.ErrBadCursor, codeBadRequest},
	{queue.ErrUnavailable, codeAsyncUnavailable},
	{queue.ErrStorageFull, codeStorageFull},
	{queue.ErrTooLarge, codeBodyTooLarge},
	{queue.ErrCallbackRefused, codeBadRequest},
	{queue.ErrKeyReused, codeKeyReused},
	{queue.ErrUnknownSchedule, codeUnknownSchedule},
	{queue.ErrScheduleExists, codeScheduleExists},
	{queue.ErrBadSchedule, codeBadRequest},
}

// taskError turns the queue's errors about task id ("" before it has one)
// into the API's; others, host's among them, pass as they are.
func taskError(id string, err error) error {
	for _, q := range queueCodes {
		if errors.Is(err, q.err) {
			msg := err.Error()
			if q.code == codeUnknownTask {
				msg = clipName(msg, id)
			}
			e := &Error{Code: q.code, Message: msg}
			if q.code == codeTaskEnded || q.code == codeTaskNotEnded || q.code == codeNotRetryable {
				e.TaskID = id
			}
			return e
		}
	}
	return err
}

func (s *Server) getTask(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	id := c.Param("id")
	var wait time.Duration
	if v := c.QueryParam("wait"); v != "" {
		wait, err = time.ParseDuration(v)
		if err != nil || wait < 0 || wait > maxWait {
			return badRequest(fmt.Sprintf("query parameter wait must be a Go duration from 0 to %s, like 30s, got %q", maxWait, clip(v)))
		}
	}
	t, err := waitTask(c.Request().Context(), e, id, wait)
	if err != nil {
		return taskError(id, err)
	}
	return c.JSON(http.StatusOK, t)
}

// waitTask reads task id's record, then, when it has not ended, waits up
// to wait for its end. The wait bounds only the waiting: a wait too short
// for a read (1ns, 200µs) still answers with the record, or the task is
// unknown, rather than failing with the wait's expired deadline.
func waitTask(ctx context.Context, e *queue.Engine, id string, wait time.Duration) (queue.Task, error) {
	deadline := time.Now().Add(wait)
	t, err := e.Get(ctx, id)
	if err != nil || wait <= 0 || t.State.Ended() {
		return t, err
	}
	left := time.Until(deadline)
	if left <= 0 {
		return t, nil
	}
	next, err := e.Wait(ctx, id, left)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return t, nil // the wait ran out during a read: the record read first stands
	}
	return next, err
}

func (s *Server) listTasks(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	q := c.QueryParam
	f := queue.Filter{State: queue.State(q("state")), Pool: q("pool"), Plugin: q("plugin"), Schedule: q("schedule"), Cursor: q("cursor"), Limit: 100}
	if f.State != "" && !slices.Contains(queue.States, f.State) {
		return badRequest(fmt.Sprintf("query parameter state must be one of %s, got %q", states(), clip(string(f.State))))
	}
	if v := q("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return badRequest(fmt.Sprintf("query parameter limit must be a whole number from 1 to 1000, got %q", clip(v)))
		}
		f.Limit = n
	}
	page, err := e.Page(c.Request().Context(), f)
	if err != nil {
		if errors.Is(err, queue.ErrBadCursor) {
			return badRequest("query parameter cursor must be the next of a page of GET /v1/tasks, as it was given")
		}
		return taskError("", err)
	}
	return c.JSON(http.StatusOK, taskList{Tasks: page.Tasks, Next: page.Next})
}

// states lists the states a task may be in, for a message.
func states() string {
	names := make([]string, len(queue.States))
	for i, st := range queue.States {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// retryTask is POST /v1/tasks/{id}/retry: a new task with a failed or
// canceled task's input and options, answered 202 with its record.
func (s *Server) retryTask(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	id := c.Param("id")
	t, err := e.Retry(c.Request().Context(), id)
	if err != nil {
		return taskError(id, err)
	}
	c.Set(ctxTaskID, t.ID)
	c.Response().Header().Set(echo.HeaderLocation, "/v1/tasks/"+t.ID)
	return c.JSON(http.StatusAccepted, t)
}

func (s *Server) cancelTask(c echo.Context) error {
	e, err := s.tasks()
	if err != nil {
		return err
	}
	id := c.Param("id")
	t, err := e.Cancel(c.Request().Context(), id)
	if err != nil {
		return taskError(id, err)
	}
	c.Set(ctxTaskID, t.ID)
	return c.JSON(http.StatusOK, t)
}

// poolRequest is an asynchronous task on pool.
func poolRequest(pool string, input []byte) queue.Request {
	return queue.Request{Pool: pool, Input: input}
}

// oneShotRequest is an asynchronous one-shot of plugin.
func oneShotRequest(plugin string, input []byte, opts host.RunOptions) queue.Request {
	return queue.Request{Plugin: plugin, Input: input, Run: opts}
}
