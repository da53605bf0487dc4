package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EventType is the type of an event of the streams.
type EventType string

// The event types of the streams.
const (
	EventTaskQueued     EventType = "task.queued"
	EventTaskStarted    EventType = "task.started"
	EventTaskProgress   EventType = "task.progress"
	EventTaskFinished   EventType = "task.finished"
	EventWorkerStarted  EventType = "worker.started"
	EventWorkerExited   EventType = "worker.exited"
	EventWorkerReplaced EventType = "worker.replaced"
	EventPoolReloaded   EventType = "pool.reloaded"
	// EventStats comes every second on GET /v1/events with the pools'
	// live state in Pools; it has no ID.
	EventStats EventType = "stats"
	// EventStreamGap says that some events after the Last-Event-ID asked
	// for are no longer kept.
	EventStreamGap EventType = "stream.gap"
	// EventStreamDropped says the server cut the stream off because it fell
	// behind; the iterator opens it again from the last event.
	EventStreamDropped EventType = "stream.dropped"
)

// Event is one event of a stream.
type Event struct {
	// ID numbers the event; give it as EventsOptions.LastEventID to resume
	// after it. Stats and stream events have none.
	ID uint64 `json:"id,omitempty"`
	// Type says what happened.
	Type EventType `json:"type"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// TaskID is set on task events.
	TaskID string `json:"task,omitempty"`
	// Pool is empty for a one-shot's events.
	Pool string `json:"pool,omitempty"`
	// Plugin is the plugin of the task or worker.
	Plugin string `json:"plugin,omitempty"`
	// Slot is a worker's slot in its pool, on worker events.
	Slot *int `json:"slot,omitempty"`
	// PID is a worker's pid.
	PID int `json:"pid,omitempty"`
	// Code is "ok" or the error's code, on task.finished.
	Code Code `json:"code,omitempty"`
	// Error is the error's message on a task.finished that failed.
	Error string `json:"error,omitempty"`
	// DurationMs is the time from acceptance to answer, on task.finished.
	DurationMs float64 `json:"durationMs,omitempty"`
	// Fraction (0..1) and Message are a task.progress report; Message
	// also explains stream events and pool.reloaded.
	Fraction *float64 `json:"fraction,omitempty"`
	Message  string   `json:"message,omitempty"`
	// Reason says why a worker went, on worker.exited.
	Reason string `json:"reason,omitempty"`
	// Pools is the pools' live state on a stats event, as GET /v1/pools.
	Pools json.RawMessage `json:"pools,omitempty"`
	// Data is the event's data as the server sent it.
	Data json.RawMessage `json:"-"`
}

// EventsOptions are the options of [Client.Events] and [Client.TaskEvents].
type EventsOptions struct {
	// LastEventID resumes the stream after this event (0: from now, or
	// for a task from its first kept event).
	LastEventID uint64
}

// reconnects is how many times in a row a broken stream is opened again
// before the iterator gives up with the error; each time waits twice as
// long as the one before, from reconnectWait.
const (
	reconnects    = 3
	reconnectWait = 100 * time.Millisecond
)

// Events follows every event of the server (GET /v1/events) until ctx
// ends or the stream can not be opened again. A broken stream, or one the
// server dropped, is opened again with Last-Event-ID. The iterator yields
// a non-nil error once, last: an [*Error] when the server refused the
// stream, ctx's error when it ended.
func (c *Client) Events(ctx context.Context, opts EventsOptions) iter.Seq2[Event, error] {
	return c.stream(ctx, "/v1/events", opts.LastEventID, false)
}

// TaskEvents follows one task's events (GET /v1/tasks/{id}/events): those
// the server keeps, then new ones, until its task.finished, after which
// the iterator ends. Errors are as for [Client.Events]; a task wpm keeps
// no event of is [ErrUnknownTask].
func (c *Client) TaskEvents(ctx context.Context, id string, opts EventsOptions) iter.Seq2[Event, error] {
	return c.stream(ctx, taskPath(id)+"/events", opts.LastEventID, true)
}

// stream is the iterator of the stream at path; untilFinished ends it
// after a task.finished event.
func (c *Client) stream(ctx context.Context, path string, after uint64, untilFinished bool) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		failures := 0
		for {
			stop, err := c.follow(ctx, path, &after, func(e Event) bool {
				failures = 0
				return yield(e, nil) && !(untilFinished && e.Type == EventTaskFinished)
			})
			if stop {
				return
			}
			var apiErr *Error
			switch {
			case ctx.Err() != nil:
				yield(Event{}, ctx.Err())
				return
			case errors.As(err, &apiErr) || failures >= reconnects:
				if err == nil {
					err = fmt.Errorf("client: GET %s: %w", path, io.ErrUnexpectedEOF)
				}
				yield(Event{}, err)
				return
			}
			wait := reconnectWait << failures
			failures++
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
}

// follow reads one connection of the stream at path, from after, and
// hands each event to each, moving after on; stop is true when each
// returned false. err is nil when the stream ended cleanly or was dropped.
func (c *Client) follow(ctx context.Context, path string, after *uint64, each func(Event) bool) (stop bool, err error) {
	r := &request{method: http.MethodGet, path: path, header: http.Header{}}
	if *after > 0 {
		r.header.Set("Last-Event-ID", strconv.FormatUint(*after, 10))
	}
	resp, err := c.send(ctx, r, "text/event-stream")
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		_, err := readAnswer(resp, r)
		if err == nil {
			err = fmt.Errorf("client: GET %s: %s, not an event stream", path, resp.Status)
		}
		return false, err
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	var typ, data string
	var id uint64
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return false, err
		}
		line = strings.TrimRight(line, "\r\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id, _ = strconv.ParseUint(value, 10, 64)
		case "event":
			typ = value
		case "data":
			if data != "" {
				data += "\n"
			}
			data += value
		case "": // a blank line ends an event; a comment starts with ':'
			if line != "" || data == "" {
				continue
			}
			e := Event{Data: json.RawMessage(data)}
			if err := json.Unmarshal(e.Data, &e); err != nil {
				return false, fmt.Errorf("client: GET %s: an event's data is not JSON: %w", path, err)
			}
			if typ != "" {
				e.Type = EventType(typ)
			}
			e.ID = id
			if id > 0 {
				*after = id
			}
			typ, data, id = "", "", 0
			if !each(e) {
				return true, nil
			}
			if e.Type == EventStreamDropped {
				return false, nil
			}
		}
	}
}
