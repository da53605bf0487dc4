package queue

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/wpmdev/wpm/host"
)

// State is where a task is in its life.
type State string

// A task's states. Queued and running are live; the others are ends.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCanceled  State = "canceled"
	// StateScheduled is a delayed task waiting for its runAt (schedule.go).
	StateScheduled State = "scheduled"
)

// States lists every state, live ones first.
var States = []State{StateScheduled, StateQueued, StateRunning, StateSucceeded, StateFailed, StateCanceled}

// Ended reports whether s is an end state.
func (s State) Ended() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCanceled
}

// Task is a task's record, as GET /v1/tasks/{id} shows it.
type Task struct {
	// ID identifies the task.
	ID string `json:"id"`
	// Pool is the pool that runs it; empty for a one-shot.
	Pool string `json:"pool,omitempty"`
	// Plugin is the plugin that runs it.
	Plugin string `json:"plugin,omitempty"`
	// State is where the task is.
	State State `json:"state"`
	// Attempts counts the times the task started running.
	Attempts int `json:"attempts"`
	// CreatedAt is when the task was accepted.
	CreatedAt time.Time `json:"createdAt"`
	// StartedAt is when its last attempt started.
	StartedAt *time.Time `json:"startedAt,omitempty"`
	// FinishedAt is when it ended.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Host is the host that ran its last attempt (nats.name).
	Host string `json:"host,omitempty"`
	// WorkerPID is the worker process that ran its last attempt.
	WorkerPID int `json:"workerPid,omitempty"`
	// Progress is the plugin's latest progress report, if it made any.
	Progress *Progress `json:"progress,omitempty"`
	// Result is the plugin's output, once succeeded.
	Result json.RawMessage `json:"result,omitempty"`
	// ResultSize is the size of a result too large to keep in the record,
	// kept beside it; GET /v1/tasks/{id} shows it whole.
	ResultSize int64 `json:"resultSize,omitempty"`
	// Error says why the task failed or was canceled, or why its last
	// attempt failed while it waits for a retry.
	Error *TaskError `json:"error,omitempty"`
	// CallbackURL receives a POST of the final record.
	CallbackURL string `json:"callbackUrl,omitempty"`
	// RunAt is when a delayed task is due (?delay, ?runAt).
	RunAt *time.Time `json:"runAt,omitempty"`
	// Schedule names the schedule whose tick made the task.
	Schedule string `json:"schedule,omitempty"`
	// TraceID is the OpenTelemetry trace the task was submitted in, when
	// tracing is on (trace.go).
	TraceID string `json:"traceId,omitempty"`
	// Priority is the task's priority: high, normal or low (empty in
	// records of older versions: normal).
	Priority host.TaskPriority `json:"priority,omitempty"`

	// Input is the task's JSON input, kept so that the task can be shown
	// and retried; an input over maxInlineInput is kept beside the record
	// (InputSize), and GET /v1/tasks/{id} shows it whole (input.go).
	Input json.RawMessage `json:"input,omitempty"`
	// InputSize is the size of an input kept beside the record.
	InputSize int64 `json:"inputSize,omitempty"`
	// Options are a one-shot's run options, kept for a retry.
	Options *TaskOptions `json:"options,omitempty"`
	// RetryOf is the task this one retries (POST /v1/tasks/{id}/retry).
	RetryOf string `json:"retryOf,omitempty"`
	// RetriedBy is the task that retries this one.
	RetriedBy string `json:"retriedBy,omitempty"`
	// History lists the task's attempts, oldest first: the latest
	// maxHistory (20) ended ones and the running one (Attempts counts
	// them all). Empty in records of older versions.
	History []Attempt `json:"history,omitempty"`
}

// Attempt is one run of a task: where and when it ran, and how it ended.
type Attempt struct {
	// Host is the host that ran it (nats.name).
	Host string `json:"host,omitempty"`
	// WorkerPID is the worker process that ran it, once it ended; 0 when
	// it never reached one.
	WorkerPID int `json:"workerPid,omitempty"`
	// StartedAt is when it started.
	StartedAt time.Time `json:"startedAt"`
	// FinishedAt is when it ended; nil while it runs.
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Cause says how it ended: CauseOK, an error code of the task's error
	// (worker_crashed, timeout, result_too_large...), CauseInterrupted,
	// CauseLost or CauseCanceled; empty while it runs.
	Cause string `json:"cause,omitempty"`
	// Message says more about the cause: the error's message, or why the
	// attempt was cut short.
	Message string `json:"message,omitempty"`
}

// The causes of an attempt's end other than an error code.
const (
	// CauseOK is an attempt that succeeded.
	CauseOK = "ok"
	// CauseInterrupted is an attempt handed back to the queue because
	// wpm was stopping; the task runs again.
	CauseInterrupted = "interrupted"
	// CauseLost is an attempt whose host stopped answering (it died, or
	// was cut off from NATS past async.ackWait): the task was started
	// again.
	CauseLost = "lost"
	// CauseCanceled is an attempt ended by a cancel of its task.
	CauseCanceled = "canceled"
)

// maxHistory is how many attempts a record keeps: the latest.
const maxHistory = 20

// startAttempt adds an attempt on host, started at at. An attempt still
// open (its host stopped answering, and the task was handed out again)
// is closed first as lost. A record keeps the latest maxHistory ended
// attempts and the running one: the oldest go as the new one starts, and
// as it ends (so that dropAttempt gives back the record as it was).
func (t *Task) startAttempt(host string, at time.Time) {
	h := slices.Clone(t.History) // never write into the array of the record it was copied from
	if n := len(h); n > 0 && h[n-1].FinishedAt == nil {
		h[n-1].FinishedAt, h[n-1].Cause = &at, CauseLost
		h[n-1].Message = fmt.Sprintf("host %s stopped answering while running the task (it died, or was cut off past async.ackWait); the task was started again", h[n-1].Host)
	}
	t.History = append(keepLatest(h, maxHistory), Attempt{Host: host, StartedAt: at})
}

// keepLatest returns the last n attempts of h.
func keepLatest(h []Attempt, n int) []Attempt {
	if len(h) > n {
		return slices.Delete(h, 0, len(h)-n)
	}
	return h
}

// endAttempt closes the open attempt, the last, at at with the worker's
// pid (0 to keep none), cause and message; with none open it does
// nothing.
func (t *Task) endAttempt(at time.Time, pid int, cause, message string) {
	n := len(t.History)
	if n == 0 || t.History[n-1].FinishedAt != nil {
		return
	}
	h := slices.Clone(t.History)
	h[n-1].FinishedAt, h[n-1].Cause, h[n-1].Message = &at, cause, message
	if pid != 0 {
		h[n-1].WorkerPID = pid
	}
	t.History = keepLatest(h, maxHistory)
}

// endAttemptAsRecorded closes the open attempt at at with the worker's
// pid, as the record now says it ended: with its error's code and
// message, or CauseOK.
func (t *Task) endAttemptAsRecorded(at time.Time, pid int) {
	if t.Error != nil {
		t.endAttempt(at, pid, string(t.Error.Code), t.Error.Message)
		return
	}
	t.endAttempt(at, pid, CauseOK, "")
}

// recauseAttempt changes the cause and message of the last attempt, once
// it ended.
func (t *Task) recauseAttempt(cause, message string) {
	if n := len(t.History); n > 0 && t.History[n-1].FinishedAt != nil {
		h := slices.Clone(t.History)
		h[n-1].Cause, h[n-1].Message = cause, message
		t.History = h
	}
}

// dropAttempt removes the open attempt, the last: it never ran.
func (t *Task) dropAttempt() {
	switch n := len(t.History); {
	case n == 0 || t.History[n-1].FinishedAt != nil:
	case n == 1:
		t.History = nil
	default:
		t.History = slices.Clone(t.History[:n-1])
	}
}

// Progress is a plugin's progress report on a task.
type Progress struct {
	// Fraction is the share done, from 0 to 1.
	Fraction float64 `json:"fraction"`
	// Message says what the plugin is doing.
	Message string `json:"message,omitempty"`
}

// TaskError is a task's error, in SPEC §3's shape.
type TaskError struct {
	// Code is an error code of the API's table, or result_too_large.
	Code host.ErrorCode `json:"code"`
	// Message says what happened and what to do.
	Message string `json:"message"`
	// Detail holds a dead worker's last stderr lines.
	Detail string `json:"detail,omitempty"`
}

// job is a task's message in the stream: what is needed to run it.
type job struct {
	ID            string          `json:"id"`
	Pool          string          `json:"pool,omitempty"`
	Plugin        string          `json:"plugin,omitempty"`
	Input         json.RawMessage `json:"input"`
	MemoryLimitMB int             `json:"memoryLimitMB,omitempty"`
	Timeout       time.Duration   `json:"timeout,omitempty"`
	CreatedAt     time.Time       `json:"createdAt"`
	CallbackURL   string          `json:"callbackUrl,omitempty"`
	// Forwarded marks a synchronous task run through the queue for a
	// caller on another host: its result has no async.maxResultBytes
	// bound, as it has none when run locally.
	Forwarded bool `json:"forwarded,omitempty"`
	// RunAt and Schedule are the record's (schedule.go).
	RunAt    *time.Time `json:"runAt,omitempty"`
	Schedule string     `json:"schedule,omitempty"`
	// Priority is the task's priority; empty (older versions) is normal.
	Priority host.TaskPriority `json:"priority,omitempty"`
	// RetryOf is the task this one retries.
	RetryOf string `json:"retryOf,omitempty"`
}

// record returns a new job's first record.
func (j job) record() Task {
	t := Task{ID: j.ID, Pool: j.Pool, Plugin: j.Plugin, State: StateQueued, CreatedAt: j.CreatedAt, CallbackURL: j.CallbackURL,
		RunAt: j.RunAt, Schedule: j.Schedule, Priority: j.Priority}
	if j.RunAt != nil && j.RunAt.After(time.Now()) {
		t.State = StateScheduled
	}
	j.keep(&t)
	return t
}

// now returns the current time in UTC, as records keep it.
func now() *time.Time {
	t := time.Now().UTC()
	return &t
}

// encode marshals v as JSON as it is: encoding/json's default escapes <, >
// and & (in raw results too) to six bytes each, which let a result that
// fits become a record that does not.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
