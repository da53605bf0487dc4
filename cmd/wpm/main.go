// Command wpm is the worker pool manager: it serves the HTTP API over pools
// of plugin workers, runs single tasks from the shell, and lists plugins.
//
//	wpm serve [--config FILE]
//	wpm run <plugin> --task JSON|@FILE|-
//	wpm plugins
//	wpm plugin check NAME [--input JSON|@FILE|-]
//	wpm new plugin NAME [--lang go|python|node] [--dir DIR]
//	wpm status [--url URL] [--token T]
//	wpm tasks submit|get|wait|cancel|list [ID] [--url URL] [--token T]
//	wpm pools pause|resume NAME [--url URL] [--token T]
//	wpm version
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
)

// Exit statuses, the same for every command.
const (
	// exitOK: done; for wpm tasks wait, the task succeeded.
	exitOK = 0
	// exitFailed: the task failed or was canceled, or the command failed.
	exitFailed = 1
	// exitUsage: wrong flags, arguments or config.
	exitUsage = 2
	// exitTimedOut: wpm tasks wait's --timeout passed before the task ended.
	exitTimedOut = 3
)

// Exit statuses as the commands' help states them.
const (
	tasksExitStatuses = `Exit status: 0 done (wait: the task succeeded); 1 the task failed or was
canceled, or an error; 2 wrong flags, arguments or config; 3 wait's
--timeout passed before the task ended.`
	runExitStatuses = `Exit status: 0 the task succeeded; 1 it failed (output that is not JSON
is task_failed too) or could not run; 2 wrong flags, arguments or config.`
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, environ: os.Environ()}))
}

// env is what a command may touch of the outside world, so tests can run
// commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

// command is one subcommand.
type command struct {
	name, usage, summary string
	run                  func(args []string, e env) int
}

func commands() []command {
	return []command{
		{"serve", "wpm serve [flags]", "serve the HTTP API over the configured pools", runServe},
		{"run", "wpm run <plugin> --task JSON|@FILE|- [flags]\n\n" + runExitStatuses, "run one task in a one-shot process and print its answer", runOnce},
		{"plugins", "wpm plugins [flags]", "list the plugins in the plugins directory", runPlugins},
		{"plugin", "wpm plugin check NAME [flags]\n\n" + pluginUsage, "check that a plugin starts, answers, survives bad input and a crash, and reports its memory", runPlugin},
		{"new", "wpm new plugin NAME [flags]\n\n" + newUsage, "write a new plugin (Go, Python or Node.js) with its test", runNew},
		{"status", "wpm status [--url URL] [--token T] [flags]", "show a running wpm's pools and workers", runStatus},
		{"pools", "wpm pools pause|resume NAME [flags]\n\n" + poolsUsage, "pause or resume a pool of a running wpm, for the whole cluster", runPools},
		{"tasks", "wpm tasks submit|get|wait|cancel|list [ID] [flags]\n\n" + tasksUsage, "submit, read, await, cancel and list a running wpm's asynchronous tasks", runTasks},
		{"schedules", "wpm schedules list|get|add|rm|pause|resume [NAME] [flags]\n\n" + schedulesUsage, "list, make, delete, pause and resume a running wpm's schedules", runSchedules},
		{"version", "wpm version", "print wpm's version", runVersion},
	}
}

// run dispatches to a subcommand and returns the exit status.
func run(args []string, e env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], e)
		}
	}
	fmt.Fprintf(e.stderr, "wpm: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "wpm — worker pool manager: pools of plugin worker processes behind an HTTP API.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'wpm <command> --help' for a command's flags.")
}

// parseFlags parses a subcommand's flags; it prints usage and returns
// done=true with the exit status when the command should stop here.
func parseFlags(fs *pflag.FlagSet, c command, args []string, e env) (status int, done bool) {
	// pflag prints the usage itself on -h, to standard output here, and
	// nothing on a bad flag: that error is printed below.
	fs.SetOutput(e.stderr)
	if asksHelp(args) {
		fs.SetOutput(e.stdout)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\n%s.\n\nFlags:\n%s", c.usage, c.summary, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, true
		}
		fmt.Fprintf(e.stderr, "wpm %s: %v; wpm %s --help lists its flags\n", c.name, err, c.name)
		return 2, true
	}
	return 0, false
}

// asksHelp reports whether args hold -h or --help before a "--".
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help":
			return true
		}
	}
	return false
}

func lookup(name string) command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	panic("no command " + name)
}

func runVersion(args []string, e env) int {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	if st, done := parseFlags(fs, lookup("version"), args, e); done {
		return st
	}
	fmt.Fprintln(e.stdout, "wpm", version)
	return 0
}
