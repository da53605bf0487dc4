package queue

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
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
