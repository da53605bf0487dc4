package queue

import (
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/wpmdev/wpm/host"
)

// The events of an asynchronous task (queued on its worker, started,
// progress, finished) happen on the host that runs it. So that any host's
// event stream shows them, to GET /v1/tasks/{id}/events on an api host
// say, the running host publishes each on wpm.taskevents.<id> while other
// hosts are in view, and every host hands those of other hosts to
// Options.Events. Core NATS: an event nobody listens to is lost, and the
// task's record stays the truth.

// taskEventsPrefix is the subject prefix of shared task events.
const taskEventsPrefix = "wpm.taskevents."

// sharedEvent is a task event as it travels between hosts.
type sharedEvent struct {
	Host  string     `json:"host"`
	Event host.Event `json:"event"`
}

// shareEvent publishes ev, an event of a task this host runs, to the
// other hosts; with no other host in view it does nothing.
func (e *Engine) shareEvent(ev host.Event) {
	if e.members == nil || ev.TaskID == "" || !e.othersInView() {
		return
	}
	b, err := json.Marshal(sharedEvent{Host: e.opts.Name, Event: ev})
	if err != nil {
		return
	}
	_ = e.nc.Publish(taskEventsPrefix+ev.TaskID, b)
}

// othersInView reports whether the view holds a host besides this one,
// without copying it (it runs for every event of an async task).
func (e *Engine) othersInView() bool {
	e.members.mu.Lock()
	defer e.members.mu.Unlock()
	return len(e.members.hosts) > 1
}

// receiveEvents hands the task events other hosts share to
// Options.Events, if set.
func (e *Engine) receiveEvents() error {
	if e.opts.Events == nil {
		return nil
	}
	_, err := e.nc.Subscribe(taskEventsPrefix+">", func(m *nats.Msg) {
		var se sharedEvent
		if json.Unmarshal(m.Data, &se) != nil || se.Host == e.opts.Name {
			return
		}
		e.opts.Events(se.Event)
	})
	return err
}
