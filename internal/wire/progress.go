package wire

import (
	"context"
	"math"
	"net/rpc"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-plugin"
)

// Report sends a progress report of the task running under ctx, as
// shared.Progress documents: cleaned by [CleanProgress], rate-limited to
// one per [ProgressInterval] (the first, and the first that reaches 1,
// always go); nothing under a host that does not listen or outside a task.
func Report(ctx context.Context, fraction float64, msg string) {
	r, ok := ctx.Value(reporterKey{}).(*reporter)
	if !ok {
		return
	}
	if fraction, msg, ok = CleanProgress(fraction, msg); ok {
		r.report(fraction, msg)
	}
}

// CleanProgress is a progress report as it may be kept: ok is false for a
// fraction that is no number, which is dropped; others are clamped to 0..1,
// and the message is cut to [MaxProgressMessage] bytes of valid UTF-8. The
// SDK applies it before sending ([Report]), the host again on what it
// receives, since a plugin may speak the protocol without this SDK.
func CleanProgress(fraction float64, msg string) (float64, string, bool) {
	if math.IsNaN(fraction) {
		return 0, "", false
	}
	return min(max(fraction, 0), 1), strings.ToValidUTF8(clipMessage(msg), ""), true
}

// ProgressInterval is the shortest time between two progress reports of
// one task that are sent to the host.
const ProgressInterval = 100 * time.Millisecond

// MaxProgressMessage is the longest progress message, in bytes, sent.
const MaxProgressMessage = 200

// progressMethod is the net/rpc name of [ProgressServer.Report] on the
// callback server the host offers a worker over go-plugin's broker.
const progressMethod = "Plugin.Report"

// ProgressArgs is one progress report over the wire, from a plugin to the
// host's callback server.
type ProgressArgs struct {
	// Call is the host's number for the task, from [RunArgs].
	Call uint64
	// Seq orders one task's reports; the host drops older ones that
	// arrive late.
	Seq      uint64
	Fraction float64
	Message  string
}

// ProgressReply is the empty answer to a progress report.
type ProgressReply struct{}

// WithProgressFunc returns a context that, given to an [RPCClient]'s Run,
// makes the plugin's progress reports for that task reach fn. fn is
// called from the connection's goroutines: it must be quick and safe for
// concurrent use. The host uses it; plugins call shared.Progress.
func WithProgressFunc(ctx context.Context, fn func(fraction float64, msg string)) context.Context {
	return context.WithValue(ctx, progressFuncKey{}, fn)
}

type progressFuncKey struct{}

// WithProgressTo returns a context whose [Report]s go to fn as they would
// to the host (clamped and cut the same way, but none dropped): what
// shared.WithProgressTo gives a plugin's unit tests.
func WithProgressTo(ctx context.Context, fn func(fraction float64, msg string)) context.Context {
	send := func(a ProgressArgs) { fn(a.Fraction, a.Message) }
	return context.WithValue(ctx, reporterKey{}, newReporter(send, time.Now, 0))
}

// progressHost is the host's side of progress for one worker: the
// callback server it offers the worker over its broker, on one stream
// opened with the first task that wants progress and served until the
// worker's connection ends, and the tasks waiting for reports.
type progressHost struct {
	broker *plugin.MuxBroker
	once   sync.Once
	stream uint32

	mu    sync.Mutex
	next  uint64
	calls map[uint64]*progressCall
}

type progressCall struct {
	fn      func(float64, string)
	lastSeq uint64
}

func newProgressHost(b *plugin.MuxBroker) *progressHost {
	if b == nil {
		return nil
	}
	return &progressHost{broker: b, calls: make(map[uint64]*progressCall)}
}

// register makes the task under ctx receive progress reports, if ctx asks
// for them, and returns the broker stream and call number to send with the
// task, and the function to call when it ended.
func (h *progressHost) register(ctx context.Context) (stream uint32, callID uint64, done func()) {
	fn, ok := ctx.Value(progressFuncKey{}).(func(float64, string))
	if h == nil || !ok {
		return 0, 0, func() {}
	}
	h.once.Do(func() {
		h.stream = h.broker.NextId()
		go h.serve(h.stream)
	})
	h.mu.Lock()
	h.next++
	callID = h.next
	h.calls[callID] = &progressCall{fn: fn}
	h.mu.Unlock()
	return h.stream, callID, func() {
		h.mu.Lock()
		delete(h.calls, callID)
		h.mu.Unlock()
	}
}

// serve accepts the plugin's connection to the callback server on stream
// and serves it until the worker's connection ends.
func (h *progressHost) serve(stream uint32) {
	conn, err := h.broker.Accept(stream)
	if err != nil {
		return // a plugin built without progress does not dial; the accept gives up
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Plugin", &ProgressServer{h: h}); err != nil {
		_ = conn.Close()
		return
	}
	srv.ServeConn(conn)
}

// deliver hands a report to its task, unless the task ended or a newer
// report came first.
func (h *progressHost) deliver(args ProgressArgs) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.calls[args.Call]
	if ok && args.Seq > c.lastSeq {
		c.lastSeq = args.Seq
		c.fn(args.Fraction, args.Message) // one at a time, in order
	}
}

// ProgressServer is the callback server the host offers a worker over
// go-plugin's broker; plugins reach it through shared.Progress ([Report]).
type ProgressServer struct {
	h *progressHost
}

// Report delivers one progress report to the task it belongs to.
func (s *ProgressServer) Report(args ProgressArgs, _ *ProgressReply) error {
	s.h.deliver(args)
	return nil
}

// progressPlugin is the plugin's side: its connection to the host's
// callback server, dialled once, with the first task that carries a
// stream, and kept for the worker's life.
type progressPlugin struct {
	broker *plugin.MuxBroker
	mu     sync.Mutex
	client *rpc.Client
	failed bool
}

func newProgressPlugin(b *plugin.MuxBroker) *progressPlugin {
	if b == nil {
		return nil
	}
	return &progressPlugin{broker: b}
}

// withReporter returns ctx carrying the reporter of the task args
// describes, or ctx as it is when the host wants no progress, and the
// function to call before the task answers: it waits (a bounded time) for
// the reports sent to arrive, so that they come before the answer.
func (p *progressPlugin) withReporter(ctx context.Context, args RunArgs) (context.Context, func()) {
	if p == nil || args.Progress == 0 {
		return ctx, func() {}
	}
	c := p.dial(args.Progress)
	if c == nil {
		return ctx, func() {}
	}
	send, flush := sender(c, args.Call)
	return context.WithValue(ctx, reporterKey{}, newReporter(send, time.Now, ProgressInterval)), flush
}

// dial returns the client of the host's callback server on stream, dialled
// once; nil when that failed.
func (p *progressPlugin) dial(stream uint32) *rpc.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil && !p.failed {
		conn, err := p.broker.Dial(stream)
		if err != nil {
			p.failed = true
			return nil
		}
		p.client = rpc.NewClient(conn)
	}
	return p.client
}

// sender returns the function that sends reports of task call over c, one
// after the other, each once the host took the one before (net/rpc would
// serve them concurrently, out of order), and the function that waits, at
// most flushTimeout, for those sent to arrive.
func sender(c *rpc.Client, call uint64) (send func(ProgressArgs), flush func()) {
	var (
		sent sync.WaitGroup
		mu   sync.Mutex
		prev chan struct{}
	)
	send = func(a ProgressArgs) {
		a.Call = call
		mu.Lock()
		before, mine := prev, make(chan struct{})
		prev = mine
		sent.Add(1)
		mu.Unlock()
		go func() {
			defer sent.Done()
			defer close(mine)
			if before != nil {
				<-before
			}
			<-c.Go(progressMethod, a, new(ProgressReply), make(chan *rpc.Call, 1)).Done
		}()
	}
	flush = func() {
		mu.Lock()
		last := prev
		mu.Unlock()
		if last == nil {
			return // nothing sent
		}
		waitBounded(&sent, flushTimeout)
	}
	return send, flush
}

// waitBounded waits for wg, at most d.
func waitBounded(wg *sync.WaitGroup, d time.Duration) {
	all := make(chan struct{})
	go func() {
		wg.Wait()
		close(all)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
	}
}

// flushTimeout bounds how long a task's answer waits for its progress
// reports to reach the host.
const flushTimeout = time.Second

type reporterKey struct{}

// reporter sends one task's progress reports, rate-limited.
type reporter struct {
	send func(ProgressArgs)
	lim  limiter
	seq  atomic.Uint64
}

func newReporter(send func(ProgressArgs), now func() time.Time, every time.Duration) *reporter {
	return &reporter{send: send, lim: limiter{every: every, now: now}}
}

func (r *reporter) report(fraction float64, msg string) {
	if !r.lim.allow(fraction) {
		return
	}
	r.send(ProgressArgs{Seq: r.seq.Add(1), Fraction: fraction, Message: msg})
}

// limiter lets a report through at most once per interval; the first one,
// and the first one that reaches 1, always pass.
type limiter struct {
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	last    time.Time
	started bool
	done    bool
}

func (l *limiter) allow(fraction float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	final := fraction >= 1 && !l.done
	if l.started && !final && now.Sub(l.last) < l.every {
		return false
	}
	l.started, l.last = true, now
	if fraction >= 1 {
		l.done = true
	}
	return true
}

// clipMessage cuts msg to MaxProgressMessage bytes on a rune boundary.
func clipMessage(msg string) string {
	if len(msg) <= MaxProgressMessage {
		return msg
	}
	cut := MaxProgressMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}
