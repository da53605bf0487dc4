package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// A pipeline connection (pipeline.go) carries frames: a 13-byte header —
// the length of what follows it (uint32), the frame's kind (one byte) and
// a task number (uint64), little-endian — then the kind's fields and a
// payload.
const frameHeader = 13

// maxFrame bounds a frame's length, so that a corrupt header fails the
// connection instead of allocating gigabytes.
const maxFrame = 1 << 30

// The kinds of frame.
const (
	// frameTask, host to plugin: a numbered task. Fields: the timeout
	// (int64 ns), the concurrency (uint32), the progress stream (uint32)
	// and call (uint64); the payload is the task's input.
	frameTask byte = 'T'
	// frameTaskTraced, host to plugin (version 3): a numbered task with
	// its traceparent. Fields: a task frame's, then the traceparent's
	// length (one byte) and the traceparent; the payload is the input.
	frameTaskTraced byte = 'P'
	// frameCancel, host to plugin: drop the task unless it started.
	frameCancel byte = 'C'
	// frameStarted, plugin to host: the task started. It is flushed before
	// the task runs.
	frameStarted byte = 'S'
	// frameResult, plugin to host: the task's answer. Fields: how long it
	// ran (int64 ns), its outcome (one of the result… values) and the
	// error's kind (one byte); the payload is the output or the error's
	// message.
	frameResult byte = 'R'
	// frameCanceled, plugin to host: the answer to a cancel. Field: 1 when
	// the task had started, else 0.
	frameCanceled byte = 'K'
)

// The outcomes a result frame carries.
const (
	resultOK byte = iota
	resultErr
	resultSkipped
)

const taskFields = 8 + 4 + 4 + 8

// tracedFields returns a traced task frame's fields: f, then tp with its
// length.
func tracedFields(f [taskFields]byte, tp string) []byte {
	b := make([]byte, 0, taskFields+1+len(tp))
	b = append(b, f[:]...)
	b = append(b, byte(len(tp)))
	return append(b, tp...)
}

// frameWriter writes frames to a buffered connection. Writers that meet
// at once share one flush: the last of them to write flushes, so a burst
// of frames leaves in one system call.
type frameWriter struct {
	waiting atomic.Int32 // writers arrived and not done writing
	mu      sync.Mutex
	w       *bufio.Writer
	err     error // the first write error; every later write fails with it
}

func newFrameWriter(w io.Writer) *frameWriter {
	return &frameWriter{w: bufio.NewWriterSize(w, 32<<10)}
}

// When a frame leaves.
type flushMode int

const (
	// flushAuto: with the last of the writers that meet.
	flushAuto flushMode = iota
	// flushNow: at once, with whatever is buffered.
	flushNow
	// flushLater: with the next write that flushes, or flushBuffered.
	flushLater
)

// lock starts a write; unlock ends it and flushes as mode says.
func (fw *frameWriter) lock() {
	fw.waiting.Add(1)
	fw.mu.Lock()
}

func (fw *frameWriter) unlock(mode flushMode) error {
	last := fw.waiting.Add(-1) == 0
	if fw.err == nil && (mode == flushNow || mode == flushAuto && last) {
		fw.err = fw.w.Flush()
	}
	err := fw.err
	fw.mu.Unlock()
	return err
}

// put writes one frame; the writer must be locked.
func (fw *frameWriter) put(kind byte, seq uint64, fields, payload []byte) {
	if fw.err != nil {
		return
	}
	var h [frameHeader]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(fields)+len(payload)))
	h[4] = kind
	binary.LittleEndian.PutUint64(h[5:], seq)
	_, _ = fw.w.Write(h[:])
	_, _ = fw.w.Write(fields)
	if _, err := fw.w.Write(payload); err != nil {
		fw.err = err
	}
}

// send writes one frame and flushes as mode says.
func (fw *frameWriter) send(kind byte, seq uint64, fields, payload []byte, mode flushMode) error {
	fw.lock()
	fw.put(kind, seq, fields, payload)
	return fw.unlock(mode)
}

// flushBuffered flushes what earlier writes left in the buffer, unless
// another writer is on its way to do it.
func (fw *frameWriter) flushBuffered() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.waiting.Load() == 0 && fw.w.Buffered() > 0 && fw.err == nil {
		fw.err = fw.w.Flush()
	}
}

// errBadFrame marks a frame that breaks the protocol.
var errBadFrame = errors.New("malformed pipeline frame")

// readFrame reads one frame. body is newly allocated: the caller may keep
// it.
func readFrame(r *bufio.Reader) (kind byte, seq uint64, body []byte, err error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.LittleEndian.Uint32(h[0:])
	if n > maxFrame {
		return 0, 0, nil, fmt.Errorf("%w: %d bytes", errBadFrame, n)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, 0, nil, err
	}
	return h[4], binary.LittleEndian.Uint64(h[5:]), body, nil
}
