package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wpmdev/wpm/cmd/wpm/internal/events"
	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

// DefaultKeepAlive is how often an idle event stream sends a comment, so
// that proxies and clients do not take it for dead.
const DefaultKeepAlive = 15 * time.Second

// Event types of the stream itself, besides the host's.
const (
	// eventGap: events after Last-Event-ID were no longer kept.
	eventGap = "stream.gap"
	// eventDropped: the consumer fell too far behind and the stream ends.
	eventDropped = "stream.dropped"
	// eventResult and eventError end a sync task's stream with its answer.
	eventResult = "result"
	eventError  = "error"
)

// sse writes Server-Sent Events to one response.
type sse struct {
	w   *echo.Response
	err error
	seq uint64 // the last number next gave
}

// startSSE writes the stream's headers.
func startSSE(c echo.Context) *sse {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Flush()
	return &sse{w: c.Response()}
}

// event writes one event: its id (when not 0), type and one line of data.
func (s *sse) event(id uint64, typ string, data []byte) {
	if s.err != nil {
		return
	}
	var b strings.Builder
	if id > 0 {
		b.WriteString("id: " + strconv.FormatUint(id, 10) + "\n")
	}
	b.WriteString("event: " + typ + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	_, s.err = io.WriteString(s.w, b.String())
	s.w.Flush()
}

// record writes a bus record.
func (s *sse) record(r events.Record) { s.event(r.ID, string(r.Type), r.JSON()) }

// next returns the next number of a stream that numbers its own events
// (a task's answer streamed as it runs), from 1.
func (s *sse) next() uint64 {
	s.seq++
	return s.seq
}

// numbered writes r under the stream's next number.
func (s *sse) numbered(r events.Record) {
	r.ID = s.next()
	s.record(r)
}

// keepAlive writes a comment line.
func (s *sse) keepAlive() {
	if s.err == nil {
		_, s.err = io.WriteString(s.w, ": keep-alive\n\n")
		s.w.Flush()
	}
}

// lastEventID reads the Last-Event-ID header: 0 when absent.
func lastEventID(c echo.Context) (uint64, error) {
	v := c.Request().Header.Get("Last-Event-ID")
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("the Last-Event-ID header must be an event id, a whole number, got %q", clip(v)))
	}
	return id, nil
}

// streamEvents is GET /v1/events: every event from now, or from after
// Last-Event-ID as far as the bus still keeps them.
func (s *Server) streamEvents(c echo.Context) error {
	after, err := lastEventID(c)
	if err != nil {
		return err
	}
	sub := s.opts.Events.Subscribe(after, false, nil)
	defer sub.Cancel()
	s.follow(c, startSSE(c), sub, nil, nil)
	return nil
}

// streamTaskEvents is GET /v1/tasks/{id}/events: one task's kept events,
// then its new ones until it finished: a synchronous task at its
// task.finished, an asynchronous one when its record ended, so that the
// attempts of a task that is retried all show.
func (s *Server) streamTaskEvents(c echo.Context) error {
	id := c.Param("id")
	after, err := lastEventID(c)
	if err != nil {
		return err
	}
	mine := func(r events.Record) bool { return r.TaskID == id }
	sub := s.opts.Events.Subscribe(after, true, mine)
	defer sub.Cancel()
	rec, isAsync := s.asyncTask(c, id)
	switch {
	case len(sub.Backlog) > 0 || after > 0:
	case !isAsync:
		return &Error{Code: codeUnknownTask, Message: fmt.Sprintf("no task %q among the events wpm keeps; task ids come from answers and from GET /v1/events (an ended asynchronous task's record is at GET /v1/tasks/%s)", clip(id), clip(id))}
	case rec.State.Ended():
		// Ended before this host saw any of its events: the record says
		// how.
		startSSE(c).record(finishedRecord(rec))
		return nil
	}
	if isAsync {
		s.follow(c, startSSE(c), sub, nil, s.recordEnd(c, id))
		return nil
	}
	finished := func(r events.Record) bool { return r.Type == host.EventTaskFinished }
	s.follow(c, startSSE(c), sub, finished, nil)
	return nil
}

// asyncTask returns the record of id, if it is an asynchronous task.
func (s *Server) asyncTask(c echo.Context, id string) (queue.Task, bool) {
	if s.opts.Tasks == nil {
		return queue.Task{}, false
	}
	t, err := s.opts.Tasks.Get(c.Request().Context(), id)
	return t, err == nil
}

// recordEnd waits, for as long as the request lasts, for the record of
// asynchronous task id to end, and sends its task.finished: the stream
// follows the record when the task's own events do not reach this host.
func (s *Server) recordEnd(c echo.Context, id string) <-chan events.Record {
	out := make(chan events.Record, 1)
	ctx := c.Request().Context()
	go func() {
		for ctx.Err() == nil {
			t, err := s.opts.Tasks.Wait(ctx, id, maxWait)
			if err != nil && !errors.Is(err, queue.ErrUnavailable) {
				return
			}
			if err == nil && t.State.Ended() {
				out <- finishedRecord(t)
				return
			}
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return out
}

// finishedRecord is the task.finished event of an ended task's record.
func finishedRecord(t queue.Task) events.Record {
	r := events.Record{Type: host.EventTaskFinished, TaskID: t.ID, Pool: t.Pool, Plugin: t.Plugin, PID: t.WorkerPID, Code: "ok"}
	if t.FinishedAt != nil {
		r.Time = *t.FinishedAt
		r.DurationMs = float64(t.FinishedAt.Sub(t.CreatedAt).Microseconds()) / 1000
	}
	if t.Error != nil {
		r.Code, r.Error = string(t.Error.Code), t.Error.Message
	}
	return r
}

// recordGrace is how long the task.finished event has, after the record
// says the task ended, to arrive before the record's is sent instead.
const recordGrace = time.Second

// follow writes sub's backlog, then its new events, until the client
// leaves, the bus ends the subscription, or last says an event was the
// last one. A record on ended (the task's record says it ended) ends the
// stream: at once if the last event sent was a task.finished, else at the
// next task.finished, or with the record's own when none came within
// recordGrace.
func (s *Server) follow(c echo.Context, out *sse, sub *events.Sub, last func(events.Record) bool, ended <-chan events.Record) {
	if sub.Gap {
		out.event(0, eventGap, []byte(`{"type":"stream.gap","message":"some events after Last-Event-ID are no longer kept"}`))
	}
	finished := false // the last event sent was a task.finished
	for _, r := range sub.Backlog {
		out.record(r)
		if last != nil && last(r) {
			return
		}
		finished = r.Type == host.EventTaskFinished
	}
	tick := time.NewTicker(s.opts.KeepAlive)
	defer tick.Stop()
	ctx := c.Request().Context()
	var (
		fallback *events.Record
		grace    <-chan time.Time
	)
	for out.err == nil {
		select {
		case <-ctx.Done():
			return
		case r, ok := <-sub.C:
			if !ok {
				if sub.Dropped() {
					out.event(0, eventDropped, []byte(`{"type":"stream.dropped","message":"this consumer fell behind and was dropped; reconnect with Last-Event-ID to resume"}`))
				}
				return
			}
			out.record(r)
			finished = r.Type == host.EventTaskFinished
			if last != nil && last(r) || fallback != nil && finished {
				return
			}
		case <-tick.C:
			out.keepAlive()
		case r := <-ended:
			if finished {
				return
			}
			ended, fallback = nil, &r
			grace = time.After(recordGrace)
		case <-grace:
			out.record(*fallback)
			return
		}
	}
}

// wantsEventStream reports whether the request asks for text/event-stream.
func wantsEventStream(c echo.Context) bool {
	return strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/event-stream")
}

// outcome is a task's answer.
type outcome struct {
	res host.Result
	err error
}

// submitStreaming runs a pool task and streams its events, then its answer
// as a "result" or "error" event whose data is the JSON answer the plain
// request would get. An error before the task was admitted (unknown pool,
// shutting down) is answered as usual.
func (s *Server) submitStreaming(c echo.Context, pool string, input []byte) error {
	evs := make(chan host.Event, 64)
	listen := host.TaskEvents(func(e host.Event) {
		if e.Type == host.EventTaskFinished {
			return // the answer says it
		}
		select {
		case evs <- e:
		default: // progress is dropped rather than slowing the task
		}
	})
	done := make(chan outcome, 1)
	go func() {
		res, err := s.mgr.Submit(c.Request().Context(), pool, input, listen, host.Priority(priorityOf(c)))
		done <- outcome{res, err}
	}()
	var out *sse
	for {
		select {
		case e := <-evs:
			if out == nil {
				out = startSSE(c)
			}
			out.numbered(events.RecordOf(e))
		case o := <-done:
			return s.endStream(c, out, evs, o)
		}
	}
}

// endStream writes the events still buffered and the task's answer.
func (s *Server) endStream(c echo.Context, out *sse, evs <-chan host.Event, o outcome) error {
	s.logTask(c, o.res, o.err)
	if out == nil {
		if o.err != nil && len(evs) == 0 {
			return o.err // refused before it was admitted: a plain answer
		}
		out = startSSE(c)
	}
	for len(evs) > 0 {
		out.numbered(events.RecordOf(<-evs))
	}
	if o.err != nil {
		code, body := describe(o.err)
		c.Set(ctxErrorCode, code)
		b, _ := json.Marshal(body)
		out.event(out.next(), eventError, b)
		return nil
	}
	b, err := resultJSON(o.res, false)
	if err != nil {
		_, body := describe(err)
		b, _ = json.Marshal(body)
		out.event(out.next(), eventError, b)
		return nil
	}
	out.event(out.next(), eventResult, b)
	return nil
}

// closeStreams ends every event stream, so that shutdown need not wait
// for them.
func (s *Server) closeStreams() {
	if s.opts.Events != nil {
		s.opts.Events.Close()
	}
}

// eventRoutes adds the event streams and the dashboard, when configured.
func (s *Server) eventRoutes(apiRoute []echo.MiddlewareFunc) {
	if s.opts.Events != nil {
		s.echo.GET("/v1/events", s.streamEvents, apiRoute...)
		s.echo.GET("/v1/tasks/:id/events", s.streamTaskEvents, apiRoute...)
	}
	if s.opts.UI != nil {
		s.echo.GET(routeUI, echo.WrapHandler(s.opts.UI))
		s.echo.GET(routeUIPage, echo.WrapHandler(s.opts.UI))
		s.echo.GET(routeUIFile, echo.WrapHandler(s.opts.UI))
		s.echo.GET(routeUITask, echo.WrapHandler(s.opts.UI))
	}
}
