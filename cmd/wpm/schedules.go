package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/client"
	"github.com/wpmdev/wpm/cmd/wpm/internal/config"
)

// schedulesUsage lists wpm schedules' subcommands.
const schedulesUsage = `Subcommands:
  list                                               list the schedules, with their next runs
  get NAME                                           print a schedule, with its last runs' task ids
  add NAME --pool P | --plugin X --cron C | --every D [--timezone TZ] [--task JSON|@FILE|-]
                                                     make a schedule: each tick makes one task
  rm NAME                                            delete a schedule (its tasks stay)
  pause NAME                                         stop its ticks, cluster-wide, until resume
  resume NAME                                        start its ticks again

--cron takes 6 fields, seconds first ("0 */5 * * * *"), or @hourly, @daily, ...

Exit status: 0 done; 1 an error; 2 wrong flags, arguments or config.`

func runSchedules(args []string, e env) int {
	fs := pflag.NewFlagSet("schedules", pflag.ContinueOnError)
	urlFlag := fs.String("url", "", "base URL of a running wpm (default: http://<http.addr> from the config, else "+defaultStatusURL+")")
	token := fs.String("token", "", "bearer token, when wpm serve has http.authToken (default: $"+tokenEnv+", else http.authToken from the config)")
	pool := fs.String("pool", "", "add: the pool that runs each task")
	plugin := fs.String("plugin", "", "add: run each task as a one-shot of this plugin instead")
	task := fs.String("task", "", "add: each task's JSON input ({} when absent); @FILE reads it from a file, - from standard input")
	cron := fs.String("cron", "", `add: a 6-field cron expression, seconds first ("0 0 3 * * *")`)
	every := fs.Duration("every", 0, "add: the interval between ticks, at least 1s, instead of --cron")
	tz := fs.String("timezone", "", "add: the IANA time zone of --cron (default UTC)")
	config.RegisterConfigFlag(fs)
	if st, done := parseFlags(fs, lookup("schedules"), args, e); done {
		return st
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(e.stderr, "wpm schedules: name a subcommand\n\n%s\n", schedulesUsage)
		return 2
	}
	c, st := serverClient("schedules", fs, *urlFlag, *token, e)
	if c == nil {
		return st
	}
	sc := schedulesCmd{tasksCmd{c: c, e: e}}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	switch {
	case sub == "list" && len(rest) == 0:
		return sc.list(ctx)
	case sub == "add" && len(rest) == 1:
		s := client.Schedule{Name: rest[0], Pool: *pool, Plugin: *plugin, Cron: *cron, Timezone: *tz}
		if *every != 0 {
			s.Every = every.String()
		}
		if *task != "" {
			input, err := readTask(*task, e.stdin)
			if err != nil {
				fmt.Fprintf(e.stderr, "wpm schedules add: --task: %v\n", err)
				return 2
			}
			s.Input = input
		}
		return sc.show("add", func() (*client.Schedule, error) { return c.CreateSchedule(ctx, s) })
	case len(rest) == 1:
		act := map[string]func(context.Context, string) (*client.Schedule, error){
			"get": c.Schedule, "rm": c.DeleteSchedule, "pause": c.PauseSchedule, "resume": c.ResumeSchedule,
		}[sub]
		if act != nil {
			return sc.show(sub, func() (*client.Schedule, error) { return act(ctx, rest[0]) })
		}
	}
	fmt.Fprintf(e.stderr, "wpm schedules: unknown subcommand or wrong arguments: %s\n\n%s\n", strings.Join(fs.Args(), " "), schedulesUsage)
	return 2
}

// schedulesCmd runs wpm schedules' subcommands against a running wpm.
type schedulesCmd struct{ tasksCmd }

// show prints the schedule do answers, or its error.
func (sc schedulesCmd) show(sub string, do func() (*client.Schedule, error)) int {
	s, err := do()
	if err != nil {
		fmt.Fprintf(sc.e.stderr, "wpm schedules %s: %v\n", sub, explain(err))
		return exitFailed
	}
	b, _ := json.Marshal(s)
	return sc.print(b)
}

func (sc schedulesCmd) list(ctx context.Context) int {
	list, err := sc.c.Schedules(ctx)
	if err != nil {
		fmt.Fprintf(sc.e.stderr, "wpm schedules list: %v\n", explain(err))
		return exitFailed
	}
	tw := tabwriter.NewWriter(sc.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRUNS ON\tWHEN\tSTATE\tNEXT RUN\tSOURCE")
	for _, s := range list {
		on, when, state, next := s.Pool, s.Cron, "active", "-"
		if on == "" {
			on = s.Plugin + " (one-shot)"
		}
		if when == "" {
			when = "every " + s.Every
		} else if s.Timezone != "" {
			when += " " + s.Timezone
		}
		if s.Paused {
			state = "paused"
		}
		if s.NextRun != nil {
			next = s.NextRun.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, on, when, state, next, s.Source)
	}
	_ = tw.Flush()
	return 0
}
