package async

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// maxPayload is the largest message NATS takes (64 MiB): a task's input,
// or a record with its result, must fit in one.
const maxPayload = 64 << 20

// payloadSlack is what a task message or record adds to its input or
// result.
const payloadSlack = 64 << 10

// readyBound bounds the embedded server's start.
const readyBound = 10 * time.Second

// connect returns a connection to the external server at o.URL, or starts
// the embedded one and connects to it in process; srv is nil for an
// external server.
func connect(o Options) (srv *server.Server, nc *nats.Conn, err error) {
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
	nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name(o.Name))
	if err != nil {
		stopServer(srv)
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
			o.Logger.Warn("NATS connection lost; reconnecting", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			o.Logger.Info("NATS connection back", "server", nc.ConnectedUrlRedacted())
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
// store in o.StoreDir, made if missing.
func startServer(o Options) (*server.Server, error) {
	if err := checkStoreDir(o.StoreDir); err != nil {
		return nil, err
	}
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
		stopServer(srv)
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

// stopServer shuts srv down and waits for it.
func stopServer(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}
