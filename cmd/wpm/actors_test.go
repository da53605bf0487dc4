package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	oklog "github.com/oklog/run"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A signal ends the group: the parts stop one after another in the order
// they were added, within the grace period, which a second signal cuts
// short.
func TestShutdown_stopsInOrderWithinTheGrace(t *testing.T) {
	signals := make(chan os.Signal, 2)
	stop := newShutdown(signals, time.Minute, hclog.NewNullLogger())
	defer stop.end()
	var order []string
	var g oklog.Group
	g.Add(stop.wait, stop.interrupt)
	g.Add(stopping(func() { order = append(order, "first") }))
	g.Add(stop.within(func(grace context.Context) error {
		order = append(order, "second")
		deadline, ok := grace.Deadline()
		assert.True(t, ok, "the grace period bounds the stop")
		assert.WithinDuration(t, time.Now().Add(time.Minute), deadline, 10*time.Second)
		signals <- syscall.SIGINT
		select {
		case <-grace.Done():
		case <-time.After(10 * time.Second):
			t.Error("a second signal did not end the grace period")
		}
		return grace.Err()
	}, "cut off"))
	g.Add(stopping(func() { order = append(order, "third") }))
	signals <- syscall.SIGTERM
	require.NoError(t, g.Run(), "a signal is a clean end")
	assert.Equal(t, []string{"first", "second", "third"}, order)
}

// A part that fails ends the group with its error; no signal started a
// grace period, so nothing bounds the stop.
func TestShutdown_noGraceWithoutSignal(t *testing.T) {
	stop := newShutdown(make(chan os.Signal), time.Minute, hclog.NewNullLogger())
	defer stop.end()
	failed := errors.New("http server: broken")
	var g oklog.Group
	g.Add(stop.wait, stop.interrupt)
	g.Add(func() error { return failed }, func(error) {})
	stopped := false
	g.Add(stop.within(func(grace context.Context) error {
		_, bounded := grace.Deadline()
		assert.False(t, bounded)
		stopped = true
		return nil
	}, "cut off"))
	require.ErrorIs(t, g.Run(), failed)
	assert.True(t, stopped)
}

// A reload under way finishes before the shutdown goes on.
func TestReloadOnHangup_interruptWaitsForAReload(t *testing.T) {
	hangups := make(chan os.Signal, 1)
	started, release := make(chan struct{}), make(chan struct{})
	reloaded := false
	execute, interrupt := reloadOnHangup(hangups, func() error {
		close(started)
		<-release
		reloaded = true
		return nil
	})
	ended := make(chan error, 1)
	go func() { ended <- execute() }()
	hangups <- syscall.SIGHUP
	<-started
	time.AfterFunc(50*time.Millisecond, func() { close(release) })
	interrupt(nil)
	assert.True(t, reloaded, "the interrupt returned before the reload ended")
	require.NoError(t, <-ended)
}
