// Package queue runs wpm's asynchronous tasks on NATS JetStream: a task
// submitted with ?async=true is stored durably, answered 202 at once, run
// later on a pool worker (or as a one-shot) when the pool has room, and
// its record (state, attempts, result or error) read, awaited, listed or
// canceled by its id.
//
// Layout in JetStream:
//
//   - stream WPM_TASKS, work-queue retention, file storage, subjects
//     wpm.tasks.pool.<pool> and wpm.tasks.oneshot; one message per task
//     (its id as message id), removed when acknowledged;
//   - one durable pull consumer per pool ("pool-<hex of the name>") and one
//     for one-shots ("oneshot"), with explicit acks;
//   - the stream allows message schedules: a delayed task ([Request.RunAt])
//     waits as an "@at" schedule on wpm.tasks.delay.<id>, and a
//     [Schedule] ticks from wpm.tasks.sched.<hex of the name> into
//     wpm.tasks.tick.<hex of the name>, taken through the one durable
//     consumer "ticks"; the schedules are kept in the bucket
//     wpm_schedules (schedule.go);
//   - key-value bucket wpm_tasks: each task's record under its id, and
//     idempotency keys under idem.<hex> (the first 16 bytes of the key's
//     SHA-256); the bucket has no TTL of its own: an ended record and a key
//     carry theirs (async.retention, the dedup window).
//
// A runner per pool takes a message when its pool has a free place, and
// reserves that place ([host.Manager.TryReserve]) before it runs the task;
// when no place is free it takes a message first and waits for a place a
// bounded time (a third of the ack wait) before it hands the message back,
// so the queue stays in JetStream and the pool's own queue stays short. Delivery is at least once: a task running
// when wpm dies runs again after a restart (its attempts show it, and its
// history: the first attempt lost).
//
// An ended task with a callback URL (under [Options.CallbackAllow],
// compared as parsed URLs) is posted there, signed with HMAC-SHA256 when
// [Options.CallbackSecret] is set; pending callbacks are stored in NATS
// and sent at least once, after a restart too. [Engine.Collector] exports
// Prometheus metrics.
//
// By default the NATS server is embedded in the process with no listening
// port; [Options.URL] uses an external one instead.
package queue
