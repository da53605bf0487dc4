package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the side a program writes to
// (its terminal) and the side that reads what it wrote.
func openPTY(t *testing.T) (term, reader *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	unlock := 0
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock)))
	require.Zero(t, errno, "unlockpt")
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	return slave, master
}

// On a terminal, where stdout and stderr are one screen, every command's
// --help shows once (issue 21: it showed twice, once per stream).
func TestCLI_helpOnceOnATerminal(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"status", "--help"}, {"plugin", "--help"}} {
		term, reader := openPTY(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "wpm"), args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = term, term, term
		require.NoError(t, cmd.Start())
		_ = cmd.Wait()
		require.NoError(t, term.Close())
		var screen bytes.Buffer
		_, err := io.Copy(&screen, reader) // ends with EIO once the terminal side is closed
		if !errors.Is(err, syscall.EIO) {
			require.NoError(t, err)
		}
		_ = reader.Close()
		cancel()
		out := screen.String()
		require.NotEmpty(t, out, "%v printed nothing", args)
		first := strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]
		assert.Equal(t, 1, strings.Count(out, first), "%v: the help's first line %q shows more than once:\n%s", args, first, out)
	}
}
