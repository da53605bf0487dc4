package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Task records are written with compare-and-set: each write names the
// revision it was made from, and NATS refuses it when the record changed
// since. modify is the one read-modify-write loop over them; start,
// progress, cancel and an attempt's end all go through it, with one
// policy:
//
//   - a write refused because the record changed is made again on the
//     record read anew, up to casTries writes in all;
//   - a read or write that fails (NATS between leaders, say) is tried
//     again casWait apart for the caller's casPolicy.errFor: not at all
//     where the caller tries again later anyway, about 10 s for an end;
//   - a full store, a missing record and a refusal by the change end the
//     loop at once.

// casTries bounds the writes of one modify that are refused because the
// record changed since it was read.
const casTries = 10

// casWait is the wait before a failed read or write is tried again.
const casWait = 250 * time.Millisecond

// casPolicy says how long modify tries again a read or write that fails.
type casPolicy struct {
	// errFor is how long failures are tried again, casWait apart; with 0
	// the first is returned.
	errFor time.Duration
}

var (
	// casOnce returns the first failure: for writes whose callers try
	// again later anyway (a start whose message comes back, the next
	// progress report, a cancel's client).
	casOnce = casPolicy{}
	// casEnd tries for about 10 s, as long as NATS takes to elect a new
	// leader: an end not recorded makes the task run again.
	casEnd = casPolicy{errFor: 10 * time.Second}
)

// errStartedElsewhere is modify's error, from a change made for one
// attempt of a task, when another attempt started meanwhile (this host
// was cut off from NATS past the ack wait, say): this attempt's write is
// stale and nothing is written.
var errStartedElsewhere = errors.New("another attempt of the task started meanwhile")

// errEndedMeanwhile is modify's error, from a change made for one attempt
// of a task, when the task was canceled (or ended) meanwhile: nothing is
// written.
var errEndedMeanwhile = errors.New("the task ended meanwhile")

// sameAttempt returns errEndedMeanwhile when cur, the stored record, has
// ended, errStartedElsewhere when it belongs to another attempt than at
// (another host or start time), and nil when it is still at's attempt,
// running: the check before an attempt writes over its record.
func sameAttempt(cur, at *Task) error {
	switch {
	case cur.State.Ended():
		return errEndedMeanwhile
	case cur.Host != at.Host || !sameTime(cur.StartedAt, at.StartedAt):
		return errStartedElsewhere
	}
	return nil
}

// sameTime reports whether a and b are the same instant, or both nil.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// modify changes task t's record with compare-and-set and returns it as
// written with its new revision. t is the record as stored at revision
// rev; with rev 0 only t.ID counts and the record is read first. change
// is called on a copy of the record as stored, before every write: when
// the write is refused because the record changed, the record is read
// again and change called on that. An error from change ends modify with
// that error, writing nothing, and returns the record change saw and its
// revision. Retries follow the policy above and p. An ended record is
// kept for async.retention from this write.
func (e *Engine) modify(ctx context.Context, t Task, rev uint64, p casPolicy, change func(*Task) error) (Task, uint64, error) {
	deadline := time.Now().Add(p.errFor)
	var err error
	for writes := 0; writes < casTries; {
		if rev == 0 {
			var cur Task
			if cur, rev, err = e.get(ctx, t.ID); err != nil {
				if errors.Is(err, ErrUnknownTask) || !waitToRetry(ctx, deadline) {
					return Task{}, 0, err
				}
				continue
			}
			t = cur
		}
		next := t
		if cerr := change(&next); cerr != nil {
			return t, rev, cerr
		}
		b, eerr := encode(next)
		if eerr != nil {
			return t, rev, fmt.Errorf("encode the record of task %s: %w", t.ID, eerr)
		}
		if e.full() {
			return t, rev, e.errFull(nil) // the caller tries again once the store has room
		}
		var nrev uint64
		nrev, err = e.write(ctx, next, b, rev)
		switch err = e.storageError(err); {
		case err == nil:
			return next, nrev, nil
		case conflict(err):
			writes++
			rev = 0 // changed meanwhile: read it again
		case errors.Is(err, ErrStorageFull), !waitToRetry(ctx, deadline):
			return t, rev, err
		}
	}
	return t, rev, fmt.Errorf("task %s: the record changed %d times while being written; retry: %w", t.ID, casTries, err)
}

// conflict reports whether err is a compare-and-set write's refusal
// because the key changed since the revision it named: error 10071
// (jetstream.ErrKeyExists), or 10164, which replicated streams answer
// instead and which KeyValue.Update reports as ErrKeyRevisionMismatch.
func conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// waitToRetry waits casWait and reports true, or reports false at once
// when that would pass deadline, or when ctx ends.
func waitToRetry(ctx context.Context, deadline time.Time) bool {
	if time.Now().Add(casWait).After(deadline) {
		return false
	}
	timer := time.NewTimer(casWait)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// write replaces task t's record, encoded as b, at revision rev and
// returns its new revision; it fails with an error that conflict
// reports when the record changed since. An ended record
// is kept for async.retention from now.
func (e *Engine) write(ctx context.Context, t Task, b []byte, rev uint64) (uint64, error) {
	var (
		next uint64
		err  error
	)
	if t.State.Ended() {
		next, err = e.putTTL(ctx, t.ID, b, rev, e.opts.Retention) // retention counts from the end
	} else {
		next, err = e.kv.Update(ctx, t.ID, b, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("update the record of task %s: %w", t.ID, err)
	}
	return next, nil
}
