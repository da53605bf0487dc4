package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/cmd/wpm/internal/config"
)

// poolsUsage lists wpm pools' subcommands.
const poolsUsage = `Subcommands:
  pause NAME    pause the pool for the whole cluster, across restarts: its queued
                asynchronous tasks wait, running ones finish, synchronous tasks are
                refused (503 pool_paused)
  resume NAME   resume it: its queued tasks run again

Exit status: 0 done; 1 the request failed (unknown pool, say); 2 wrong arguments.`

func runPools(args []string, e env) int {
	fs := pflag.NewFlagSet("pools", pflag.ContinueOnError)
	urlFlag := fs.String("url", "", "base URL of a running wpm (default: http://<http.addr> from the config, else "+defaultStatusURL+")")
	token := fs.String("token", "", "bearer token, when wpm serve has http.authToken (default: $"+tokenEnv+", else http.authToken from the config)")
	config.RegisterConfigFlag(fs)
	if st, done := parseFlags(fs, lookup("pools"), args, e); done {
		return st
	}
	if fs.NArg() != 2 || (fs.Arg(0) != "pause" && fs.Arg(0) != "resume") {
		fmt.Fprintf(e.stderr, "wpm pools: unknown subcommand or wrong arguments: %s\n\n%s\n", strings.Join(fs.Args(), " "), poolsUsage)
		return 2
	}
	c, st := serverClient("pools", fs, *urlFlag, *token, e)
	if c == nil {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestBound)
	defer cancel()
	sub, name := fs.Arg(0), fs.Arg(1)
	set := c.Pause
	if sub == "resume" {
		set = c.Resume
	}
	p, err := set(ctx, name)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm pools %s: %v\n", sub, explain(err))
		return exitFailed
	}
	state := "resumed: its queued tasks run"
	if p.Paused {
		state = "paused: its queued tasks wait until wpm pools resume " + p.Pool
	}
	fmt.Fprintf(e.stdout, "pool %s %s\n", p.Pool, state)
	return 0
}
