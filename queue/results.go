package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// A result too large to keep inside its task's record (the record must fit
// in one NATS message, the server's max_payload) is kept beside it, in
// the object store wpm_results under the task's id, which NATS cuts into
// chunks of any server's size. The record then says ResultSize; Get and a
// forwarded task's caller read the result back. Objects expire like ended
// records: async.retention after they were written, at the task's end.

// resultsBucket is the object store of large results.
const resultsBucket = "wpm_results"

// resultsConfig is the results store's.
func (e *Engine) resultsConfig() jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{
		Bucket:   resultsBucket,
		TTL:      e.opts.Retention,
		Storage:  jetstream.FileStorage,
		Replicas: e.opts.Replicas,
	}
}

// ensureResults returns the results store, made if missing.
func ensureResults(ctx context.Context, js jetstream.JetStream, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return lookUpOrCreate(
		func() (jetstream.ObjectStore, error) { return js.ObjectStore(ctx, cfg.Bucket) },
		func() (jetstream.ObjectStore, error) { return js.CreateObjectStore(ctx, cfg) },
		jetstream.ErrBucketNotFound, jetstream.ErrBucketExists)
}

// fitRecord makes t, an attempt's end, fit in one message of the server:
// a result too large to keep in the record moves beside it, and a record
// that still does not fit ends the task result_too_large. An error means
// the result could not be stored now.
func (e *Engine) fitRecord(ctx context.Context, t *Task) error {
	b, err := encode(t)
	if err == nil && int64(len(b)) <= e.maxMessage() {
		return nil
	}
	if t.Result != nil {
		if _, err := e.results.PutBytes(ctx, t.ID, t.Result); err != nil {
			return fmt.Errorf("store the result of task %s: %w", t.ID, err)
		}
		t.ResultSize, t.Result = int64(len(t.Result)), nil
		if b, err = encode(t); err == nil && int64(len(b)) <= e.maxMessage() {
			return nil
		}
	}
	t.State, t.Result, t.ResultSize, t.Progress = StateFailed, nil, 0, nil
	t.Error = &TaskError{Code: CodeResultTooLarge, Message: fmt.Sprintf(
		"the task's record is %d bytes, over what the NATS server stores in one message (max_payload %d, less headers); return less, or raise the server's max_payload", len(b), e.nc.MaxPayload())}
	t.recauseAttempt(string(t.Error.Code), t.Error.Message)
	return nil
}

// withResult fills in t's result when it is kept beside the record.
func (e *Engine) withResult(ctx context.Context, t Task) (Task, error) {
	if t.ResultSize == 0 || t.Result != nil {
		return t, nil
	}
	b, err := e.results.GetBytes(ctx, t.ID)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return t, unknownTask(t.ID) // expired with its record
	}
	if err != nil {
		return t, fmt.Errorf("read the result of task %s: %w", t.ID, err)
	}
	t.Result = b
	return t, nil
}
