package async

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two processes on one nats.storeDir lose each other's writes: the second
// engine is refused, naming the key and the holder's pid, and the store
// is free again once the first stops.
func TestStart_storeDirLocked(t *testing.T) {
	dir := t.TempDir()
	mgr := newManager(t, testPools())
	first := startEngine(t, mgr, testOptions(dir))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Start(ctx, mgr, testOptions(dir))
	require.ErrorIs(t, err, ErrStoreLocked)
	assert.Contains(t, err.Error(), "nats.storeDir")
	assert.Contains(t, err.Error(), "process "+strconv.Itoa(os.Getpid()))
	b, err := os.ReadFile(filepath.Join(dir, storeLockName))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(os.Getpid()), strings.TrimSpace(string(b)))

	task := submit(t, first, "M", `{"fault": "echo"}`)
	assert.Equal(t, StateSucceeded, waitFor(t, first, task.ID, ended).State, "the first engine is untouched")
	stopEngine(t, first)
	second := startEngine(t, mgr, testOptions(dir))
	got, err := second.Get(context.Background(), task.ID)
	require.NoError(t, err)
	assert.Equal(t, StateSucceeded, got.State, "the store kept the first engine's record")
}
