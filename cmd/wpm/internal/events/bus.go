package events

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/wpmdev/wpm/host"
)

// Record is one event on the bus, numbered in publication order from the
// bus's first id (see [New]).
type Record struct {
	ID         uint64         `json:"id"`
	Type       host.EventType `json:"type"`
	Time       time.Time      `json:"time"`
	TaskID     string         `json:"task,omitempty"`
	Pool       string         `json:"pool,omitempty"`
	Plugin     string         `json:"plugin,omitempty"`
	Slot       *int           `json:"slot,omitempty"` // on worker events
	PID        int            `json:"pid,omitempty"`
	Code       string         `json:"code,omitempty"`
	Error      string         `json:"error,omitempty"`
	DurationMs float64        `json:"durationMs,omitempty"`
	Fraction   *float64       `json:"fraction,omitempty"`
	Message    string         `json:"message,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	// Pools is the pools' live state, on a stats record (see [Bus.Send]).
	Pools json.RawMessage `json:"pools,omitempty"`
}

// TypeStats is the type of the records [Bus.Send] is for: the pools' live
// state, sent every few seconds to whoever listens and never kept.
const TypeStats host.EventType = "stats"

// JSON returns r as one line of JSON.
func (r Record) JSON() []byte {
	b, _ := json.Marshal(r) // a Record always encodes
	return b
}

// RecordOf makes the record of e.
func RecordOf(e host.Event) Record {
	r := Record{Type: e.Type, Time: e.Time.UTC(), TaskID: e.TaskID, Pool: e.Pool, Plugin: e.Plugin,
		PID: e.PID, Code: e.Code, Error: e.Error, Message: e.Message, Reason: e.Reason}
	if strings.HasPrefix(string(e.Type), "worker.") {
		slot := e.Slot
		r.Slot = &slot
	}
	if e.Type == host.EventTaskFinished {
		r.DurationMs = float64(e.Duration.Microseconds()) / 1000
	}
	if e.Type == host.EventTaskProgress {
		f := e.Fraction
		r.Fraction = &f
	}
	return r
}

// Bus keeps the last events in a ring and hands new ones to subscribers.
// Publish never blocks: a subscriber whose buffer is full is dropped. All
// its methods are safe for concurrent use.
type Bus struct {
	mu     sync.Mutex
	ring   []Record // ring[(i) % len] for ids first..last
	first  uint64   // the id of the bus's first record
	next   uint64   // the id of the next record
	buffer int
	subs   map[*Sub]struct{}
	closed bool
}

// DefaultSize is how many events a [Bus] keeps for resuming, and
// DefaultBuffer how many a subscriber may fall behind before it is
// dropped.
const (
	DefaultSize   = 4096
	DefaultBuffer = 512
)

// Option changes how [New] makes a bus.
type Option func(*Bus)

// WithFirstID numbers the bus's events from id (at least 1) instead of
// from the clock.
func WithFirstID(id uint64) Option {
	return func(b *Bus) { b.first = max(id, 1) }
}

// New returns a bus that keeps the last size events and lets a subscriber
// fall buffer events behind (defaults when ≤ 0).
//
// Its events are numbered from the wall clock in microseconds when it was
// made, so that a process started later numbers its events above every id
// an earlier one gave (unless it published more than a million events a
// second): a Last-Event-ID from before a restart is older than anything
// kept, and resuming with it is a gap, not a replay of unrelated events.
// The ids stay below 2^53 (until the year 2255), so JavaScript reads them
// exactly.
func New(size, buffer int, opts ...Option) *Bus {
	if size <= 0 {
		size = DefaultSize
	}
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	b := &Bus{ring: make([]Record, size), first: uint64(max(time.Now().UnixMicro(), 1)), buffer: buffer, subs: make(map[*Sub]struct{})}
	for _, o := range opts {
		o(b)
	}
	b.next = b.first
	return b
}

// Publish numbers e, keeps it, and hands it to every subscriber; one whose
// buffer is full is dropped (its channel closed, [Sub.Dropped] true). It is
// a host.WithEvents sink.
func (b *Bus) Publish(e host.Event) {
	r := RecordOf(e)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	r.ID = b.next
	b.next++
	b.ring[r.ID%uint64(len(b.ring))] = r
	b.fanOut(r, true)
}

// fanOut hands r to the subscribers (with filtered, to those whose filter
// passes it; else only to those without one) and drops any whose buffer
// is full. b.mu must be held.
func (b *Bus) fanOut(r Record, filtered bool) {
	for s := range b.subs {
		if s.filter != nil && (!filtered || !s.filter(r)) {
			continue
		}
		select {
		case s.c <- r:
		default:
			s.dropped = true
			b.remove(s)
		}
	}
}

// Send hands r to the subscribers without a filter, as it is: not
// numbered and not kept. A subscriber whose buffer is full is dropped.
func (b *Bus) Send(r Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fanOut(r, false)
}

// Sub is one subscription: first Backlog, then C until it is closed.
type Sub struct {
	// Backlog holds the kept events after the one asked for, oldest first.
	Backlog []Record
	// Gap is true when events after the one asked for were no longer kept,
	// or the one asked for is not one this bus gave (a later id, or one
	// from before a restart).
	Gap bool
	// C delivers newer events; it is closed when the subscriber was
	// dropped, canceled or the bus closed.
	C       <-chan Record
	c       chan Record
	filter  func(Record) bool
	bus     *Bus
	dropped bool // guarded by bus.mu
}

// Subscribe returns a subscription to the events after id after (0: only
// new ones, unless all is set, and never a gap) that pass filter (nil:
// all). The caller must call Cancel.
func (b *Bus) Subscribe(after uint64, all bool, filter func(Record) bool) *Sub {
	c := make(chan Record, b.buffer)
	s := &Sub{C: c, c: c, filter: filter, bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if after > 0 || all {
		s.Backlog, s.Gap = b.since(after, filter)
	}
	if b.closed {
		close(c)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// since returns the kept records after id after (0: all kept) that pass
// filter, and whether some after it are no longer kept or after is not an
// id this bus gave: one at or above the next id (another run's, or one
// whose successor overflows) is a gap with nothing replayed. b.mu must be
// held.
func (b *Bus) since(after uint64, filter func(Record) bool) ([]Record, bool) {
	size := uint64(len(b.ring))
	first := b.first
	if b.next-b.first > size {
		first = b.next - size
	}
	if after >= b.next {
		return nil, true
	}
	gap := after > 0 && after+1 < first
	var out []Record
	for id := max(after+1, first); id < b.next; id++ {
		r := b.ring[id%size]
		if filter == nil || filter(r) {
			out = append(out, r)
		}
	}
	return out, gap
}

// Find returns the kept records that pass filter, oldest first.
func (b *Bus) Find(filter func(Record) bool) []Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	out, _ := b.since(0, filter)
	return out
}

// Dropped reports whether the bus dropped s because it fell behind.
func (s *Sub) Dropped() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.dropped
}

// Cancel ends the subscription; it may be called more than once.
func (s *Sub) Cancel() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.remove(s)
}

// remove closes s's channel once. b.mu must be held.
func (b *Bus) remove(s *Sub) {
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.c)
	}
}

// Close ends every subscription and publishes nothing more; streams
// reading from it end, so that the HTTP server can shut down.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.remove(s)
	}
}
