package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// A NATS server that restarts comes back with its file streams and their
// consumers, but without the in-memory hosts bucket; one whose store was
// lost comes back with nothing. Whatever wpm needs is therefore made
// again when a write finds it missing and after every reconnect: the
// handles the engine holds name their stream, bucket or consumer, so they
// work again once it exists.

// repairEvery is the least time between two repairs.
const repairEvery = time.Second

// needRepair asks the repair loop to look for missing streams, buckets
// and consumers; it never blocks.
func (e *Engine) needRepair() {
	select {
	case e.repairs <- struct{}{}:
	default:
	}
}

// repairLoop makes again what is missing, when asked, until the engine
// stops; a repair that fails is tried again.
func (e *Engine) repairLoop() {
	for {
		select {
		case <-e.loops.Done():
			return
		case <-e.repairs:
		}
		ctx, cancel := context.WithTimeout(e.loops, setUpAttempt)
		err := e.repair(ctx)
		cancel()
		if err != nil && e.loops.Err() == nil {
			e.logger.Debug("can not check the task stream, buckets and consumers yet", "error", err)
			e.needRepair()
		}
		select {
		case <-e.loops.Done():
			return
		case <-time.After(repairEvery):
		}
	}
}

// repair makes (or updates) the task and callback streams, both buckets,
// the results store and the consumers of this host's runners and
// callbacks, and starts the runners missing for the manager's pools.
func (e *Engine) repair(ctx context.Context) error {
	if e.nc.Status() != nats.CONNECTED {
		return errors.New("NATS is not connected")
	}
	if _, err := ensureStream(ctx, e.js, e.taskStreamConfig()); err != nil {
		return fmt.Errorf("task stream: %w", err)
	}
	if _, err := ensureStream(ctx, e.js, e.workQueue(callbackStream, callbackPrefix)); err != nil {
		return fmt.Errorf("callback stream: %w", err)
	}
	if _, err := ensureConsumer(ctx, e.js, callbackStream, e.callbackConsumerConfig()); err != nil {
		return fmt.Errorf("callback consumer: %w", err)
	}
	if _, err := ensureKV(ctx, e.js, e.tasksBucketConfig()); err != nil {
		return fmt.Errorf("task bucket: %w", err)
	}
	if _, err := ensureResults(ctx, e.js, e.resultsConfig()); err != nil {
		return fmt.Errorf("results store: %w", err)
	}
	if _, err := ensureKV(ctx, e.js, e.hostsBucketConfig()); err != nil {
		return fmt.Errorf("hosts bucket: %w", err)
	}
	if err := e.setUpSchedules(ctx); err != nil { // schedule.go
		return err
	}
	if _, err := ensureKV(ctx, e.js, e.pausesBucketConfig()); err != nil {
		return fmt.Errorf("pools bucket: %w", err)
	}
	e.mu.Lock()
	pools := make([]string, 0, len(e.runnerOf))
	for pool := range e.runnerOf {
		pools = append(pools, pool)
	}
	e.mu.Unlock()
	for _, pool := range pools {
		if _, err := e.ensureConsumers(ctx, pool); err != nil {
			return err
		}
	}
	if !e.opts.APIOnly {
		return e.startRunners(ctx) // those a Reconcile could not start
	}
	return nil
}
