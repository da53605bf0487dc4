package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConflict(t *testing.T) {
	wrongLast := &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}
	wrongLastReplicated := &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}
	assert.True(t, conflict(fmt.Errorf("update: %w", wrongLast)), "10071, as putTTL gets it")
	assert.True(t, conflict(fmt.Errorf("update: %w", wrongLastReplicated)), "10164, as putTTL gets it from a replicated stream")
	assert.True(t, conflict(jetstream.ErrKeyExists))
	assert.True(t, conflict(fmt.Errorf("update: %w", jetstream.ErrKeyRevisionMismatch)))
	assert.False(t, conflict(errors.New("nats: timeout")))
	assert.False(t, conflict(&jetstream.APIError{Code: 503, ErrorCode: 10023}))
	assert.False(t, conflict(nil))
}

// An attempt's writes never go over a record of another attempt, nor
// over an end: its progress stops, and its end, made at a stale
// revision, gives errStartedElsewhere (then errEndedMeanwhile), writing
// nothing.
func TestModify_staleAttemptWritesNothing(t *testing.T) {
	e := startEngine(t, newManager(t, nil), testOptions(t.TempDir()))
	ctx := context.Background()
	j := job{ID: newID(), Pool: "P", CreatedAt: time.Now().UTC()}
	require.NoError(t, e.create(ctx, j.record()))
	a, aRev, ok, err := e.start(ctx, j)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, StateRunning, a.State)

	// Another host starts the task again, as after an ack wait passed.
	b, _, err := e.modify(ctx, Task{ID: j.ID}, 0, casOnce, func(t *Task) error {
		t.Host, t.StartedAt = "elsewhere", now()
		t.Attempts++
		return nil
	})
	require.NoError(t, err)

	w := &progressWriter{e: e, t: a, rev: aRev}
	assert.False(t, w.write(&Progress{Fraction: 0.5}), "a's progress stops on b's record")
	end := a
	end.State, end.FinishedAt = StateSucceeded, now()
	assert.ErrorIs(t, e.save(ctx, a, aRev, end), errStartedElsewhere)
	got, err := e.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, b, got, "b's record is untouched")

	_, err = e.Cancel(ctx, j.ID)
	require.NoError(t, err)
	assert.ErrorIs(t, e.save(ctx, a, aRev, end), errEndedMeanwhile)
	_, _, ok, err = e.start(ctx, j)
	require.NoError(t, err)
	assert.False(t, ok, "an ended task does not start")
	got, err = e.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCanceled, got.State)
}
