//go:build unix

package shared

import (
	"os"
	"os/signal"
	"syscall"
)

// dieWithGroupOnTerm makes SIGTERM end the plugin's whole process group at
// once. The host starts each plugin as the leader of its own group with
// SIGTERM as its parent-death signal, so when the host dies, even by
// SIGKILL, whatever the plugin started dies with it.
func dieWithGroupOnTerm() {
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	go func() {
		<-terms
		_ = syscall.Kill(0, syscall.SIGKILL)
		os.Exit(1) // not reached unless the plugin leads no group of its own
	}()
}
