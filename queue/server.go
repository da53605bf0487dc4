package queue

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"
)

// maxPayload is the largest message NATS takes (64 MiB): a task's input,
// or a record with its result, must fit in one.
const maxPayload = 64 << 20

// payloadSlack is what a task message or record adds to its input or
// result.
const payloadSlack = 64 << 10

// headerSlack is what a message's headers (message id, expected revision)
// may take of the server's max_payload.
const headerSlack = 1 << 10

// maxMessage is the largest message body (a task, or a record) the
// connected server takes: its real max_payload, which an external server
// may set lower than wpm's own.
func (e *Engine) maxMessage() int64 { return e.nc.MaxPayload() - headerSlack }

// readyBound bounds the embedded server's start.
const readyBound = 10 * time.Second

// embedded is the NATS server wpm runs in its own process, and the lock it
// holds on its store for the process's life.
type embedded struct {
	lock *os.File
	opts Options

	mu  sync.Mutex
	srv *server.Server // replaced by restart
}

// InProcessConn connects to the server running now: the engine's
// connection reconnects through it to a restarted server.
func (s *embedded) InProcessConn() (net.Conn, error) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	return srv.InProcessConn()
}

// restart stops the server and starts a new one on the same store (the
// lock stays held); connections made through InProcessConn reconnect.
func (s *embedded) restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	srv, err := newServer(s.opts)
	if err != nil {
		return err
	}
	s.srv = srv
	return nil
}

// stop shuts the server down, waits for it, and lets go of the store.
func (s *embedded) stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	srv.Shutdown()
	srv.WaitForShutdown()
	_ = s.lock.Close() // closing the file releases the flock
}

// connect returns a connection to the external server at o.URL, or starts
// the embedded one and connects to it in process; srv is nil for an
// external server.
func connect(o Options) (srv *embedded, nc *nats.Conn, err error) {
	if o.URL != "" {
		nc, err = nats.Connect(o.URL, externalOptions(o)...)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to NATS at %s (nats.url): %w", o.URL, err)
		}
		return nil, nc, nil
	}
	srv, err = startServer(o)
	if err != nil {
		return nil, nil, err
	}
	// It reconnects for ever, quickly and without buffering: only a
	// restart of the embedded server (storage.go) disconnects it.
	nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name(o.Name), listenCredentials(o),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		srv.stop()
		return nil, nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	return srv, nc, nil
}

// externalOptions are the options of a connection to an external server:
// it reconnects for ever, and buffers nothing while disconnected, so that
// a submit during an outage fails at once instead of waiting.
func externalOptions(o Options) []nats.Option {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: closed on purpose
				o.Logger.Warn("NATS connection lost; reconnecting", "error", err)
			}
		}),
	}
	if o.Credentials != "" {
		opts = append(opts, nats.UserCredentials(o.Credentials))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	return opts
}

// startServer starts the embedded NATS server with JetStream on a file
// store in o.StoreDir, made if missing and locked for this process.
func startServer(o Options) (*embedded, error) {
	if err := checkStoreDir(o.StoreDir); err != nil {
		return nil, err
	}
	lock, err := lockStore(o.StoreDir)
	if err != nil {
		return nil, err
	}
	srv, err := newServer(o)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	return &embedded{srv: srv, lock: lock, opts: o}, nil
}

// newServer starts the embedded server and waits until it takes
// connections.
func newServer(o Options) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "wpm",
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		MaxPayload: int32(min(max(o.MaxInputBytes, o.MaxResultBytes)+payloadSlack, maxPayload)),
		SyncAlways: o.SyncAlways,
		DontListen: o.Listen == "",
	}
	if o.Listen != "" {
		switch {
		case o.ListenToken != "":
			opts.Authorization = o.ListenToken
		case o.ListenUser != "":
			opts.Username, opts.Password = o.ListenUser, o.ListenPassword
		case o.ListenInsecure:
			o.Logger.Warn("the embedded NATS server listens without credentials (nats.listenInsecure): any process that reaches it can read tasks and forge their results; set nats.listenAuth", "listen", o.Listen)
		default:
			return nil, fmt.Errorf("%w: nats.listen (%s) opens the embedded NATS server, where tasks and their records are kept; set nats.listenAuth.token (or user and password), or nats.listenInsecure: true to open it without credentials", ErrInsecureListen, o.Listen)
		}
		host, port, err := net.SplitHostPort(o.Listen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			return nil, fmt.Errorf("nats.listen: %q is not host:port like 127.0.0.1:4222", o.Listen)
		}
		opts.Host, opts.Port = host, n
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	srv.SetLogger(natsLogger{o.Logger.Named("nats")}, o.Logger.IsTrace(), false)
	go srv.Start()
	if !srv.ReadyForConnections(readyBound) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("the embedded NATS server did not start within %s; check nats.storeDir (%s) and nats.listen (%q)", readyBound, o.StoreDir, o.Listen)
	}
	return srv, nil
}

// checkStoreDir makes dir if missing and checks that files can be written
// there, so that a bad nats.storeDir fails at start with a clear message.
func checkStoreDir(dir string) error {
	if dir == "" {
		return errors.New("nats.storeDir is empty; name a directory for the task store, like data/nats")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("nats.storeDir: can not create %s: %w; make it or point nats.storeDir elsewhere", dir, err)
	}
	f, err := os.CreateTemp(dir, ".wpm-write-check-*")
	if err != nil {
		return fmt.Errorf("nats.storeDir: can not write in %s: %w; make it writable by wpm's user or point nats.storeDir elsewhere", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(filepath.Clean(name))
}

// ErrInsecureListen means nats.listen was set without credentials.
var ErrInsecureListen = errors.New("the embedded NATS server would listen without credentials")

// listenCredentials is the in-process client's login to the embedded
// server: what nats.listenAuth asks of every client.
func listenCredentials(o Options) nats.Option {
	return func(no *nats.Options) error {
		switch {
		case o.Listen == "":
		case o.ListenToken != "":
			no.Token = o.ListenToken
		case o.ListenUser != "":
			no.User, no.Password = o.ListenUser, o.ListenPassword
		}
		return nil
	}
}

// storeLockName is the file in nats.storeDir whose flock the process
// running the embedded server holds; it also holds that process's pid.
const storeLockName = "wpm.lock"

// ErrStoreLocked means another process runs an embedded server on the same
// nats.storeDir: two servers on one store lose each other's writes.
var ErrStoreLocked = errors.New("nats.storeDir is in use by another process")

// lockStore takes the exclusive flock of dir's lock file without waiting
// and writes this process's pid into it; the lock lasts until the returned
// file is closed (or the process ends, however it ends).
func lockStore(dir string) (*os.File, error) {
	path := filepath.Join(dir, storeLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("nats.storeDir: can not open the lock file %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil && len(bytes.TrimSpace(b)) > 0 {
			holder = "process " + string(bytes.TrimSpace(b))
		}
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (%s) holds %s; stop it, or give this wpm its own nats.storeDir (or point both at one NATS with nats.url)", ErrStoreLocked, holder, path, dir)
		}
		return nil, fmt.Errorf("nats.storeDir: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
