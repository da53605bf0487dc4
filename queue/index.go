package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Finding tasks without reading every record: each new task appends one
// entry (its id, creation time, pool, plugin and schedule) to the stream
// WPM_TASK_INDEX, in order, the task id as message id. A page (Page) walks
// the stream newest first by sequence, from its cursor down, reading
// entries by direct get a batch at a time; the pool, plugin and schedule
// filters are the entries', and only the records of entries that pass are
// read (the state filter is the record's). An entry whose record expired
// is skipped. The stream keeps entries async.retention + indexSlack: a
// task still live after that (one queued or scheduled that long) is no
// longer listed, though GET /v1/tasks/{id} still finds it. Tasks stored by
// a wpm from before the index have no entry and are not listed.

const (
	indexStreamName = "WPM_TASK_INDEX"
	indexSubject    = "wpm.taskindex"
	// indexSlack is how much longer than async.retention entries are
	// kept: a task ends some time after it was made.
	indexSlack = 24 * time.Hour
	// indexReaders bounds a page's reads in flight.
	indexReaders = 16
	// maxScanFactor bounds the entries one page reads, as a multiple of
	// its limit (at least minScan): a page of a rare state may hold fewer
	// tasks than its limit, and its Next goes on.
	maxScanFactor = 20
	minScan       = 2000
	// pageTime bounds a page's reading too, once it has read timedScan
	// entries: a page of a rare state answers in about this time plus one
	// read, with fewer tasks than its limit and a next.
	pageTime  = 25 * time.Millisecond
	timedScan = 200
	// maxRead is the most entries, or records, one read asks for (a
	// batched direct get of many subjects answers 1,024 at most).
	maxRead = 512
)

// indexEntry is one task's entry in the index.
type indexEntry struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
	Pool      string    `json:"pool,omitempty"`
	Plugin    string    `json:"plugin,omitempty"`
	Schedule  string    `json:"schedule,omitempty"`
	// seq is the entry's sequence in the index.
	seq uint64
}

// entryOf is t's index entry.
func entryOf(t Task) indexEntry {
	return indexEntry{ID: t.ID, CreatedAt: t.CreatedAt, Pool: t.Pool, Plugin: t.Plugin, Schedule: t.Schedule}
}

// passes reports whether the entry passes f's filters on entries.
func (x indexEntry) passes(f Filter) bool {
	return (f.Pool == "" || x.Pool == f.Pool) && (f.Plugin == "" || x.Plugin == f.Plugin) &&
		(f.Schedule == "" || x.Schedule == f.Schedule)
}

// indexConfig is the index stream's.
func (e *Engine) indexConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        indexStreamName,
		Subjects:    []string{indexSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      e.opts.Retention + indexSlack,
		Duplicates:  min(e.opts.DedupWindow, e.opts.Retention+indexSlack),
		Replicas:    e.opts.Replicas,
		AllowDirect: true,
	}
}

// setUpIndex makes (or updates) the index stream.
func (e *Engine) setUpIndex(ctx context.Context) error {
	cfg := e.indexConfig()
	s, err := ensureStream(ctx, e.js, cfg)
	if err != nil {
		return fmt.Errorf("make the task index %s: %w", indexStreamName, err)
	}
	if got := s.CachedInfo().Config; got.MaxAge != cfg.MaxAge || !got.AllowDirect {
		if s, err = e.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("update the task index %s: %w", indexStreamName, err)
		}
	}
	e.index = s
	return nil
}

// indexTask appends t's entry to the index; a task whose entry could not
// be stored runs as any other but is not listed (logged).
func (e *Engine) indexTask(ctx context.Context, t Task) {
	b, err := encode(entryOf(t))
	if err == nil {
		_, err = e.js.Publish(ctx, indexSubject, b, jetstream.WithMsgID(t.ID))
	}
	if err != nil {
		e.logger.Warn("can not index a new task; it runs but GET /v1/tasks does not list it", "task", t.ID, "error", err)
	}
}

// Page is one page of tasks, newest first.
type Page struct {
	// Tasks are the page's tasks; a task whose result or input is kept
	// beside its record has only ResultSize and InputSize.
	Tasks []Task
	// Next is the cursor of the next page; empty on the last.
	Next string
}

// ErrBadCursor means a Filter's Cursor is not one Page made.
var ErrBadCursor = errors.New("bad cursor")

// cursorPrefix marks a cursor's version.
const cursorPrefix = "i1."

// cursorOf is the cursor of the page below index sequence seq.
func cursorOf(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatUint(seq, 10)))
}

// cursorSeq returns the sequence a cursor continues below.
func cursorSeq(cursor string) (uint64, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err == nil {
		if v, ok := strings.CutPrefix(string(b), cursorPrefix); ok {
			if seq, err := strconv.ParseUint(v, 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: %q is not a cursor of GET /v1/tasks; give the next of a page", ErrBadCursor, clipKey(cursor))
}

// Page returns the tasks that pass f, newest first, from f.Cursor on, and
// the cursor of the next page. It reads the index entries from the cursor
// down and only the records of those that pass f's pool, plugin and
// schedule filters, until it has f.Limit tasks, or has read maxScanFactor
// times as many entries (at least minScan), or has read for pageTime
// (and at least timedScan entries). New tasks do not move a
// cursor: pages that follow it have no duplicates or gaps.
func (e *Engine) Page(ctx context.Context, f Filter) (Page, error) {
	p, err := e.page(ctx, f)
	return p, e.unavailable(err)
}

// page is Page before NATS errors are translated.
func (e *Engine) page(ctx context.Context, f Filter) (Page, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var top uint64 // the page reads entries below top
	if f.Cursor != "" {
		seq, err := cursorSeq(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		top = seq
	}
	info, err := e.index.Info(ctx)
	if err != nil {
		return Page{}, fmt.Errorf("read the task index: %w", err)
	}
	first := info.State.FirstSeq
	if top == 0 || top > info.State.LastSeq+1 {
		top = info.State.LastSeq + 1
	}
	out := Page{Tasks: []Task{}}
	budget := max(maxScanFactor*f.Limit, minScan)
	// Each read asks for the entries the page still needs, times factor:
	// 1 at first without filters, 4 with; doubled after each read, as a
	// read costs more than a few hundred entries (docs/BENCHMARKS.md).
	factor := 1
	if f.State != "" || f.Pool != "" || f.Plugin != "" || f.Schedule != "" {
		factor = 4
	}
	start, scanned := time.Now(), 0
	for top > first && top > 1 && budget > 0 && (scanned < timedScan || time.Since(start) < pageTime) {
		batch := min((f.Limit-len(out.Tasks))*factor, maxRead, budget)
		factor *= 2
		lo := max(first, top-min(uint64(batch), top-1), 1)
		budget -= int(top - lo)
		scanned += int(top - lo)
		entries, err := e.entries(ctx, lo, top)
		if err != nil {
			return Page{}, err
		}
		var want []indexEntry
		for i := len(entries) - 1; i >= 0; i-- {
			if entries[i].ID != "" && entries[i].passes(f) {
				want = append(want, entries[i])
			}
		}
		recs, err := e.records(ctx, want)
		if err != nil {
			return Page{}, err
		}
		for i, t := range recs {
			if t == nil || f.State != "" && t.State != f.State {
				continue
			}
			out.Tasks = append(out.Tasks, *t)
			if len(out.Tasks) == f.Limit {
				if seq := want[i].seq; seq > first && seq > 1 {
					out.Next = cursorOf(seq)
				}
				return out, nil
			}
		}
		top = lo
	}
	if top > first && top > 1 {
		out.Next = cursorOf(top) // the scan's bound, not the index's end
	}
	return out, nil
}

// entries reads the index entries of sequences lo to hi-1, in order, in
// one batched read; a missing one (expired) is left empty.
func (e *Engine) entries(ctx context.Context, lo, hi uint64) ([]indexEntry, error) {
	out := make([]indexEntry, hi-lo)
	msgs, err := e.directBatch(ctx, indexStreamName, map[string]any{"seq": lo, "batch": hi - lo})
	if errors.Is(err, errNoBatch) {
		return e.entriesOneByOne(ctx, lo, out)
	}
	if err != nil {
		return nil, fmt.Errorf("read the task index: %w", err)
	}
	for _, m := range msgs {
		if m.seq < lo || m.seq >= hi {
			continue
		}
		x := &out[m.seq-lo]
		_ = json.Unmarshal(m.data, x) // a broken entry is skipped
		x.seq = m.seq
	}
	return out, nil
}

// entriesOneByOne is entries for a server without batched reads.
func (e *Engine) entriesOneByOne(ctx context.Context, lo uint64, out []indexEntry) ([]indexEntry, error) {
	err := parallel(ctx, len(out), func(i int) error {
		msg, err := e.index.GetMsg(ctx, lo+uint64(i))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the task index: %w", err)
		}
		_ = json.Unmarshal(msg.Data, &out[i])
		out[i].seq = msg.Sequence
		return nil
	})
	return out, err
}

// records reads the records of entries, in order, in one batched read (the
// last message of each key's subject); one that expired is nil.
func (e *Engine) records(ctx context.Context, entries []indexEntry) ([]*Task, error) {
	out := make([]*Task, len(entries))
	if len(entries) == 0 {
		return out, nil
	}
	subjects := make([]string, len(entries))
	at := make(map[string]int, len(entries))
	for i, x := range entries {
		subjects[i] = "$KV." + bucketName + "." + x.ID
		at[subjects[i]] = i
	}
	msgs, err := e.directBatch(ctx, "KV_"+bucketName, map[string]any{"multi_last": subjects, "batch": len(subjects)})
	if errors.Is(err, errNoBatch) {
		return e.recordsOneByOne(ctx, entries, out)
	}
	if err != nil {
		return nil, fmt.Errorf("read task records: %w", err)
	}
	for _, m := range msgs {
		i, ok := at[m.subject]
		if !ok || m.header.Get("KV-Operation") != "" || m.header.Get("Nats-Marker-Reason") != "" {
			continue // deleted, purged or expired
		}
		var t Task
		if json.Unmarshal(m.data, &t) == nil {
			out[i] = &t
		}
	}
	return out, nil
}

// recordsOneByOne is records for a server without batched reads.
func (e *Engine) recordsOneByOne(ctx context.Context, entries []indexEntry, out []*Task) ([]*Task, error) {
	err := parallel(ctx, len(out), func(i int) error {
		t, _, err := e.get(ctx, entries[i].ID)
		switch {
		case errors.Is(err, ErrUnknownTask):
			return nil
		case err != nil:
			return err
		}
		out[i] = &t
		return nil
	})
	return out, err
}

// parallel calls f(0) to f(n-1), indexReaders at a time, and returns the
// first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, indexReaders)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
