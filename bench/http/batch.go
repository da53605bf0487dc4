//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/wpmdev/wpm/internal/latency"
)

// batchResult is how long a fixed number of requests took.
type batchResult struct {
	name     string
	n, conns int
	total    time.Duration
	p50, p99 time.Duration
	errors   int64
	firstErr string
}

// batch sends n requests of t over conns connections, each sending its
// next request when the last answer is read, and measures the whole. It
// gives up (counting errors) once bound has passed.
func batch(ctx context.Context, t target, n, conns int, bound time.Duration) batchResult {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var (
		tl   tally
		left atomic.Int64
	)
	left.Store(int64(n))
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			client, closeClient := connection()
			defer closeClient()
			for left.Add(-1) >= 0 {
				began := time.Now()
				status, err := post(ctx, client, t.url, t.body)
				tl.record(status, err, time.Since(began))
			}
		})
	}
	wg.Wait()
	return batchResult{
		name: t.name, n: n, conns: conns, total: time.Since(start),
		p50: tl.h.Quantile(0.5), p99: tl.h.Quantile(0.99), errors: tl.failed.Load(), firstErr: tl.first,
	}
}

// connection is one load generator connection: a client that keeps one
// connection alive, and what closes it.
func connection() (*http.Client, func()) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
	return &http.Client{Transport: tr}, tr.CloseIdleConnections
}

// tally counts a case's answers: the latency of each success, and the
// failures (any status but 200) with the first one's error. It is safe
// for concurrent use.
type tally struct {
	h      latency.Histogram
	done   atomic.Int64
	failed atomic.Int64
	once   sync.Once
	first  string // set once, read after the case
}

func (tl *tally) record(status int, err error, took time.Duration) {
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		tl.failed.Add(1)
		tl.once.Do(func() { tl.first = " (first: " + err.Error() + ")" })
		return
	}
	tl.done.Add(1)
	tl.h.Record(took)
}

// targetRow is one line of the targets table.
type targetRow struct {
	what, target, measured string
	met                    bool
	known                  bool // false: the case did not run
}

// printTargets prints the targets of issue 10 from this run's rows.
func printTargets(w io.Writer, rows []row, long *batchResult) {
	find := func(name string, conns int) (row, bool) {
		for _, r := range rows {
			if strings.HasPrefix(r.name, name) && r.conns == conns {
				return r, true
			}
		}
		return row{}, false
	}
	var out []targetRow
	noop, okN := find("noop", 64)
	pool, okP := find("POST /v1/pools/CPU/tasks", 64)
	if okN && okP && noop.rate > 0 {
		ratio := pool.rate / noop.rate
		out = append(out, targetRow{"trivial pool task, 64 connections, vs the echo no-op", "≥ 50 %",
			fmt.Sprintf("%.0f vs %.0f req/s: %.0f %%", pool.rate, noop.rate, 100*ratio), ratio >= 0.5, true})
		out = append(out, targetRow{"same, p99", "≤ 15 ms", fmt.Sprintf("%.2f ms", ms(pool.p99)), pool.p99 <= 15*time.Millisecond, true})
	}
	wpmEx, okW := find("POST /example/pool", 64)
	seed, okS := find(seedName, 64)
	if okW && okS && seed.rate > 0 {
		ratio := wpmEx.rate / seed.rate
		out = append(out, targetRow{"/example/pool, 64 connections, vs the Node seed", "≥ 3×",
			fmt.Sprintf("%.0f vs %.0f req/s: %.1f× (p99 %.1f vs %.1f ms)", wpmEx.rate, seed.rate, ratio, ms(wpmEx.p99), ms(seed.p99)), ratio >= 3, true})
	} else {
		out = append(out, targetRow{what: "/example/pool, 64 connections, vs the Node seed", target: "≥ 3×", measured: "not run"})
	}
	if one, ok := find("POST /v1/pools/CPU/tasks", 1); ok {
		out = append(out, targetRow{"trivial pool task, 1 connection, p50", "≤ 0.3 ms", fmt.Sprintf("%.2f ms", ms(one.p50)), one.p50 <= 300*time.Microsecond, true})
	}
	if long != nil {
		out = append(out, targetRow{fmt.Sprintf("%d tasks of {\"duration\":200} at %d connections, 2 workers", long.n, long.conns), "≤ 21 s",
			fmt.Sprintf("%.2f s, p50 %.0f ms, p99 %.0f ms, errors %d%s", long.total.Seconds(), ms(long.p50), ms(long.p99), long.errors, long.firstErr),
			long.total <= 21*time.Second && long.errors == 0, true})
	}
	out = append(out, scriptTargets(find)...)
	fmt.Fprintln(w, "\ntargets (issues 10 and 18):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "case\ttarget\tmeasured\tmet\t")
	for _, r := range out {
		met := "no"
		switch {
		case !r.known:
			met = "-"
		case r.met:
			met = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.what, r.target, r.measured, met)
	}
	_ = tw.Flush()
}
