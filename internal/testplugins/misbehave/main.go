// Command misbehave is a test-only wpm plugin, never shipped: its input picks
// a fault (hang, crash, exit, eat memory, write garbage, spawn a stubborn
// child, ...) so that integration tests can break real worker processes.
// The faults are in misbehave.go.
//
// Start-time faults are picked by the binary's file name, because the host
// starts plugins with an empty environment: a name containing "slowstart"
// sleeps 1.5 s before serving, one containing "failstart" exits with status
// 1. One containing "crashtask" starts and serves, but crashes on every task
// whatever its input (a plugin that is broken through and through). Run with the single argument "child", it is the child that the "spawn"
// fault starts.
package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wpmdev/wpm/shared"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == childArg {
		runChild()
	}
	name := filepath.Base(os.Args[0])
	startFaults(name, os.Stderr)
	// os.Stdout and os.Stderr are still the process's own fds 1 and 2 here:
	// shared.Serve swaps them for pipes that go-plugin forwards to the host.
	m := newMisbehave(os.Stdout, os.Stderr, func() (stdout, stderr io.Writer) {
		return os.Stdout, os.Stderr
	})
	m.crashEveryTask = strings.Contains(name, "crashtask")
	shared.Serve(m)
}
