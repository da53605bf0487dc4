package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// A reservation holds the pool's one place: a second Reserve waits until
// the first is used, and Run runs on the reserved worker.
func TestManager_Reserve_holdsCapacity(t *testing.T) {
	m := newManager(t, misbehavePool("M", 1))
	waitReady(t, m, "M")
	r, err := m.Reserve(context.Background(), "M")
	require.NoError(t, err)
	assert.Equal(t, "M", r.Pool())

	got := make(chan *host.Reservation, 1)
	go func() {
		r2, err := m.Reserve(context.Background(), "M")
		assert.NoError(t, err)
		got <- r2
	}()
	select {
	case <-got:
		t.Fatal("a second reservation got the pool's only place")
	case <-time.After(50 * time.Millisecond):
	}
	res, err := r.Run(context.Background(), fault("echo"))
	require.NoError(t, err)
	assert.Equal(t, "M", res.Pool)
	assert.Equal(t, res.WorkerPID, outputPID(t, res.Output))

	var r2 *host.Reservation
	select {
	case r2 = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the place was not given back after Run")
	}
	r2.Release()
	r2.Release() // a second release does nothing
	_, err = r2.Run(context.Background(), fault("echo"))
	require.ErrorIs(t, err, host.ErrShuttingDown, "Run after Release runs nothing")

	s, err := m.Pool("M")
	require.NoError(t, err)
	assert.Equal(t, 0, s.Running)
	assert.Equal(t, 1, s.Workers[0].TasksDone)
}

// Reserve's errors match the sentinels; a full pool without a queue
// refuses at once; a waiting Reserve ends with its context.
func TestManager_Reserve_errors(t *testing.T) {
	pc := misbehavePool("M", 1)
	pc.QueueLimit = host.NoQueue
	m := newManager(t, pc)
	waitReady(t, m, "M")
	_, err := m.Reserve(context.Background(), "nope")
	require.ErrorIs(t, err, host.ErrUnknownPool)

	r, err := m.Reserve(context.Background(), "M")
	require.NoError(t, err)
	defer r.Release()
	_, err = m.Reserve(context.Background(), "M")
	require.ErrorIs(t, err, host.ErrQueueFull)
}

// A task run on a reservation whose context ends kills the worker, and
// the error says task_timeout.
func TestReservation_Run_deadline(t *testing.T) {
	m := newManager(t, misbehavePool("M", 1))
	waitReady(t, m, "M")
	r, err := m.Reserve(context.Background(), "M")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = r.Run(ctx, fault("hang"))
	require.Error(t, err)
	assert.Equal(t, host.CodeTaskTimeout, host.Code(err))
	waitReady(t, m, "M")
}

// TryReserve takes a free place without waiting and HasFreePlace says
// whether there is one without taking it: asking leaves the worker idle.
func TestManager_TryReserve(t *testing.T) {
	m := newManager(t, misbehavePool("M", 1))
	waitReady(t, m, "M")
	require.True(t, m.HasFreePlace("M"))
	s, err := m.Pool("M")
	require.NoError(t, err)
	assert.Equal(t, host.StateIdle, s.Workers[0].State, "asking reserves nothing")
	assert.Zero(t, s.Running)

	r, ok := m.TryReserve("M")
	require.True(t, ok)
	assert.False(t, m.HasFreePlace("M"), "the pool's one place is held")
	_, ok = m.TryReserve("M")
	assert.False(t, ok, "no second place, and no wait for one")
	r.Release()
	assert.True(t, m.HasFreePlace("M"), "released")

	assert.False(t, m.HasFreePlace("nope"))
	_, ok = m.TryReserve("nope")
	assert.False(t, ok)
}
