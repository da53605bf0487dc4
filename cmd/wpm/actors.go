package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wpmdev/wpm/cmd/wpm/internal/api"
)

// The long-running parts of wpm serve, each an actor for an oklog/run
// Group: an execute function that returns when the part ends, and an
// interrupt function that makes it return. serve lists them in the order
// they stop; the group interrupts them in that order, one after another,
// so an interrupt that stops its part before returning orders the
// shutdown. An interrupt is called once, from the goroutine running the
// group.

// shutdown is the actor that ends serve: the first signal makes wait
// return and starts the grace period the parts stop within (ctx); a
// second signal cuts it short. Should serve end otherwise (the HTTP server
// failed), no grace period bounds the stop, and signals are not watched.
type shutdown struct {
	signals    <-chan os.Signal
	grace      time.Duration
	logger     hclog.Logger
	quit, done chan struct{}
	// ctx and cancel are set by wait at the first signal, or by interrupt;
	// read only once interrupt has returned.
	ctx    context.Context
	cancel context.CancelFunc
}

func newShutdown(signals <-chan os.Signal, grace time.Duration, logger hclog.Logger) *shutdown {
	return &shutdown{signals: signals, grace: grace, logger: logger, quit: make(chan struct{}), done: make(chan struct{})}
}

// wait returns at the first signal, or when interrupted.
func (s *shutdown) wait() error {
	defer close(s.done)
	select {
	case <-s.quit:
	case sig := <-s.signals:
		s.logger.Info("shutting down", "signal", sig.String(), "grace", s.grace)
		s.ctx, s.cancel = context.WithTimeout(context.Background(), s.grace)
		go s.secondSignal(s.ctx, s.cancel)
	}
	return nil
}

// secondSignal ends the grace period at the next signal.
func (s *shutdown) secondSignal(grace context.Context, cancel context.CancelFunc) {
	select {
	case sig := <-s.signals:
		s.logger.Warn("second signal: stopping now", "signal", sig.String())
		cancel()
	case <-grace.Done():
	}
}

// interrupt stops wait and waits for it; ctx is the grace period from then on.
func (s *shutdown) interrupt(error) {
	close(s.quit)
	<-s.done
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
	}
}

// end ends the grace period, once the group has run.
func (s *shutdown) end() {
	if s.cancel != nil {
		s.cancel()
	}
}

// within is the actor of a part stopped within the grace period; an error
// stopping it (the part was cut off) is logged as msg.
func (s *shutdown) within(stop func(context.Context) error, msg string) (func() error, func(error)) {
	return stopping(func() {
		if err := stop(s.ctx); err != nil {
			s.logger.Warn(msg, "error", err)
		}
	})
}

// stopping is the actor of a part that runs on goroutines of its own once
// started: it waits until interrupted, and its interrupt calls stop.
func stopping(stop func()) (func() error, func(error)) {
	done := make(chan struct{})
	return func() error {
			<-done
			return nil
		}, func(error) {
			stop()
			close(done)
		}
}

// reloadOnHangup is the actor that calls reload at every signal on
// hangups. Its interrupt waits for a reload under way, so that none
// overlaps the shutdown.
func reloadOnHangup(hangups <-chan os.Signal, reload func() error) (func() error, func(error)) {
	quit, done := make(chan struct{}), make(chan struct{})
	return func() error {
			defer close(done)
			for {
				select {
				case <-hangups:
					_ = reload() // logged there
				case <-quit:
					return nil
				}
			}
		}, func(error) {
			close(quit)
			<-done
		}
}

// closeBound bounds writing the last answers and closing the connections.
const closeBound = 5 * time.Second

// serveHTTP is the actor of srv's HTTP server on ln: it returns should the
// server fail; its interrupt lets the answers under way be written, then
// closes the connections.
func serveHTTP(srv *api.Server, ln net.Listener, logger hclog.Logger) (func() error, func(error)) {
	httpSrv := srv.HTTPServer()
	return func() error {
			if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http server: %w", err)
			}
			return nil
		}, func(error) {
			closing, cancel := context.WithTimeout(context.Background(), closeBound)
			defer cancel()
			if err := httpSrv.Shutdown(closing); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("closing connections", "error", err)
			}
		}
}

// statsInterval is how often the pools' live state goes to the event
// stream, for the dashboard.
const statsInterval = time.Second

// publishStats is the actor that sends the pools' live state to srv's
// event stream every statsInterval.
func publishStats(srv *api.Server) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
			srv.PublishStats(ctx, statsInterval)
			<-ctx.Done() // PublishStats returns at once without an event stream
			return nil
		}, func(error) {
			cancel()
		}
}
