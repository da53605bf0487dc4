package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxPoll is the longest wait one GET /v1/tasks/{id}?wait= asks for (the
// server allows 5m; shorter keeps idle connections from being cut).
const maxPoll = 60 * time.Second

// Run runs a task on pool and waits for its answer (POST
// /v1/pools/{pool}/tasks). A full queue (429 queue_full) is retried after
// Retry-After, as the package doc says.
func (c *Client) Run(ctx context.Context, pool string, input json.RawMessage) (*Result, error) {
	return c.run(ctx, &request{method: http.MethodPost, path: "/v1/pools/" + url.PathEscape(pool) + "/tasks", body: input})
}

// RunOnce runs a task in a fresh one-shot process of plugin and waits for
// its answer (POST /v1/plugins/{plugin}/run).
func (c *Client) RunOnce(ctx context.Context, plugin string, input json.RawMessage, opts RunOptions) (*Result, error) {
	return c.run(ctx, &request{method: http.MethodPost, path: pluginPath(plugin), query: opts.query(), body: input})
}

func (c *Client) run(ctx context.Context, r *request) (*Result, error) {
	a, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := decode(a.body, r.path, &res); err != nil {
		return nil, err
	}
	res.Host = a.header.Get("X-Wpm-Host")
	return &res, nil
}

func pluginPath(plugin string) string { return "/v1/plugins/" + url.PathEscape(plugin) + "/run" }

// query returns the one-shot options as query parameters.
func (o RunOptions) query() url.Values {
	q := url.Values{}
	if o.MemoryLimitMB != 0 {
		q.Set("memoryLimitMB", strconv.Itoa(o.MemoryLimitMB))
	}
	if o.Timeout != 0 {
		q.Set("timeout", o.Timeout.String())
	}
	return q
}

// Submit submits an asynchronous task (?async=true), stored durably by the
// server, and returns its id at once. With an IdempotencyKey, a 429 or 503
// answer with Retry-After is retried.
func (c *Client) Submit(ctx context.Context, s SubmitRequest) (*Accepted, error) {
	r := &request{method: http.MethodPost, body: s.Input, header: http.Header{}}
	switch {
	case (s.Pool == "") == (s.Plugin == ""):
		return nil, errors.New("client: a SubmitRequest names exactly one of Pool and Plugin")
	case s.Pool != "" && s.RunOptions != RunOptions{}:
		return nil, errors.New("client: RunOptions apply to a one-shot (Plugin), not to a pool's task")
	case s.Pool != "":
		r.path, r.query = "/v1/pools/"+url.PathEscape(s.Pool)+"/tasks", url.Values{}
	default:
		r.path, r.query = pluginPath(s.Plugin), s.RunOptions.query()
	}
	r.query.Set("async", "true")
	if s.CallbackURL != "" {
		r.query.Set("callbackUrl", s.CallbackURL)
	}
	switch {
	case s.Delay != 0 && !s.RunAt.IsZero():
		return nil, errors.New("client: a SubmitRequest has Delay or RunAt, not both")
	case s.Delay != 0:
		r.query.Set("delay", s.Delay.String())
	case !s.RunAt.IsZero():
		r.query.Set("runAt", s.RunAt.UTC().Format(time.RFC3339))
	}
	if s.Priority != "" {
		r.query.Set("priority", s.Priority)
	}
	if s.IdempotencyKey != "" {
		r.header.Set("Idempotency-Key", s.IdempotencyKey)
		r.idempotent = true
	}
	a, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	acc := Accepted{Raw: a.body}
	return &acc, decode(a.body, r.path, &acc)
}

// Task returns an asynchronous task's record (GET /v1/tasks/{id}).
func (c *Client) Task(ctx context.Context, id string) (*Task, error) {
	return c.task(ctx, id, -1)
}

// task gets id's record, long-polling up to wait when wait >= 0.
func (c *Client) task(ctx context.Context, id string, wait time.Duration) (*Task, error) {
	var q url.Values
	if wait >= 0 {
		q = url.Values{"wait": {wait.String()}}
	}
	r := &request{method: http.MethodGet, path: taskPath(id), query: q, idempotent: true}
	return c.taskAnswer(ctx, r)
}

func taskPath(id string) string { return "/v1/tasks/" + url.PathEscape(id) }

// taskAnswer sends r and decodes the task record it answers.
func (c *Client) taskAnswer(ctx context.Context, r *request) (*Task, error) {
	a, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	t := Task{Raw: a.body}
	return &t, decode(a.body, r.path, &t)
}

// Wait long-polls task id's record until the task ended or wait has
// passed, and returns the last record read: the caller tells the two
// apart with its State.Ended(). A wait of 0 or less reads the record once.
// Each request asks the server to wait at most a minute; ctx bounds the
// whole.
func (c *Client) Wait(ctx context.Context, id string, wait time.Duration) (*Task, error) {
	deadline := time.Now().Add(wait)
	for {
		left := min(max(time.Until(deadline), 0), maxPoll)
		t, err := c.task(ctx, id, left)
		if err != nil || t.State.Ended() || !time.Now().Before(deadline) {
			return t, err
		}
	}
}

// Cancel cancels an asynchronous task (DELETE /v1/tasks/{id}) and returns
// its record, now canceled. A task that ended already is
// [ErrTaskEnded].
func (c *Client) Cancel(ctx context.Context, id string) (*Task, error) {
	return c.taskAnswer(ctx, &request{method: http.MethodDelete, path: taskPath(id), idempotent: true})
}

// Retry retries a failed or canceled asynchronous task (POST
// /v1/tasks/{id}/retry) and returns the new task's record, whose RetryOf
// is id; a task retried already gives its retry. A queued or running task
// is [ErrTaskNotEnded], a succeeded one [ErrTaskNotRetryable].
func (c *Client) Retry(ctx context.Context, id string) (*Task, error) {
	return c.taskAnswer(ctx, &request{method: http.MethodPost, path: taskPath(id) + "/retry", idempotent: true})
}

// ListTasks returns the first page of asynchronous tasks, newest first
// (GET /v1/tasks). A listed task whose result or input was kept beside its
// record has no Result or Input, only ResultSize or InputSize.
func (c *Client) ListTasks(ctx context.Context, opts ListOptions) ([]Task, error) {
	p, err := c.TaskPage(ctx, opts)
	if err != nil {
		return nil, err
	}
	return p.Tasks, nil
}

// TaskPage returns a page of asynchronous tasks, newest first, from
// opts.Cursor on (GET /v1/tasks); give its Next as the Cursor of the next.
func (c *Client) TaskPage(ctx context.Context, opts ListOptions) (*TaskPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"state": string(opts.State), "pool": opts.Pool, "plugin": opts.Plugin, "schedule": opts.Schedule, "cursor": opts.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var list struct {
		Tasks []json.RawMessage `json:"tasks"`
		Next  string            `json:"next"`
	}
	if err := c.getJSON(ctx, "/v1/tasks", q, &list); err != nil {
		return nil, err
	}
	p := &TaskPage{Tasks: make([]Task, len(list.Tasks)), Next: list.Next}
	for i, raw := range list.Tasks {
		p.Tasks[i].Raw = raw
		if err := decode(raw, "/v1/tasks", &p.Tasks[i]); err != nil {
			return nil, err
		}
	}
	return p, nil
}
