package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/client"
	"github.com/wpmdev/wpm/cmd/wpm/internal/config"
	"github.com/wpmdev/wpm/host"
)

// tasksUsage lists wpm tasks' subcommands.
const tasksUsage = `Subcommands:
  submit --pool P | --plugin X --task JSON|@FILE|-   submit a task asynchronously, print {"id",…};
         [--delay D | --run-at RFC3339]             run it later (it is scheduled until then)
         [--priority high|normal|low]
  get ID                                            print the task's record
  wait ID                                           wait until the task ends, showing its progress; print its record
  cancel ID                                         cancel a queued or running task
  retry ID                                          retry a failed or canceled task as a new one, print its record
  list [--state S] [--pool P] [--plugin X] [--schedule NAME] [--limit N] [--cursor C]
                                                    list tasks, newest first, a page at a time

wait shows progress as wpm run does (on standard error) and prints the
record it has when --timeout passes, and exits 3. list says on standard
error how to get the next page (--cursor).

` + tasksExitStatuses

// tasksCmd runs wpm tasks' subcommands against a running wpm.
type tasksCmd struct {
	c *client.Client
	e env
}

func runTasks(args []string, e env) int {
	fs := pflag.NewFlagSet("tasks", pflag.ContinueOnError)
	urlFlag := fs.String("url", "", "base URL of a running wpm (default: http://<http.addr> from the config, else "+defaultStatusURL+")")
	token := fs.String("token", "", "bearer token, when wpm serve has http.authToken (default: $"+tokenEnv+", else http.authToken from the config)")
	timeout := fs.Duration("timeout", time.Hour, "how long wait waits for the end (then exit status 3); other requests get 30s")
	pool := fs.String("pool", "", "submit: the pool to run on; list: only this pool's tasks")
	plugin := fs.String("plugin", "", "submit: run as a one-shot of this plugin instead of on a pool; list: only this plugin's tasks")
	task := fs.String("task", "", "submit: the task's JSON input; @FILE reads it from a file, - from standard input")
	key := fs.String("idempotency-key", "", "submit: a repeat with the same key within async.dedupWindow returns the first task")
	callback := fs.String("callback-url", "", "submit: URL (under async.callbackAllow) that receives the final record")
	delay := fs.Duration("delay", 0, "submit: run the task this long from now (like 90s, 2h; at most async.maxDelay)")
	runAt := fs.String("run-at", "", "submit: run the task at this RFC 3339 time (like 2030-01-02T15:04:05Z); one in the past runs now")
	state := fs.String("state", "", "list: only tasks in this state (scheduled, queued, running, succeeded, failed, canceled)")
	priority := fs.String("priority", "", "submit: high, normal (the default) or low: where the task waits among its pool's")
	limit := fs.Int("limit", 20, "list: at most this many tasks")
	schedule := fs.String("schedule", "", "list: only the tasks this schedule made")
	cursor := fs.String("cursor", "", "list: the page after the one that printed this cursor")
	config.RegisterConfigFlag(fs)
	if st, done := parseFlags(fs, lookup("tasks"), args, e); done {
		return st
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(e.stderr, "wpm tasks: name a subcommand\n\n%s\n", tasksUsage)
		return 2
	}
	c, st := serverClient("tasks", fs, *urlFlag, *token, e)
	if c == nil {
		return st
	}
	tc := tasksCmd{c: c, e: e}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	switch {
	case sub == "submit" && len(rest) == 0:
		req := client.SubmitRequest{Pool: *pool, Plugin: *plugin, IdempotencyKey: *key, CallbackURL: *callback, Delay: *delay, Priority: *priority}
		if *runAt != "" {
			var err error
			if req.RunAt, err = time.Parse(time.RFC3339, *runAt); err != nil || *delay != 0 {
				fmt.Fprintf(e.stderr, "wpm tasks submit: --run-at must be an RFC 3339 time like 2030-01-02T15:04:05Z, and goes without --delay; got %q\n", *runAt)
				return 2
			}
		}
		return tc.submit(req, *task)
	case sub == "list" && len(rest) == 0:
		return tc.list(client.ListOptions{State: client.TaskState(*state), Pool: *pool, Plugin: *plugin, Schedule: *schedule, Limit: *limit, Cursor: *cursor})
	case (sub == "get" || sub == "wait" || sub == "cancel" || sub == "retry") && len(rest) == 1:
		return tc.one(sub, rest[0], *timeout)
	}
	fmt.Fprintf(e.stderr, "wpm tasks: unknown subcommand or wrong arguments: %s\n\n%s\n", strings.Join(fs.Args(), " "), tasksUsage)
	return 2
}

// requestBound bounds a request that does not wait for a task.
const requestBound = 30 * time.Second

func (tc tasksCmd) submit(req client.SubmitRequest, spec string) int {
	if (req.Pool == "") == (req.Plugin == "") {
		fmt.Fprintln(tc.e.stderr, "wpm tasks submit: give exactly one of --pool and --plugin")
		return 2
	}
	input, err := readTask(spec, tc.e.stdin)
	if err != nil {
		fmt.Fprintf(tc.e.stderr, "wpm tasks submit: --task: %v\n", err)
		return 2
	}
	req.Input = input
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	acc, err := tc.c.Submit(ctx, req)
	if err != nil {
		return tc.fail("submit", err)
	}
	return tc.print(acc.Raw)
}

func (tc tasksCmd) one(sub, id string, timeout time.Duration) int {
	if sub == "wait" {
		return tc.wait(id, timeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	get := tc.c.Task
	switch sub {
	case "cancel":
		get = tc.c.Cancel
	case "retry":
		get = tc.c.Retry
	}
	t, err := get(ctx, id)
	if err != nil {
		return tc.fail(sub, err)
	}
	return tc.print(t.Raw)
}

// wait waits until task id ended or timeout passed, and prints the last
// record: exit status 0 when the task succeeded, 1 when it failed or was
// canceled (or a request failed), 3 when timeout passed first.
func (tc tasksCmd) wait(id string, timeout time.Duration) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+requestBound)
	defer cancel()
	t, err := tc.waitShowing(ctx, id, timeout)
	switch {
	case err != nil:
		return tc.fail("wait", err)
	case t.State == client.StateSucceeded:
		return tc.print(t.Raw)
	case t.State.Ended():
		tc.print(t.Raw)
		return exitFailed
	}
	tc.print(t.Raw)
	fmt.Fprintf(tc.e.stderr, "wpm tasks wait: task %s is still %s after --timeout %s (exit status %d); wait again, or cancel it with wpm tasks cancel %s\n", id, t.State, timeout, exitTimedOut, id)
	return exitTimedOut
}

// waitShowing is Client.Wait while the task's progress events, from its
// event stream, are shown on standard error as wpm run shows them; a task
// running on another host of a cluster shows its progress too (that host
// shares its task events over NATS: queue/events.go). The stream is best
// effort (core NATS; an event may be lost), and the task's record, not
// the stream, ends the wait.
func (tc tasksCmd) waitShowing(ctx context.Context, id string, timeout time.Duration) (*client.Task, error) {
	view := newProgressView(tc.e.stderr)
	events, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range tc.c.TaskEvents(events, id, client.EventsOptions{}) {
			if err != nil {
				return
			}
			if ev.Type == client.EventTaskProgress && ev.Fraction != nil {
				view.event(host.Event{Type: host.EventTaskProgress, Fraction: *ev.Fraction, Message: ev.Message})
			}
		}
	}()
	t, err := tc.c.Wait(ctx, id, timeout)
	stop()
	<-done
	view.done()
	return t, err
}

func (tc tasksCmd) list(opts client.ListOptions) int {
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	page, err := tc.c.TaskPage(ctx, opts)
	if err != nil {
		return tc.fail("list", err)
	}
	tasks := page.Tasks
	tw := tabwriter.NewWriter(tc.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPRIORITY\tPOOL\tPLUGIN\tATTEMPTS\tCREATED\tERROR")
	for _, t := range tasks {
		pool, code, priority := t.Pool, "-", t.Priority
		if pool == "" {
			pool = "(one-shot)"
		}
		if t.Error != nil {
			code = string(t.Error.Code)
		}
		if priority == "" {
			priority = "normal" // a record of wpm before priorities
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.State, priority, pool, t.Plugin, t.Attempts, t.CreatedAt.Local().Format(time.DateTime), code)
	}
	_ = tw.Flush()
	if page.Next != "" {
		fmt.Fprintf(tc.e.stderr, "next page: wpm tasks list --cursor %s (with the same filters)\n", page.Next)
	}
	return 0
}

// print writes an answer, indented; it returns exit status 0.
func (tc tasksCmd) print(body []byte) int {
	var out bytes.Buffer
	if json.Indent(&out, body, "", "  ") != nil {
		out.Reset()
		out.Write(body)
	}
	fmt.Fprintln(tc.e.stdout, strings.TrimSpace(out.String()))
	return 0
}

// fail writes subcommand sub's error; it returns exit status 1.
func (tc tasksCmd) fail(sub string, err error) int {
	fmt.Fprintf(tc.e.stderr, "wpm tasks %s: %v\n", sub, explain(err))
	return exitFailed
}
