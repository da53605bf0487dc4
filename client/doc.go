// Package client is a Go client of wpm's HTTP API (the OpenAPI document
// is served at /v1/openapi.yaml): run a task on a pool or in a one-shot
// process, submit asynchronous tasks and read, await, list and cancel
// them, read pools, plugins and the cluster, probe health and readiness,
// reload the configuration, and follow the Server-Sent Events streams.
//
// # Requests and answers
//
// Every method takes a [context.Context] first and returns a typed answer.
// Task input and output are JSON values the client passes through as
// [encoding/json.RawMessage]. A [Client] is safe for concurrent use.
//
// # Errors
//
// An answer outside 2xx is an [*Error] carrying the API's code, message
// and detail, the task id when the server made one, the HTTP status and
// the Retry-After the server asked for. Compare it with the sentinels:
//
//	res, err := c.Run(ctx, "CPU", []byte(`{"duration": 100}`))
//	switch {
//	case errors.Is(err, client.ErrQueueFull):  // retried already; back off
//	case errors.Is(err, client.ErrUnknownPool): // a typo in the pool's name
//	}
//
// A failure to reach the server is the [net/http] client's error, which
// names the method and URL.
//
// # Retries
//
// A 429 or 503 answer with a Retry-After header is retried after the time
// it asks for (at most [WithRetries]'s count, by default 3, and only while
// the wait fits both the configured bound and the context's deadline) when
// repeating the request can not do the work twice:
//
//   - idempotent requests: GET, and DELETE (canceling twice ends the same
//     task once);
//   - an asynchronous submit with an Idempotency-Key: the server answers a
//     repeat with the first task;
//   - any request answered queue_full or overloaded: the server refused it
//     before running anything (a full queue answers at once; an overloaded
//     server read the body and dropped it).
//
// Other answers are returned at once: an asynchronous submit without a key
// answered 503 async_unavailable or storage_full (the task may have been
// stored), a reload, a 503 shutting_down (it has no Retry-After).
//
// # Events
//
// [Client.Events] and [Client.TaskEvents] return iterators over the
// streams of GET /v1/events and GET /v1/tasks/{id}/events. A stream that
// breaks is opened again with Last-Event-ID, so no kept event is lost or
// repeated; a task's stream ends after its task.finished event.
package client
