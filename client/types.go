package client

import (
	"encoding/json"
	"time"
)

// Result is the answer of a task run synchronously, on a pool ([Client.Run])
// or in a one-shot process ([Client.RunOnce]).
type Result struct {
	// ID is the task's id, as in the server's log.
	ID string `json:"id"`
	// Pool is the pool that ran it; empty for a one-shot.
	Pool string `json:"pool,omitempty"`
	// Plugin is the plugin that ran it.
	Plugin string `json:"plugin"`
	// WorkerPID is the process that ran it.
	WorkerPID int `json:"workerPid"`
	// DurationMs is the time from acceptance to answer, in milliseconds.
	DurationMs float64 `json:"durationMs"`
	// Output is the plugin's output.
	Output json.RawMessage `json:"result"`
	// Host names the cluster's host that ran the task when it was not the
	// one asked (the X-Wpm-Host header).
	Host string `json:"-"`
}

// RunOptions are a one-shot's options; zero values take the server's
// oneShot defaults.
type RunOptions struct {
	// MemoryLimitMB caps the process's resident memory.
	MemoryLimitMB int
	// Timeout bounds the run from acceptance; the server cuts it to
	// oneShot.timeout.
	Timeout time.Duration
}

// SubmitRequest is an asynchronous task: on Pool, or in a one-shot
// process of Plugin (exactly one of them).
type SubmitRequest struct {
	// Pool is the pool to run the task on.
	Pool string
	// Plugin is the plugin to run the task in a one-shot process of.
	Plugin string
	// Input is the task's JSON input.
	Input json.RawMessage
	// RunOptions apply to a one-shot.
	RunOptions
	// IdempotencyKey makes a repeat within the server's async.dedupWindow
	// answer the first task (and lets the client retry the submit).
	IdempotencyKey string
	// CallbackURL receives a POST of the task's final record; it must be
	// under the server's async.callbackAllow.
	CallbackURL string
	// Delay, or RunAt, delays the task: it is scheduled until then
	// (?delay, ?runAt; at most the server's async.maxDelay). A RunAt in
	// the past runs now.
	Delay time.Duration
	RunAt time.Time
	// Priority is high, normal or low: where the task waits among its
	// pool's waiting ones; empty means normal.
	Priority string
}

// TaskState is where an asynchronous task is.
type TaskState string

// The states of an asynchronous task.
const (
	StateScheduled TaskState = "scheduled"
	StateQueued    TaskState = "queued"
	StateRunning   TaskState = "running"
	StateSucceeded TaskState = "succeeded"
	StateFailed    TaskState = "failed"
	StateCanceled  TaskState = "canceled"
)

// Ended reports whether s is a final state.
func (s TaskState) Ended() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCanceled
}

// Accepted is the answer to an asynchronous submit.
type Accepted struct {
	// ID is the task's id.
	ID string `json:"id"`
	// State is the task's state; a repeated Idempotency-Key answers the
	// first task's current state.
	State TaskState `json:"state"`
	// Raw is the answer as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// Task is an asynchronous task's record.
type Task struct {
	// ID is the task's id.
	ID string `json:"id"`
	// Pool is the pool that runs it; empty for a one-shot.
	Pool string `json:"pool,omitempty"`
	// Plugin is the plugin that runs it.
	Plugin string `json:"plugin,omitempty"`
	// State is where it is.
	State TaskState `json:"state"`
	// Attempts counts the times it started running.
	Attempts int `json:"attempts"`
	// CreatedAt is when it was accepted.
	CreatedAt time.Time `json:"createdAt"`
	// StartedAt is when its last attempt started.
	StartedAt *time.Time `json:"startedAt,omitempty"`
	// FinishedAt is when it ended.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Host is the host (nats.name) that ran its last attempt.
	Host string `json:"host,omitempty"`
	// WorkerPID is the process that ran its last attempt.
	WorkerPID int `json:"workerPid,omitempty"`
	// Progress is the plugin's latest progress report.
	Progress *Progress `json:"progress,omitempty"`
	// Result is the plugin's output, once succeeded.
	Result json.RawMessage `json:"result,omitempty"`
	// ResultSize is set when the result was kept beside the record; a
	// task read alone shows it whole, a listed one leaves it out.
	ResultSize int64 `json:"resultSize,omitempty"`
	// Error says why it failed or was canceled, or why its last attempt
	// failed while it waits for a retry.
	Error *TaskError `json:"error,omitempty"`
	// CallbackURL receives a POST of the final record.
	CallbackURL string `json:"callbackUrl,omitempty"`
	// RunAt is when a delayed task is due.
	RunAt *time.Time `json:"runAt,omitempty"`
	// Schedule names the schedule whose tick made the task.
	Schedule string `json:"schedule,omitempty"`
	// Priority is the task's priority: high, normal or low.
	Priority string `json:"priority,omitempty"`
	// Input is the task's input; one over 16 KiB is kept beside the
	// record: a task read alone shows it whole, a listed one has only
	// InputSize.
	Input json.RawMessage `json:"input,omitempty"`
	// InputSize is set when the input was kept beside the record.
	InputSize int64 `json:"inputSize,omitempty"`
	// Options are a one-shot's run options, as submitted.
	Options *TaskOptions `json:"options,omitempty"`
	// RetryOf is the task this one retries ([Client.Retry]).
	RetryOf string `json:"retryOf,omitempty"`
	// RetriedBy is the task that retries this one.
	RetriedBy string `json:"retriedBy,omitempty"`
	// History lists its attempts, oldest first: the latest 20 ended ones
	// and the running one (Attempts counts them all).
	History []Attempt `json:"history,omitempty"`
	// Raw is the record as the server sent it.
	Raw json.RawMessage `json:"-"`
}

// Attempt is one run of a task: where and when it ran, and how it ended.
type Attempt struct {
	// Host is the host (nats.name) that ran it.
	Host string `json:"host,omitempty"`
	// WorkerPID is the worker process that ran it, once it ended; 0 when
	// it never reached one.
	WorkerPID int `json:"workerPid,omitempty"`
	// StartedAt is when it started.
	StartedAt time.Time `json:"startedAt"`
	// FinishedAt is when it ended; nil while it runs.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Cause says how it ended: "ok", an error code (worker_crashed,
	// timeout, result_too_large...), "interrupted" (wpm stopped; the task
	// runs again), "lost" (its host stopped answering; the task was
	// started again) or "canceled"; empty while it runs.
	Cause string `json:"cause,omitempty"`
	// Message says more about the cause.
	Message string `json:"message,omitempty"`
}

// TaskOptions are a one-shot's run options in its record.
type TaskOptions struct {
	// MemoryLimitMB caps the process's memory.
	MemoryLimitMB int `json:"memoryLimitMB,omitempty"`
	// Timeout is a Go duration.
	Timeout string `json:"timeout,omitempty"`
}

// Err returns the task's error as an [*Error] (with TaskID set and no
// StatusCode), so that errors.Is compares it with the sentinels; nil when
// the task has no error.
func (t *Task) Err() error {
	if t.Error == nil {
		return nil
	}
	return &Error{Code: t.Error.Code, Message: t.Error.Message, Detail: t.Error.Detail, TaskID: t.ID}
}

// Progress is a plugin's progress report.
type Progress struct {
	// Fraction is the share done, from 0 to 1.
	Fraction float64 `json:"fraction"`
	// Message says what the plugin is doing.
	Message string `json:"message,omitempty"`
}

// TaskError is the error in a task's record.
type TaskError struct {
	// Code is the API's code, or result_too_large.
	Code Code `json:"code"`
	// Message says what happened.
	Message string `json:"message"`
	// Detail holds a dead worker's last stderr lines.
	Detail string `json:"detail,omitempty"`
}

// ListOptions filter [Client.ListTasks] and [Client.TaskPage]; zero
// values filter nothing.
type ListOptions struct {
	// State keeps only tasks in this state.
	State TaskState
	// Pool keeps only this pool's tasks.
	Pool string
	// Plugin keeps only this plugin's tasks.
	Plugin string
	// Schedule keeps only the tasks this schedule made.
	Schedule string
	// Limit is how many tasks at most (the server's default is 100).
	Limit int
	// Cursor is the Next of the page before; empty for the first page.
	Cursor string
}

// TaskPage is a page of tasks, newest first.
type TaskPage struct {
	// Tasks are the page's tasks.
	Tasks []Task
	// Next is the cursor of the next page; empty on the last.
	Next string
}

// PoolList is the answer of GET /v1/pools.
type PoolList struct {
	// Pools are the pools this server runs, by name.
	Pools []Pool `json:"pools"`
	// Cluster sums each pool over the cluster's live hosts, by name;
	// nil without asynchronous tasks.
	Cluster map[string]ClusterPool `json:"cluster,omitempty"`
}

// Pool is a pool's settings and live state.
type Pool struct {
	// Name is the pool's name; Plugin the plugin its workers run.
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Size is how many workers it keeps running; Concurrency how many
	// tasks one worker runs at once.
	Size        int `json:"size"`
	Concurrency int `json:"concurrency"`
	// MinWorkers and MaxWorkers bound the pool's size (both its workers
	// for a fixed-size pool); Target is where it is between them now, and
	// ScaleDownAfter (a Go duration) how long a worker above the minimum
	// may idle.
	MinWorkers     int    `json:"minWorkers"`
	MaxWorkers     int    `json:"maxWorkers"`
	Target         int    `json:"target"`
	ScaleDownAfter string `json:"scaleDownAfter"`
	// MemoryLimitMB caps each worker's resident memory; 0 means none.
	MemoryLimitMB int `json:"memoryLimitMB"`
	// QueueLimit is how many tasks may wait for a worker.
	QueueLimit int `json:"queueLimit"`
	// TaskTimeout is a Go duration, like 5m0s; 0s means none.
	TaskTimeout string `json:"taskTimeout"`
	// MaxTasksPerWorker and MaxWorkerAge (a Go duration) recycle a worker;
	// 0 and 0s mean never.
	MaxTasksPerWorker int    `json:"maxTasksPerWorker"`
	MaxWorkerAge      string `json:"maxWorkerAge"`
	// QueueDepth is how many tasks wait for a worker.
	QueueDepth int `json:"queueDepth"`
	// OldestQueuedMs is how long the oldest of them has waited.
	OldestQueuedMs float64 `json:"oldestQueuedMs"`
	// Running is how many tasks are on workers.
	Running int `json:"running"`
	// Ready is how many workers take tasks.
	Ready int `json:"ready"`
	// Degraded is set when fewer workers are ready than Size.
	Degraded bool `json:"degraded"`
	// Paused is set while the pool is paused, for the whole cluster
	// ([Client.Pause]).
	Paused bool `json:"paused"`
	// LastError is the last failure to start a worker, and LastErrorAt
	// when it was.
	LastError   string     `json:"lastError,omitempty"`
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	// Workers are the pool's slots.
	Workers []Worker `json:"workers"`
}

// Worker is one slot of a pool.
type Worker struct {
	// Slot is the worker's place in its pool, from 0.
	Slot int `json:"slot"`
	// PID is the process's pid; 0 while starting.
	PID int `json:"pid"`
	// State is starting, idle, busy or stopping.
	State string `json:"state"`
	// Running is how many tasks are on it; TasksDone how many it did.
	Running   int `json:"running"`
	TasksDone int `json:"tasksDone"`
	// RSSBytes is its resident memory; 0 unless ready.
	RSSBytes uint64 `json:"rssBytes"`
	// UptimeMs is how long it has run, in milliseconds.
	UptimeMs float64 `json:"uptimeMs"`
	// Restarts counts the workers this slot has replaced.
	Restarts int `json:"restarts"`
	// LastExit says why the slot's previous worker went.
	LastExit string `json:"lastExit,omitempty"`
}

// ClusterPool is one pool summed over the cluster's live hosts.
type ClusterPool struct {
	// Hosts is how many live hosts run it.
	Hosts int `json:"hosts"`
	// Workers, Ready, Capacity, Running and Queued are the sums of
	// [HostPool]'s.
	Workers  int `json:"workers"`
	Ready    int `json:"ready"`
	Capacity int `json:"capacity"`
	Running  int `json:"running"`
	Queued   int `json:"queued"`
	// Paused is set while the pool is paused.
	Paused bool `json:"paused"`
}

// Plugin is a plugin binary in the server's plugins directory.
type Plugin struct {
	// Name is the plugin's name; Path the binary's absolute path.
	Name string `json:"name"`
	Path string `json:"path"`
	// SizeBytes, ModTime and SHA256 (hex) describe the binary.
	SizeBytes int64     `json:"sizeBytes"`
	ModTime   time.Time `json:"modTime"`
	SHA256    string    `json:"sha256"`
	// Protocol is how the server talks to it: "netrpc" (a Go plugin
	// built with wpm's shared package) or "grpc" (any other, as the
	// Python SDK's).
	Protocol string `json:"protocol,omitempty"`
	// Pools are the pools that run it.
	Pools []string `json:"pools"`
}

// Host is a live host of the cluster.
type Host struct {
	// Name identifies the host (nats.name); Address is its http.addr.
	Name    string `json:"name"`
	Address string `json:"address"`
	// Role is all, api or worker.
	Role string `json:"role"`
	// Version is its wpm's version; StartedAt when it started.
	Version   string    `json:"version"`
	StartedAt time.Time `json:"startedAt"`
	// SeenAt is its last heartbeat.
	SeenAt time.Time `json:"seenAt"`
	// Pools are the pools it runs.
	Pools []HostPool `json:"pools"`
	// Plugins are the plugins it runs one-shots of.
	Plugins []string `json:"plugins"`
	// Self marks the host that answered.
	Self bool `json:"self,omitempty"`
}

// HostPool is one pool of a host.
type HostPool struct {
	// Name is the pool's name; Plugin the plugin its workers run.
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	// Workers is its configured size, Ready the workers that take tasks,
	// Capacity Ready times its concurrency.
	Workers  int `json:"workers"`
	Ready    int `json:"ready"`
	Capacity int `json:"capacity"`
	// Running and Queued are the tasks on its workers and waiting.
	Running int `json:"running"`
	Queued  int `json:"queued"`
	// TaskTimeoutMs is its taskTimeout; 0 means none.
	TaskTimeoutMs int64 `json:"taskTimeoutMs"`
	// Paused is set while the pool is paused on the host, as of its last
	// heartbeat (now for the host that answers).
	Paused bool `json:"paused"`
}

// Readiness is the answer of GET /readyz.
type Readiness struct {
	// Ready is set when every pool has a ready worker.
	Ready bool `json:"ok"`
	// Pools says, by pool, "ready", "degraded: …" or why it is not ready.
	Pools map[string]string `json:"pools"`
}
