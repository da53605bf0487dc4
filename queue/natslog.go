package queue

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// natsLogger passes the embedded NATS server's log to wpm's: its notices
// (start-up, store recovery) at debug, warnings and errors as they are.
type natsLogger struct{ l hclog.Logger }

// Noticef logs at debug: the server's notices are many and routine.
func (n natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }

// Warnf logs a warning, except the one about a large max_payload, which
// wpm chooses on purpose (a task's input is one message), at debug.
func (n natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Maximum payloads over") {
		n.l.Debug(msg)
		return
	}
	n.l.Warn(msg)
}

// Fatalf logs an error; the server stops itself after a fatal error.
func (n natsLogger) Fatalf(format string, v ...any) { n.l.Error(fmt.Sprintf(format, v...)) }

// Errorf logs an error.
func (n natsLogger) Errorf(format string, v ...any) { n.l.Error(fmt.Sprintf(format, v...)) }

// Debugf logs at trace.
func (n natsLogger) Debugf(format string, v ...any) { n.l.Trace(fmt.Sprintf(format, v...)) }

// Tracef logs at trace.
func (n natsLogger) Tracef(format string, v ...any) { n.l.Trace(fmt.Sprintf(format, v...)) }
