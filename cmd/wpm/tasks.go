package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/cmd/wpm/internal/config"
	"github.com/wpmdev/wpm/queue"
)

// tasksUsage lists wpm tasks' subcommands.
const tasksUsage = `Subcommands:
  submit --pool P | --plugin X --task JSON|@FILE|-   submit a task asynchronously, print {"id",…}
  get ID                                            print the task's record
  wait ID                                           wait until the task ends, print its record
  cancel ID                                         cancel a queued or running task
  list [--state S] [--pool P] [--limit N]           list recent tasks, newest first

wait prints the record it has when --timeout passes, and exits 3.

` + tasksExitStatuses

// tasksClient talks to a running wpm's /v1/tasks API.
type tasksClient struct {
	base, token string
}

func runTasks(args []string, e env) int {
	fs := pflag.NewFlagSet("tasks", pflag.ContinueOnError)
	urlFlag := fs.String("url", "", "base URL of a running wpm (default: http://<http.addr> from the config, else "+defaultStatusURL+")")
	token := fs.String("token", "", "bearer token, when wpm serve has http.authToken (default: $"+tokenEnv+", else http.authToken from the config)")
	timeout := fs.Duration("timeout", time.Hour, "how long wait waits for the end (then exit status 3); other requests get 30s")
	pool := fs.String("pool", "", "submit: the pool to run on; list: only this pool's tasks")
	plugin := fs.String("plugin", "", "submit: run as a one-shot of this plugin instead of on a pool")
	task := fs.String("task", "", "submit: the task's JSON input; @FILE reads it from a file, - from standard input")
	key := fs.String("idempotency-key", "", "submit: a repeat with the same key within async.dedupWindow returns the first task")
	callback := fs.String("callback-url", "", "submit: URL (under async.callbackAllow) that receives the final record")
	state := fs.String("state", "", "list: only tasks in this state (queued, running, succeeded, failed, canceled)")
	limit := fs.Int("limit", 20, "list: at most this many tasks")
	config.RegisterFlags(fs)
	if st, done := parseFlags(fs, lookup("tasks"), args, e); done {
		return st
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(e.stderr, "wpm tasks: name a subcommand\n\n%s\n", tasksUsage)
		return 2
	}
	base, tok, err := statusTarget(fs, *urlFlag, *token, e)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm tasks: %v\n", err)
		return 2
	}
	tc := tasksClient{base: base, token: tok}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	switch {
	case sub == "submit" && len(rest) == 0:
		return tc.submit(e, *pool, *plugin, *task, *key, *callback)
	case sub == "list" && len(rest) == 0:
		return tc.list(e, *state, *pool, *limit)
	case (sub == "get" || sub == "wait" || sub == "cancel") && len(rest) == 1:
		return tc.one(e, sub, rest[0], *timeout)
	}
	fmt.Fprintf(e.stderr, "wpm tasks: unknown subcommand or wrong arguments: %s\n\n%s\n", strings.Join(fs.Args(), " "), tasksUsage)
	return 2
}

// requestBound bounds a request that does not wait for a task.
const requestBound = 30 * time.Second

func (tc tasksClient) submit(e env, pool, plugin, spec, key, callback string) int {
	if (pool == "") == (plugin == "") {
		fmt.Fprintln(e.stderr, "wpm tasks submit: give exactly one of --pool and --plugin")
		return 2
	}
	input, err := readTask(spec, e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm tasks submit: --task: %v\n", err)
		return 2
	}
	path := "/v1/pools/" + url.PathEscape(pool) + "/tasks"
	if plugin != "" {
		path = "/v1/plugins/" + url.PathEscape(plugin) + "/run"
	}
	q := url.Values{"async": {"true"}}
	if callback != "" {
		q.Set("callbackUrl", callback)
	}
	headers := map[string]string{}
	if key != "" {
		headers["Idempotency-Key"] = key
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	body, err := tc.do(ctx, http.MethodPost, path+"?"+q.Encode(), input, headers)
	return tc.print(e, "submit", body, err)
}

func (tc tasksClient) one(e env, sub, id string, timeout time.Duration) int {
	if sub == "wait" {
		return tc.wait(e, id, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	method := http.MethodGet
	if sub == "cancel" {
		method = http.MethodDelete
	}
	body, err := tc.do(ctx, method, "/v1/tasks/"+url.PathEscape(id), nil, nil)
	return tc.print(e, sub, body, err)
}

// maxPoll is the longest wait one GET /v1/tasks/{id}?wait= asks for.
const maxPoll = 60 * time.Second

// wait long-polls task id's record until it ended or timeout passed, and
// prints the last record: exit status 0 when the task succeeded, 1 when it
// failed or was canceled (or a request failed), 3 when timeout passed
// first. Each request asks the server to wait no longer than what is left
// of timeout, so the answer comes before the request's own bound.
func (tc tasksClient) wait(e env, id string, timeout time.Duration) int {
	path := "/v1/tasks/" + url.PathEscape(id)
	deadline := time.Now().Add(timeout)
	for {
		left := min(max(time.Until(deadline), 0), maxPoll)
		ctx, cancel := context.WithTimeout(context.Background(), left+requestBound)
		body, err := tc.do(ctx, http.MethodGet, path+"?wait="+url.QueryEscape(left.String()), nil, nil)
		cancel()
		if err != nil {
			return tc.print(e, "wait", nil, err)
		}
		var t queue.Task
		if err := json.Unmarshal(body, &t); err != nil {
			return tc.print(e, "wait", nil, fmt.Errorf("the answer is not a task record: %w", err))
		}
		switch {
		case t.State == queue.StateSucceeded:
			return tc.print(e, "wait", body, nil)
		case t.State.Ended():
			tc.print(e, "wait", body, nil)
			return exitFailed
		case !time.Now().Before(deadline):
			tc.print(e, "wait", body, nil)
			fmt.Fprintf(e.stderr, "wpm tasks wait: task %s is still %s after --timeout %s (exit status %d); wait again, or cancel it with wpm tasks cancel %s\n", id, t.State, timeout, exitTimedOut, id)
			return exitTimedOut
		}
	}
}

func (tc tasksClient) list(e env, state, pool string, limit int) int {
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if state != "" {
		q.Set("state", state)
	}
	if pool != "" {
		q.Set("pool", pool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	body, err := tc.do(ctx, http.MethodGet, "/v1/tasks?"+q.Encode(), nil, nil)
	if err != nil {
		return tc.print(e, "list", nil, err)
	}
	var list struct{ Tasks []queue.Task }
	if err := json.Unmarshal(body, &list); err != nil {
		return tc.print(e, "list", nil, fmt.Errorf("the answer is not a task list: %w", err))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPOOL\tPLUGIN\tATTEMPTS\tCREATED\tERROR")
	for _, t := range list.Tasks {
		pool, code := t.Pool, "-"
		if pool == "" {
			pool = "(one-shot)"
		}
		if t.Error != nil {
			code = t.Error.Code
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.State, pool, t.Plugin, t.Attempts, t.CreatedAt.Local().Format(time.DateTime), code)
	}
	_ = tw.Flush()
	return 0
}

// print writes an answer, indented, or the error; it returns the exit
// status.
func (tc tasksClient) print(e env, sub string, body []byte, err error) int {
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm tasks %s: %v\n", sub, err)
		return 1
	}
	var out bytes.Buffer
	if json.Indent(&out, body, "", "  ") != nil {
		out.Reset()
		out.Write(body)
	}
	fmt.Fprintln(e.stdout, strings.TrimSpace(out.String()))
	return 0
}

// do sends one request and returns the body of a 2xx answer; any other
// answer is an error with the API's code and message.
func (tc tasksClient) do(ctx context.Context, method, path string, body []byte, headers map[string]string) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, tc.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("bad --url %q: %w", tc.base, err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return doAPI(req, tc.token)
}
