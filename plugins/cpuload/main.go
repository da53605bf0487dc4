// Command cpuload is a wpm plugin that keeps one CPU core busy for as long as
// a task asks: input {"duration": ms}. The work is in cpuload.go.
package main

import "github.com/wpmdev/wpm/shared"

func main() { shared.Serve(cpuLoad{}) }
