package host

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A directory claimed while another wpm cleans up is never lost: the
// cleaner removes only what it has locked itself, and a claim that lost
// its directory to the cleaner tries again.
func TestClaimSocketDir_duringCleanup(t *testing.T) {
	tmp := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				removeStaleSocketDirs(tmp)
			}
		}
	})
	var locks []*os.File
	var dirs []string
	for range 30 {
		dir, lock, err := claimSocketDir(tmp)
		if !assert.NoError(t, err) {
			break
		}
		dirs, locks = append(dirs, dir), append(locks, lock)
	}
	close(stop)
	wg.Wait()
	require.Len(t, dirs, 30, "every claim succeeded")

	removeStaleSocketDirs(tmp)
	for _, d := range dirs {
		assert.DirExists(t, d, "a claimed directory survives cleanup")
	}
	for _, l := range locks {
		require.NoError(t, l.Close())
	}
	removeStaleSocketDirs(tmp)
	for _, d := range dirs {
		assert.NoDirExists(t, d, "a released directory is removed")
	}
}

// A directory left half made, under its staging name, is removed once it
// is old enough that no wpm can still be making it.
func TestRemoveStaleSocketDirs_abandonedStaging(t *testing.T) {
	tmp := t.TempDir()
	fresh := filepath.Join(tmp, stagingPrefix+"1-fresh")
	old := filepath.Join(tmp, stagingPrefix+"1-old")
	require.NoError(t, os.Mkdir(fresh, 0o700))
	require.NoError(t, os.Mkdir(old, 0o700))
	long := time.Now().Add(-2 * abandonedAfter)
	require.NoError(t, os.Chtimes(old, long, long))

	removeStaleSocketDirs(tmp)
	assert.DirExists(t, fresh, "a directory being made is left alone")
	assert.NoDirExists(t, old, "an abandoned one is removed")
}
