// Package shared is the contract between the wpm host and its worker plugins.
//
// Both sides import it: a plugin implements [Task] and hands it to [Serve]; the
// host dispenses the same [Task] interface from a plugin process through
// go-plugin's net/rpc protocol ([TaskPlugin], [RPCClient], [RPCServer]).
// Errors cross the process boundary as data, so the host can tell invalid
// input ([ErrInvalidInput]) from any other task failure ([ErrTaskFailed]) and
// both from a broken transport ([ErrTransport]).
//
// A plugin logs through [Logger], whose JSON lines the host logs at their
// own level and keeps for the report of a crash.
//
// This package imports nothing else of wpm's and is the only wpm package a
// plugin may import.
package shared
