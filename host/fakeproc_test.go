package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeProc is a worker process in memory, for unit tests of the slots,
// the dispatch and shutdown. Its tasks run the starter's behave function.
type fakeProc struct {
	pid     int
	started time.Time
	memMB   int
	behave  func(ctx context.Context, input []byte) ([]byte, error)
	ping    func(ctx context.Context) error

	done     chan struct{}
	stopOnce sync.Once
	exit     Exit
	// rssReads counts RSS calls: what a snapshot reads of /proc.
	rssReads atomic.Int64
}

var _ proc = (*fakeProc)(nil)

func (f *fakeProc) PID() int                      { return f.pid }
func (f *fakeProc) StartedAt() time.Time          { return f.started }
func (f *fakeProc) MemoryLimitMB() int            { return f.memMB }
func (f *fakeProc) LowerMemoryLimit(mb int) error { f.memMB = mb; return nil }
func (f *fakeProc) Done() <-chan struct{}         { return f.done }
func (f *fakeProc) Exit() Exit                    { <-f.done; return f.exit }

func (f *fakeProc) RSS() (uint64, bool) {
	f.rssReads.Add(1)
	select {
	case <-f.done:
		return 0, true
	default:
		return 1 << 20, true
	}
}

// end ends the process with err as its cause, once.
func (f *fakeProc) end(err error) {
	f.stopOnce.Do(func() {
		f.exit = Exit{Cause: causeOf(err), Err: err}
		close(f.done)
	})
}

func (f *fakeProc) Stop(err error) { f.end(err) }

// crash ends the process as if it died on its own.
func (f *fakeProc) crash() { f.end(fmt.Errorf("%w: the fake process crashed", ErrWorkerCrashed)) }

func (f *fakeProc) Ping(ctx context.Context) error {
	if f.ping != nil {
		return f.ping(ctx)
	}
	return nil
}

func (f *fakeProc) Run(ctx context.Context, input []byte, doomed func()) ([]byte, error, bool) {
	type answer struct {
		out []byte
		err error
	}
	got := make(chan answer, 1)
	go func() {
		out, err := f.behave(ctx, input)
		got <- answer{out, err}
	}()
	select {
	case a := <-got:
		return a.out, a.err, true
	case <-ctx.Done():
		cause := contextFailure(ctx)
		if doomed != nil {
			doomed()
		}
		f.end(fmt.Errorf("%w: killed because a task on it ended early", ErrWorkerCrashed))
		return nil, cause, false
	case <-f.done:
		if doomed != nil {
			doomed()
		}
		return nil, f.exit.Err, false
	}
}

// fakeStarter starts fakeProcs and remembers them.
type fakeStarter struct {
	mu       sync.Mutex
	procs    []*fakeProc
	attempts []time.Time
	fail     func(attempt int) error // nil: every start succeeds
	behave   func(ctx context.Context, input []byte) ([]byte, error)
	ping     func(ctx context.Context) error
	wrap     func(*fakeProc) proc // nil: the fakeProc itself
}

func (s *fakeStarter) start(ctx context.Context, l launch) (proc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, time.Now())
	if s.fail != nil {
		if err := s.fail(len(s.attempts)); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	behave := s.behave
	if behave == nil {
		behave = func(_ context.Context, in []byte) ([]byte, error) { return in, nil }
	}
	p := &fakeProc{pid: 1000 + len(s.procs), started: time.Now(), memMB: l.memoryLimitMB, behave: behave, ping: s.ping, done: make(chan struct{})}
	s.procs = append(s.procs, p)
	if s.wrap != nil {
		return s.wrap(p), nil
	}
	return p, nil
}

func (s *fakeStarter) started() []*fakeProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*fakeProc(nil), s.procs...)
}

func (s *fakeStarter) startTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.attempts...)
}

// live counts the started processes that have not ended.
func (s *fakeStarter) live() int {
	n := 0
	for _, p := range s.started() {
		select {
		case <-p.done:
		default:
			n++
		}
	}
	return n
}

// withStarter makes the manager start its processes with start.
func withStarter(start startFunc) Option {
	return func(m *Manager) { m.start = start }
}

// newFakeManager starts a manager whose processes are fakes, with one pool
// "P" as pc describes (name and plugin filled in). The plugins directory
// holds an empty executable file "fake", so the catalog finds the plugin.
func newFakeManager(t *testing.T, s *fakeStarter, pc PoolConfig, opts ...Option) *Manager {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fake"), nil, 0o755))
	pc.Name, pc.Plugin = "P", "fake"
	cfg := Config{PluginDir: dir, SocketDir: filepath.Join(dir, "sockets"), Pools: []PoolConfig{pc}}
	m, err := New(cfg, append(opts, withStarter(s.start))...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = m.Shutdown(ctx)
	})
	return m
}

// blockUntil returns a behaviour whose tasks wait for release (or their
// context), and the function that releases them all.
func blockUntil() (func(context.Context, []byte) ([]byte, error), func()) {
	release := make(chan struct{})
	return func(ctx context.Context, in []byte) ([]byte, error) {
		select {
		case <-release:
			return in, nil
		case <-ctx.Done():
			return nil, errors.New("abandoned")
		}
	}, sync.OnceFunc(func() { close(release) })
}
