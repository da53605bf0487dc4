package testkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Server is a wpm serve child process, for tests that share one server
// (started in TestMain, where there is no testing.T).
type Server struct {
	// URL is the server's base URL, like http://127.0.0.1:40123.
	URL string
	// Logs is what it wrote to standard error.
	Logs *SyncBuffer

	cmd  *exec.Cmd
	done chan error
}

// StartServe starts the wpm binary on config (YAML text), with the plugins
// in pluginsDir, its config file and task store in dir, listening on a
// free loopback port, and waits up to 20 s until /readyz answers 200.
func StartServe(wpm, pluginsDir, dir, config string) (*Server, error) {
	file := filepath.Join(dir, "wpm.yaml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return nil, err
	}
	cmd := exec.Command(wpm, "serve", "--config", file, "--addr", addr, "--plugins-dir", pluginsDir)
	cmd.Env = append(os.Environ(), "WPM_NATS_STOREDIR="+filepath.Join(dir, "nats"))
	s := &Server{URL: "http://" + addr, Logs: new(SyncBuffer), cmd: cmd, done: make(chan error, 1)}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_, _ = io.Copy(s.Logs, stderr)
		s.done <- cmd.Wait()
	}()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
	_ = s.Stop()
	return nil, fmt.Errorf("wpm serve never became ready; its log:\n%s", s.Logs.String())
}

// Stop ends the server with SIGTERM, or SIGKILL when it has not exited 10 s
// later, and waits for it.
func (s *Server) Stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	return errors.Join(errors.New("wpm serve did not stop on SIGTERM within 10s"), <-s.done)
}
