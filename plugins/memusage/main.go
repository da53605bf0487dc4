// Command memusage is a wpm plugin that holds memory resident for as long as
// a task asks: input {"mb": N, "duration": ms}. The work is in memusage.go.
package main

import "github.com/wpmdev/wpm/shared"

func main() { shared.Serve(memUsage{}) }
