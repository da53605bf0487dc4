package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sys/unix"

	"github.com/wpmdev/wpm/host"
)

// When the disk under the task store fills, NATS refuses writes with
// "insufficient resources" (its own limit, 75 % of the disk's free space
// when JetStream started) or, on a real ENOSPC, a stream stops answering
// writes at all until the server restarts. wpm then answers 503
// storage_full with Retry-After at once, logs it once, and checks every
// storageCheckEvery whether writes work again; the embedded NATS server
// is restarted on its store once the disk has room (the engine's
// connection reconnects to it), so the queue recovers without a restart
// of wpm. Restarting only JetStream races inside nats-server with API
// requests in flight (the race detector shows it).

// ErrStorageFull means the task store has no room for a write.
var ErrStorageFull = errors.New("the task store is full")

// CodeStorageFull is the code of ErrStorageFull.
const CodeStorageFull host.ErrorCode = "storage_full"

// storageRoom is the free space the embedded store's disk needs before
// the server is restarted on it.
const storageRoom = 16 << 20

// storageCheckEvery is how often a full store is checked.
const storageCheckEvery = 2 * time.Second

// insufficientResources is JetStream's error code for a store at its limit.
const insufficientResources = 10023

// storageError returns err as ErrStorageFull when it says the store is
// full, and marks the store full; otherwise err as it is.
func (e *Engine) storageError(err error) error {
	if err == nil || errors.Is(err, ErrStorageFull) || !e.isFull(err) {
		return err
	}
	e.markFull(err)
	return e.errFull(err)
}

// errFull is the error of a write refused while the store is full.
func (e *Engine) errFull(cause error) error {
	where := "the NATS server's disk"
	if e.srv != nil {
		where = "the disk of nats.storeDir (" + e.opts.StoreDir + ")"
	}
	if cause == nil {
		return fmt.Errorf("%w: %s has no room; free some space, tasks are taken again by themselves once it has", ErrStorageFull, where)
	}
	return fmt.Errorf("%w: %s has no room; free some space, tasks are taken again by themselves once it has: %w", ErrStorageFull, where, cause)
}

// isFull reports whether err says the store is full.
func (e *Engine) isFull(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == insufficientResources,
		strings.Contains(err.Error(), "no space left"):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		// A stream that met ENOSPC answers no write: a timeout of the
		// embedded server on a disk without room is that.
		return e.srv != nil && e.nc.Status() == nats.CONNECTED && !e.storeHasRoom()
	}
	return false
}

// full reports whether the store is known to be full now.
func (e *Engine) full() bool { return e.storeFull.Load() }

// markFull records that the store is full, logging it once, and wakes
// the storage check.
func (e *Engine) markFull(cause error) {
	if e.storeFull.CompareAndSwap(false, true) {
		e.logger.Error("THE TASK STORE IS FULL: asynchronous submits answer 503 storage_full and tasks can not be recorded until the disk has room; free some space, wpm recovers by itself", "storeDir", e.opts.StoreDir, "error", cause)
	}
	select {
	case e.storageWake <- struct{}{}:
	default:
	}
}

// storageLoop checks a full store until writes work again, until the
// engine stops.
func (e *Engine) storageLoop() {
	for {
		select {
		case <-e.loops.Done():
			return
		case <-e.storageWake:
		}
		for e.full() {
			select {
			case <-e.loops.Done():
				return
			case <-time.After(storageCheckEvery):
			}
			if e.writable() {
				e.storeFull.Store(false)
				e.logger.Info("the task store has room again; asynchronous tasks go on")
				e.needRepair()
				e.signalAll()
			}
		}
	}
}

// writable reports whether a small write to the store goes through. The
// embedded server is restarted first, once its disk has room:
// a stream that met ENOSPC keeps refusing writes until then.
func (e *Engine) writable() bool {
	if e.srv != nil {
		if !e.storeHasRoom() {
			return false
		}
		e.logger.Warn("restarting the embedded NATS server on its store, whose streams stopped taking writes when the disk was full")
		if err := e.srv.restart(); err != nil {
			e.logger.Error("can not restart the embedded NATS server", "error", err)
			return false
		}
		e.waitConnected()
	}
	return e.probeWrite()
}

// probeWrite writes and removes a key of the task bucket.
func (e *Engine) probeWrite() bool {
	ctx, cancel := context.WithTimeout(e.loops, setUpAttempt)
	defer cancel()
	if err := e.repair(ctx); err != nil {
		return false
	}
	if _, err := e.kv.Put(ctx, "wpm.probe", []byte("{}")); err != nil {
		return false
	}
	_ = e.kv.Purge(ctx, "wpm.probe")
	return true
}

// waitConnected waits, a bounded time, for the connection to be back
// after a restart of the embedded server.
func (e *Engine) waitConnected() {
	deadline := time.Now().Add(setUpAttempt)
	for e.nc.Status() != nats.CONNECTED && time.Now().Before(deadline) && e.loops.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// storeHasRoom reports whether the embedded store's disk has storageRoom
// free.
func (e *Engine) storeHasRoom() bool {
	var st unix.Statfs_t
	if err := unix.Statfs(e.opts.StoreDir, &st); err != nil {
		return true // can not tell: let the write say
	}
	return st.Bavail*uint64(st.Bsize) >= storageRoom
}

// signalAll wakes every runner of this host.
func (e *Engine) signalAll() {
	e.mu.Lock()
	subjects := make([]string, 0, len(e.wake))
	for subj := range e.wake {
		subjects = append(subjects, subj)
	}
	e.mu.Unlock()
	for _, subj := range subjects {
		e.signal(subj)
	}
}
