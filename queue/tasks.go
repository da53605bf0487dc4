package queue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/wpmdev/wpm/host"
)

// Request is a task to run asynchronously: on Pool, or else as a one-shot
// of Plugin.
type Request struct {
	// Pool names the pool; empty for a one-shot.
	Pool string
	// Plugin names the one-shot's plugin, when Pool is empty.
	Plugin string
	// Input is the task's JSON input.
	Input []byte
	// Run tunes a one-shot.
	Run host.RunOptions
	// IdempotencyKey, when not empty, makes a repeat within the dedup
	// window return the first task.
	IdempotencyKey string
	// CallbackURL, when not empty, receives a POST of the final record;
	// it must start with a prefix of Options.CallbackAllow.
	CallbackURL string
	// Priority orders the task among its pool's waiting ones
	// (priority.go); empty means normal.
	Priority host.TaskPriority

	// RunAt, when set and in the future, delays the task until then
	// (schedule.go); one in the past runs now.
	RunAt time.Time
	// Schedule names the schedule a tick of which made the task.
	Schedule string

	// forwarded is set by RunRemote (job.Forwarded).
	forwarded bool
	// retryOf is set by Retry: the task retried (retry.go). id, when set,
	// is the task's id: its retry's (Retry), a schedule's tick's.
	retryOf, id string
}

// Submit checks req without running it (unknown pool or plugin, input too
// large), stores it durably and returns its record, queued. With an
// idempotency key seen within the dedup window it returns the first task's
// record instead.
func (e *Engine) Submit(ctx context.Context, req Request) (Task, error) {
	v, err := e.submit(ctx, req)
	return v, e.unavailable(err)
}

// submit is Submit before NATS errors are translated.
func (e *Engine) submit(ctx context.Context, req Request) (Task, error) {
	if e.full() {
		return Task{}, e.errFull(nil)
	}
	j, err := e.newJob(req)
	if err != nil {
		return Task{}, err
	}
	ctx, span := e.startSpan(ctx, SpanSubmit, trace.SpanKindProducer, j.Pool, j.Plugin)
	defer span.End()
	span.SetAttributes(host.AttrTaskID.String(j.ID))
	if req.IdempotencyKey != "" {
		first, found, err := e.claimKey(ctx, req.IdempotencyKey, j.ID, req.fingerprint())
		if err != nil || found {
			return first, err
		}
	}
	if e.runsHere(j.Pool) {
		if err := e.ensureRunner(ctx, j.Pool); err != nil {
			return Task{}, err
		}
	}
	if e.nc.Status() != nats.CONNECTED {
		return Task{}, fmt.Errorf("%w: NATS is not reachable (%s); retry later", ErrUnavailable, e.nc.Status())
	}
	data, err := encode(j)
	if err != nil {
		return Task{}, err
	}
	if limit := e.maxMessage(); int64(len(data)) > limit {
		return Task{}, fmt.Errorf("%w: the task is %d bytes, over the NATS server's max_payload of %d; send a smaller task or run it synchronously", ErrTooLarge, len(data), limit)
	}
	if err := e.keepInput(ctx, j); err != nil {
		return Task{}, err
	}
	subj := subject(j.Pool) // the runner's signal
	if err := e.publishJob(ctx, j, subjectOf(j.Pool, j.Priority), data); err != nil {
		return Task{}, fmt.Errorf("store the task in the queue: %w", err)
	}
	rec := j.record()
	rec.TraceID = e.traceID(ctx)
	switch err := e.create(ctx, rec); {
	case err == nil:
		e.indexTask(ctx, rec)
	case !errors.Is(err, jetstream.ErrKeyExists):
		return Task{}, err // the runner makes the record from the message
	}
	e.notePriority(j.Pool, j.Priority)
	e.signal(subj)
	e.wakeAllPrio(j.Pool, j.Priority)
	e.counters.submitted.WithLabelValues(j.Pool).Inc()
	if rec.State == StateScheduled {
		e.counters.delayed.WithLabelValues(j.Pool).Inc()
	}
	return rec, nil
}

// newJob checks req and makes its job.
func (e *Engine) newJob(req Request) (job, error) {
	var callback string
	if req.CallbackURL != "" {
		var err error
		if callback, err = e.checkCallback(req.CallbackURL); err != nil {
			return job{}, err
		}
	}
	j := job{ID: req.taskID(), Pool: req.Pool, Input: req.Input, CreatedAt: time.Now().UTC(),
		MemoryLimitMB: req.Run.MemoryLimitMB, Timeout: req.Run.Timeout, CallbackURL: callback, Forwarded: req.forwarded,
		Priority: host.Priorities[req.Priority.Rank()], RetryOf: req.retryOf}
	j.withSchedule(req)
	if req.Pool != "" {
		plugin, err := e.checkPool(req.Pool)
		if err != nil {
			return job{}, err
		}
		j.Plugin = plugin
		return j, nil
	}
	plugins, err := e.mgr.Plugins()
	if err != nil {
		return job{}, err
	}
	name := path.Base(path.Clean("/" + req.Plugin))
	names := make([]string, len(plugins))
	for i, p := range plugins {
		names[i] = p.Name
	}
	if !slices.Contains(names, name) && !e.remotePlugin(name) {
		if e.ViewStale() {
			return job{}, e.errStaleView(fmt.Sprintf("plugin %q", req.Plugin))
		}
		return job{}, fmt.Errorf("%w: no plugin %q in the plugins directory; known plugins: %s", host.ErrUnknownPlugin, req.Plugin, strings.Join(names, ", "))
	}
	j.Plugin = req.Plugin
	return j, nil
}

// idempotency is the value of an idempotency key: the first task's id,
// and the fingerprint of the request that claimed it.
type idempotency struct {
	ID          string    `json:"id"`
	At          time.Time `json:"at"`
	Fingerprint string    `json:"fingerprint"`
}

// fingerprint identifies what req asks for: where it runs, how, and its
// input. An idempotency key is bound to it, as the IETF Idempotency-Key
// draft binds a key to its request's route and body.
func (req Request) fingerprint() string {
	h := sha256.New()
	fields := []any{req.Pool, req.Plugin, req.Run.MemoryLimitMB, req.Run.Timeout, req.CallbackURL}
	if p := req.Priority.Rank(); p != 1 {
		fields = append(fields, p) // normal keeps older versions' fingerprints
	}
	head, _ := json.Marshal(fields)
	h.Write(head)
	h.Write([]byte{0})
	h.Write(req.Input)
	return hex.EncodeToString(h.Sum(nil))
}

// claimKey records that the idempotency key belongs to the task id, made
// for the request whose fingerprint is fp. When another task holds it
// within the dedup window, it returns that task, or ErrKeyReused when that
// task was made for another request.
func (e *Engine) claimKey(ctx context.Context, key, id, fp string) (Task, bool, error) {
	sum := sha256.Sum256([]byte(key))
	k := "idem." + hex.EncodeToString(sum[:16])
	val, _ := json.Marshal(idempotency{ID: id, At: time.Now().UTC(), Fingerprint: fp})
	// The key is no task record, but its writes follow modify's policy
	// with casOnce: casTries writes refused because the key changed
	// meanwhile, a failing read or write returned at once.
	for range casTries {
		_, err := e.kv.Create(ctx, k, val, jetstream.KeyTTL(e.opts.DedupWindow))
		if err == nil {
			return Task{}, false, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Task{}, false, fmt.Errorf("record the idempotency key: %w", err)
		}
		entry, err := e.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return Task{}, false, fmt.Errorf("read the idempotency key: %w", err)
		}
		var first idempotency
		if json.Unmarshal(entry.Value(), &first) == nil && time.Since(first.At) < e.opts.DedupWindow {
			if first.Fingerprint != fp {
				return Task{}, false, fmt.Errorf("%w: the Idempotency-Key %q was used within async.dedupWindow (%s) for another request (task %s, another pool, plugin, option or body); use a new key for a new request", ErrKeyReused, clipKey(key), e.opts.DedupWindow, first.ID)
			}
			t, _, err := e.get(ctx, first.ID)
			if err == nil {
				return t, true, nil
			}
		}
		switch _, err := e.putTTL(ctx, k, val, entry.Revision(), e.opts.DedupWindow); {
		case err == nil:
			return Task{}, false, nil
		case !conflict(err):
			return Task{}, false, fmt.Errorf("record the idempotency key: %w", err)
		}
	}
	return Task{}, false, errors.New("the idempotency key is being claimed by another submit at the same time; retry")
}

// Get returns the task's record, or ErrUnknownTask.
func (e *Engine) Get(ctx context.Context, id string) (Task, error) {
	t, _, err := e.get(ctx, id)
	if err != nil {
		return t, err
	}
	t, err = e.withResult(ctx, e.withInput(ctx, t))
	return t, e.unavailable(err)
}

// get returns the task's record and its revision.
func (e *Engine) get(ctx context.Context, id string) (Task, uint64, error) {
	if !validID(id) {
		return Task{}, 0, unknownTask(id)
	}
	entry, err := e.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Task{}, 0, unknownTask(id)
	}
	if err != nil {
		return Task{}, 0, e.unavailable(fmt.Errorf("read task %s: %w", id, err))
	}
	var t Task
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		return Task{}, 0, fmt.Errorf("task %s has a broken record: %w", id, err)
	}
	return t, entry.Revision(), nil
}

func unknownTask(id string) error {
	return fmt.Errorf("%w: no task %q; its record may have expired (async.retention)", ErrUnknownTask, id)
}

// Wait returns the task's record once it has ended, or its record when d
// has passed or ctx ends first.
func (e *Engine) Wait(ctx context.Context, id string, d time.Duration) (Task, error) {
	if d <= 0 {
		return e.Get(ctx, id)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t, err := e.follow(ctx, id, 0, nil)
	if err == nil {
		t, err = e.withResult(ctx, e.withInput(ctx, t))
	}
	return t, e.unavailable(err)
}

// follow reads task id's record, then watches it until it has ended or ctx
// ends; with tick > 0 it also stops when giveUp, called with the latest
// record every tick, says so. It returns the latest record; an error only
// when the record can not be read or watched.
func (e *Engine) follow(ctx context.Context, id string, tick time.Duration, giveUp func(Task) bool) (Task, error) {
	t, err := e.Get(ctx, id)
	if err != nil || t.State.Ended() {
		return t, err
	}
	w, err := e.kv.Watch(ctx, id)
	if err != nil {
		return t, fmt.Errorf("watch task %s: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	var ticks <-chan time.Time
	if tick > 0 {
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		ticks = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return t, nil
		case <-ticks:
			if giveUp(t) {
				return t, nil
			}
		case entry, ok := <-w.Updates():
			if !ok {
				return t, nil
			}
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			var next Task
			if json.Unmarshal(entry.Value(), &next) != nil {
				continue
			}
			t = next
			if t.State.Ended() {
				return t, nil
			}
		}
	}
}

// Filter selects tasks for List and Page.
type Filter struct {
	// State, when not empty, keeps tasks in that state.
	State State
	// Pool, when not empty, keeps tasks of that pool.
	Pool string
	// Plugin, when not empty, keeps tasks of that plugin.
	Plugin string
	// Schedule, when not empty, keeps tasks that schedule made.
	Schedule string
	// Limit is how many tasks to return at most; 0 means 100.
	Limit int
	// Cursor, when not empty, is a Page's Next: the page goes on from
	// there.
	Cursor string
}

// List returns the tasks that pass f, newest first: the first page of
// Page.
func (e *Engine) List(ctx context.Context, f Filter) ([]Task, error) {
	p, err := e.Page(ctx, f)
	return p.Tasks, err
}

// Cancel ends a queued or running task as canceled: a queued one never
// runs, a running one has its worker killed and replaced. An ended task
// gives ErrTaskEnded with its record.
func (e *Engine) Cancel(ctx context.Context, id string) (Task, error) {
	v, err := e.cancel(ctx, id, "the task was canceled by DELETE /v1/tasks/"+id, CauseCanceled)
	return v, e.unavailable(err)
}

// cancel is Cancel before NATS errors are translated, with why as the
// task's error message; a running task's attempt ends with cause and why.
func (e *Engine) cancel(ctx context.Context, id, why, cause string) (Task, error) {
	t, _, err := e.modify(ctx, Task{ID: id}, 0, casOnce, func(t *Task) error {
		if t.State.Ended() {
			return fmt.Errorf("%w: task %s is %s already; only scheduled, queued and running tasks can be canceled", ErrTaskEnded, id, t.State)
		}
		t.State, t.FinishedAt = StateCanceled, now()
		t.Error = &TaskError{Code: host.CodeCanceled, Message: why}
		t.endAttempt(*t.FinishedAt, 0, cause, why) // a running task's: its worker is killed
		return nil
	})
	if errors.Is(err, ErrTaskEnded) {
		return t, err
	}
	if err != nil {
		return Task{}, err
	}
	e.stopLocal(id)
	e.unschedule(ctx, t)                        // a delayed task's message never comes
	_ = e.nc.Publish(cancelSubject, []byte(id)) // the host running it stops it
	e.counters.ended.WithLabelValues(t.Pool, string(t.State)).Inc()
	if err := e.storeCallback(ctx, t); err != nil {
		// The task's message, when it is next seen, stores it.
		e.logger.Warn("can not store a canceled task's callback now", "task", id, "error", err)
	}
	return t, nil
}

// errCanceled is the cause of a running task's context when it is canceled.
var errCanceled = fmt.Errorf("%w: canceled by DELETE /v1/tasks/{id}", context.Canceled)

// create stores a new record; it fails with jetstream.ErrKeyExists when
// the task has one.
func (e *Engine) create(ctx context.Context, t Task) error {
	b, err := encode(t)
	if err != nil {
		return err
	}
	if _, err := e.kv.Create(ctx, t.ID, b); err != nil {
		return fmt.Errorf("store the record of task %s: %w", t.ID, err)
	}
	return nil
}

// putTTL replaces key's value at revision rev, like KeyValue.Update, with
// a value that the server removes ttl after this write, and returns its
// new revision. It fails with an error that conflict reports when the
// key changed since rev.
func (e *Engine) putTTL(ctx context.Context, key string, val []byte, rev uint64, ttl time.Duration) (uint64, error) {
	msg := &nats.Msg{Subject: "$KV." + bucketName + "." + key, Data: val}
	ack, err := e.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttl))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// newID returns a random 16-hex-digit task id, like host's.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id could be a task id: 16 lower-case hex digits.
func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// clipKey cuts an idempotency key to 64 bytes for a message.
func clipKey(key string) string {
	if len(key) > 64 {
		return key[:64] + "…"
	}
	return key
}

// unavailable marks err as ErrUnavailable when it comes of NATS being out
// of reach, or as ErrStorageFull when the store has no room, so that
// callers answer 503 and retry, not 500.
func (e *Engine) unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnknownTask) {
		return err
	}
	if err = e.storageError(err); errors.Is(err, ErrStorageFull) {
		return err
	}
	switch {
	case e.nc.Status() != nats.CONNECTED,
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return fmt.Errorf("%w: NATS can not be reached now (%s); retry later: %w", ErrUnavailable, e.nc.Status(), err)
	}
	return err
}
