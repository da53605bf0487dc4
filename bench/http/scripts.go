//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// The Node.js worker-script cases (issue 18): the seed's own CPULoad
// script, unchanged, in a wpm pool that names it (pools[].script) and as a
// one-shot from node.scriptsDir with warm spares, each next to the same
// request to the seed.

// Names of the script cases.
const (
	scriptPoolName    = "script POST /example/pool"
	scriptOneShotName = "script POST /example/oneShot"
	seedOneShotName   = "seed POST /example/oneShot"
)

// scriptTask is the task of every script case.
const scriptTask = `{"duration":0}`

// scriptConfig writes a wpm config in dir that runs the seed's CPULoad
// script in pool CPU (two workers, as the seed's) and one-shots from the
// seed's workers folder with spares, and returns its path.
func scriptConfig(dir, seed string, spares int) (string, error) {
	workers, err := filepath.Abs(filepath.Join(seed, "workers"))
	if err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`log: { level: warn }
nats: { storeDir: %q }
node: { scriptsDir: %q }
oneShot: { spares: %d, maxConcurrent: 8, maxWait: 30s, memoryLimitMB: 4096 }
pools:
  - { name: CPU, script: %q, workers: 2, concurrency: 2, memoryLimitMB: 4096 }
`, filepath.Join(dir, "nats"), workers, spares, filepath.Join(workers, "exampleWorker_CPULoad.js"))
	path := filepath.Join(dir, "scripts.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// benchScripts runs the script cases on wpm and the seed, or prints why
// it can't.
func benchScripts(ctx context.Context, o options, stdout io.Writer, add func(row)) error {
	seedDir := o.seed
	if seedDir == "" {
		fmt.Fprintln(stdout, "\nskipped: the Node.js script cases (no -seed directory given)")
		return nil
	}
	tmp, err := os.MkdirTemp("", "wpm-bench-scripts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	spares := max(o.spares, 1)
	cfg, err := scriptConfig(tmp, seedDir, spares)
	if err != nil {
		return err
	}
	so := o
	so.config = cfg
	w, err := startWPM(ctx, so, nil)
	if err != nil {
		fmt.Fprintf(stdout, "\nskipped: the Node.js script cases (%v)\n", err)
		return nil
	}
	defer w.stop()
	fmt.Fprintf(stdout, "\nNode.js scripts: wpm running the seed's exampleWorker_CPULoad.js (node %s), oneShot.spares=%d:\n", nodeVersion(), spares)
	for _, n := range o.conns {
		if err := ctx.Err(); err != nil {
			return err
		}
		add(load(ctx, target{name: scriptPoolName, url: w.url + "/example/pool", body: `{"poolName":"CPU","workerTask":` + scriptTask + `}`, server: w}, n, o))
	}
	oneShot := `{"workerScript":"./workers/exampleWorker_CPULoad.js","workerTask":` + scriptTask + `}`
	paced := target{name: "paced " + scriptOneShotName + " " + o.pace.String(), url: w.url + "/example/oneShot", body: oneShot, server: w, pace: o.pace}
	add(load(ctx, paced, 1, o))
	for _, n := range oneShotConns {
		add(load(ctx, target{name: scriptOneShotName, url: w.url + "/example/oneShot", body: oneShot, server: w}, n, o))
	}
	w.stop()

	c, cleanup, skip, err := startSeed(ctx, seedDir)
	if skip != "" || err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		why := skip
		if err != nil {
			why = strings.TrimSpace(err.Error())
		}
		fmt.Fprintf(stdout, "\nskipped: the seed's script cases (%s)\n", why)
		return nil
	}
	defer cleanup()
	defer c.stop()
	fmt.Fprintf(stdout, "\nthe Node seed (%s) on %s:\n", seedDir, c.url)
	if o.cases == "scripts" { // with all cases, benchSeed measured it
		for _, n := range o.conns {
			add(load(ctx, target{name: seedName, url: c.url + "/example/pool", body: seedPool, server: c}, n, o))
		}
	}
	for _, n := range oneShotConns {
		add(load(ctx, target{name: seedOneShotName, url: c.url + "/example/oneShot", body: oneShot, server: c}, n, o))
	}
	return ctx.Err()
}

// oneShotConns are the connection counts of the one-shot script cases.
var oneShotConns = []int{1, 8}

// scriptTargets are the script cases' targets: a script pool at 64
// connections ≥ 1.5× the seed, one-shots at 1 and 8 ≥ 5×.
func scriptTargets(find func(string, int) (row, bool)) []targetRow {
	var out []targetRow
	vs := func(what, ours, theirs string, conns int, want float64) {
		a, okA := find(ours, conns)
		b, okB := find(theirs, conns)
		t := fmt.Sprintf("≥ %.1f×", want)
		if !okA || !okB || b.rate <= 0 {
			out = append(out, targetRow{what: what, target: t, measured: "not run"})
			return
		}
		ratio := a.rate / b.rate
		out = append(out, targetRow{what, t,
			fmt.Sprintf("%.0f vs %.0f req/s: %.1f× (p50 %.1f vs %.1f ms)", a.rate, b.rate, ratio, ms(a.p50), ms(b.p50)), ratio >= want, true})
	}
	vs("seed's CPULoad script in a pool, 64 connections, vs the seed", scriptPoolName, seedName, 64, 1.5)
	if a, ok := find("paced "+scriptOneShotName, 1); ok {
		if b, ok := find(seedOneShotName, 1); ok && a.p50 > 0 {
			ratio := float64(b.p50) / float64(a.p50)
			out = append(out, targetRow{"seed's CPULoad script as a one-shot, paced, 1 connection, p50 vs the seed's", "≥ 5.0×",
				fmt.Sprintf("%.1f vs %.1f ms: %.1f×", ms(a.p50), ms(b.p50), ratio), ratio >= 5, true})
		}
	}
	for _, n := range oneShotConns {
		vs(fmt.Sprintf("seed's CPULoad script as a one-shot, %d connection(s), vs the seed", n), scriptOneShotName, seedOneShotName, n, 5)
	}
	return out
}
