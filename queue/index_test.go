package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/host"
)

// seedTasks stores n ended records made by mk, with their index entries,
// straight into the bucket and the index (no run), oldest first, and
// returns them.
func seedTasks(tb testing.TB, e *Engine, n int, mk func(i int) Task) []Task {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := make([]Task, n)
	var index []jetstream.PubAckFuture
	for i := range n {
		t := mk(i)
		t.ID, t.CreatedAt = newID(), time.Now().UTC()
		out[i] = t
		b, err := encode(t)
		require.NoError(tb, err)
		// Records first, each before its entry, as Submit does.
		if _, err := e.js.PublishAsync("$KV."+bucketName+"."+t.ID, b); err != nil {
			tb.Fatal(err)
		}
		x, err := encode(entryOf(t))
		require.NoError(tb, err)
		f, err := e.js.PublishAsync(indexSubject, x, jetstream.WithMsgID(t.ID))
		require.NoError(tb, err)
		index = append(index, f)
		if len(index) == 4096 || i == n-1 {
			select {
			case <-e.js.PublishAsyncComplete():
			case <-ctx.Done():
				tb.Fatal("seeding timed out")
			}
			for _, f := range index {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					tb.Fatal(err)
				}
			}
			index = index[:0]
		}
	}
	return out
}

// seedShape is the records of the index tests: pools A and B and
// one-shots of cpuload, states in turn.
func seedShape(i int) Task {
	t := Task{State: []State{StateSucceeded, StateFailed, StateCanceled}[i%3], Input: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	switch i % 4 {
	case 0, 1:
		t.Pool, t.Plugin = "A", "misbehave"
	case 2:
		t.Pool, t.Plugin = "B", "misbehave"
	default:
		t.Plugin = "cpuload"
	}
	return t
}

// pages walks every page of f, calling between each; it returns the ids.
func pages(t *testing.T, e *Engine, f Filter, between func()) (ids []string, n int) {
	t.Helper()
	for {
		p, err := e.Page(context.Background(), f)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Tasks), f.Limit)
		for _, task := range p.Tasks {
			ids = append(ids, task.ID)
		}
		n++
		if p.Next == "" {
			return ids, n
		}
		f.Cursor = p.Next
		between()
	}
}

// Pages go newest first with a cursor, filtered by state, pool and
// plugin, without duplicates or gaps while new tasks arrive; an expired
// record is skipped; a bad cursor is refused.
func TestPage_cursorFilters(t *testing.T) {
	e := startEngine(t, newManager(t, nil), testOptions(t.TempDir()))
	seeded := seedTasks(t, e, 120, seedShape)
	known := seeded // those a walk from the top sees: not those arriving during it
	want := func(keep func(Task) bool) []string {
		var ids []string
		for i := len(known) - 1; i >= 0; i-- {
			if keep(known[i]) {
				ids = append(ids, known[i].ID)
			}
		}
		return ids
	}
	var arrived []Task
	arrive := func() { arrived = append(arrived, seedTasks(t, e, 5, seedShape)...) }

	expect := want(func(Task) bool { return true })
	all, n := pages(t, e, Filter{Limit: 50}, arrive)
	assert.Equal(t, expect, all)
	assert.Equal(t, 3, n)

	cases := []struct {
		f    Filter
		keep func(Task) bool
	}{
		{Filter{Pool: "A", Limit: 7}, func(t Task) bool { return t.Pool == "A" }},
		{Filter{State: StateFailed, Limit: 10}, func(t Task) bool { return t.State == StateFailed }},
		{Filter{Plugin: "cpuload", State: StateCanceled, Limit: 4}, func(t Task) bool { return t.Plugin == "cpuload" && t.State == StateCanceled }},
		{Filter{Pool: "B", State: StateSucceeded, Limit: 3}, func(t Task) bool { return t.Pool == "B" && t.State == StateSucceeded }},
	}
	for _, c := range cases {
		known = append(known, arrived...)
		arrived = nil
		expect := want(c.keep)
		ids, n := pages(t, e, c.f, arrive)
		assert.Equal(t, expect, ids, "%+v", c.f)
		assert.GreaterOrEqual(t, n, 3, "%+v", c.f)
	}

	// A page reads only the records it shows (and those the state filter
	// rejects): an expired one is skipped.
	require.NoError(t, e.kv.Purge(context.Background(), seeded[119].ID))
	p, err := e.Page(context.Background(), Filter{Limit: 3, Cursor: cursorOf(uint64(121))})
	require.NoError(t, err)
	require.Len(t, p.Tasks, 3)
	assert.Equal(t, seeded[118].ID, p.Tasks[0].ID)

	_, err = e.Page(context.Background(), Filter{Cursor: "nope"})
	assert.ErrorIs(t, err, ErrBadCursor)
}

// A submitted task is indexed: List finds it with its input.
func TestPage_submitIndexes(t *testing.T) {
	e := startEngine(t, newManager(t, []host.PoolConfig{{Name: "M", Plugin: "misbehave", Workers: 1}}), testOptions(t.TempDir()))
	task := submit(t, e, "M", `{"fault": "echo"}`)
	list, err := e.List(context.Background(), Filter{Pool: "M"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, task.ID, list[0].ID)
	assert.JSONEq(t, `{"fault": "echo"}`, string(list[0].Input))
}

// A page of 100 among 100,000 kept tasks (docs/BENCHMARKS.md):
// go test -run '^$' -bench BenchmarkPage -benchtime 200x ./queue/
func BenchmarkPage(b *testing.B) {
	e := startEngine(b, newManager(b, nil), testOptions(b.TempDir()))
	start := time.Now()
	seedTasks(b, e, 100_000, seedShape)
	b.Logf("seeded 100,000 records and entries in %s", time.Since(start).Round(time.Millisecond))
	for _, c := range []struct {
		name string
		f    Filter
	}{
		{"all", Filter{Limit: 100}},
		{"pool", Filter{Pool: "B", Limit: 100}},
		{"state", Filter{State: StateFailed, Limit: 100}},
		{"deep", Filter{Limit: 100, Cursor: cursorOf(50_000)}},
		// No task is queued: the page reads its bound (2,000 entries and
		// their records) and answers none, with a next.
		{"none", Filter{State: StateQueued, Limit: 100}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			want := 100
			if c.f.State == StateQueued {
				want = 0
			}
			for b.Loop() {
				p, err := e.Page(ctx, c.f)
				if err != nil || len(p.Tasks) != want || p.Next == "" {
					b.Fatalf("%d tasks, next %q, %v", len(p.Tasks), p.Next, err)
				}
			}
		})
	}
}
