// Package host runs wpm's worker processes: named pools of long-lived
// plugin workers and one-shot processes that run a single task and exit.
//
// It is the embeddable half of wpm and knows nothing of HTTP. A program
// creates a [Manager] from a plain [Config], submits tasks to pools with
// [Manager.Submit], runs one-shots with [Manager.RunOnce], reads state with
// [Manager.Pools], and ends everything with [Manager.Shutdown].
//
// Every worker is a go-plugin binary found in the plugins directory and
// built with the project's shared package. Each process has exactly one
// owner inside this package, which ends it on every path: a pool slot for
// pool workers, the call itself for one-shots. Workers are started in their
// own process group with a parent-death signal, so none outlives the host.
//
// A pool has a fixed size ([PoolConfig.Workers]) or sizes itself between
// [PoolConfig.MinWorkers] (0 allowed) and [PoolConfig.MaxWorkers]: a task
// or a [Manager.Reserve] that would wait starts workers, and a worker above
// the minimum idle for [PoolConfig.ScaleDownAfter] is stopped. A queue
// consumer needs nothing more to scale a pool on its queue's depth: its
// reservations are the demand.
package host
