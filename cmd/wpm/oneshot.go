package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/host"
)

func runOnce(args []string, e env) int {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	task := fs.String("task", "", "the task's JSON input; @FILE reads it from a file, - from standard input")
	memoryLimit := fs.Int("memory-limit-mb", 0, "memory limit of the process in MB (default: oneShot.memoryLimitMB)")
	timeout := fs.Duration("timeout", 0, "timeout of the run, like 30s (default: oneShot.timeout)")
	cfg, st, done := loadConfig(fs, lookup("run"), args, e, "plugins-dir", "log-level", "log-format")
	if done {
		return st
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "wpm run: name exactly one plugin, like: wpm run cpuload --task '{\"duration\": 100}'")
		return 2
	}
	input, err := readTask(*task, e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm run: --task: %v\n", err)
		return 2
	}
	hostCfg := cfg.Host
	hostCfg.Pools = nil // a one-shot needs no pool running
	logger := newLogger(cfg, e.stderr)
	defer captureStdLog(logger)()
	mgr, err := host.New(hostCfg, host.WithLogger(logger))
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm run: %v\n", err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = mgr.Shutdown(ctx)
	}()
	progress := newProgressView(e.stderr)
	res, err := mgr.RunOnce(context.Background(), fs.Arg(0), input, host.RunOptions{MemoryLimitMB: *memoryLimit, Timeout: *timeout},
		host.TaskEvents(progress.event))
	progress.done()
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm run: %s: %v\n", host.Code(err), err)
		var te *host.TaskError
		if errors.As(err, &te) && te.Detail != "" {
			fmt.Fprintf(e.stderr, "last stderr lines of the worker:\n%s\n", te.Detail)
		}
		return 1
	}
	var out bytes.Buffer
	if json.Indent(&out, res.Output, "", "  ") != nil {
		// What the server answers as 500 task_failed.
		fmt.Fprintf(e.stderr, "wpm run: %s: the plugin answered with output that is not valid JSON (a plugin must return a JSON value); it began: %.200q\n", host.CodeTaskFailed, res.Output)
		return exitFailed
	}
	fmt.Fprintln(e.stdout, out.String())
	return exitOK
}

// readTask returns the task input named by --task: inline JSON, @FILE, or -
// for standard input. It must be valid JSON.
func readTask(spec string, stdin io.Reader) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case spec == "":
		return nil, fmt.Errorf("required: the task's JSON input, like --task '{\"duration\": 100}'")
	case spec == "-":
		b, err = io.ReadAll(stdin)
	case strings.HasPrefix(spec, "@"):
		b, err = os.ReadFile(spec[1:])
	default:
		b = []byte(spec)
	}
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return nil, fmt.Errorf("not valid JSON: %.80q", b)
	}
	return b, nil
}
