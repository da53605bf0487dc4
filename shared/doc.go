// Package shared is the SDK of wpm's Go plugins: all a plugin author
// imports.
//
// A plugin implements [Task] (or wraps a function in [TaskFunc]) and hands
// it to [Serve] in its main. Inside Run, it returns [InvalidInput] (or an
// error wrapping [ErrInvalidInput]) when the input is the caller's fault,
// any other error for a failure ([ErrTaskFailed] on the host's side);
// reads its input with [ParseObject]; reports how far it is with
// [Progress] ([WithProgressTo] sees those reports in a unit test); logs
// with [Logger], whose JSON lines the host logs at their own level and
// keeps for the report of a crash; may measure itself with
// [ResidentMemory]; and may join the task's OpenTelemetry trace with
// [TraceParent].
//
// The protocol behind Serve — the handshake, the net/rpc pair, errors as
// data, progress callbacks, pipelining — is in wpm's internal/wire
// package, which the host imports too. shared exports none of it.
package shared
