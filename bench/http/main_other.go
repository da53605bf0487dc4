//go:build !linux

// Command http is wpm's HTTP load benchmark. It reads /proc and relies on
// Linux's parent-death signal, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench/http runs on Linux only")
	os.Exit(1)
}
