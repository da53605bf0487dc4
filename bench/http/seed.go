//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Bounds of the seed's preparation.
const (
	npmInstallTimeout = 5 * time.Minute
	seedReadyTimeout  = 30 * time.Second
)

// seedPool is the seed's /example/pool request, the same as wpm's.
const seedPool = `{"poolName":"CPU","workerTask":` + trivial + `}`

// startSeed copies the Node seed at dir to a temporary directory, installs
// its packages, starts it on a free port (node-config's NODE_CONFIG sets
// httpServerConfig.port) in a process group of its own, and waits until
// its CPU pool answers. It returns why it was skipped when node, npm or
// the seed is missing. cleanup removes the copy; the child's stop ends the
// whole group.
func startSeed(ctx context.Context, dir string) (c *child, cleanup func(), skip string, err error) {
	if dir == "" {
		return nil, nil, "no -seed directory given", nil
	}
	if _, err := os.Stat(filepath.Join(dir, "app.js")); err != nil {
		return nil, nil, fmt.Sprintf("no Node seed at %s", dir), nil
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, nil, tool + " is not installed", nil
		}
	}
	tmp, err := os.MkdirTemp("", "wpm-bench-seed-")
	if err != nil {
		return nil, nil, "", err
	}
	cleanup = func() { _ = os.RemoveAll(tmp) }
	app := filepath.Join(tmp, "seed")
	if err := os.CopyFS(app, os.DirFS(dir)); err != nil {
		cleanup()
		return nil, nil, "", fmt.Errorf("copy the seed: %w", err)
	}
	if err := npmInstall(ctx, app); err != nil {
		cleanup()
		return nil, nil, "", err
	}
	c, err = runSeed(ctx, app)
	if err != nil {
		cleanup()
		return nil, nil, "", err
	}
	return c, cleanup, "", nil
}

// npmInstall installs the seed's packages, bounded in time.
func npmInstall(ctx context.Context, app string) error {
	ctx, cancel := context.WithTimeout(ctx, npmInstallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund")
	cmd.Dir = app
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm install in the seed's copy: %w\n%s", err, out)
	}
	return nil
}

// runSeed starts `node app.js` in app and waits until it answers.
func runSeed(ctx context.Context, app string) (*child, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := command("node", "app.js")
	cmd.Dir = app
	cmd.SysProcAttr.Setpgid = true // its forked workers stop with it
	cmd.Env = append(os.Environ(), fmt.Sprintf(`NODE_CONFIG={"httpServerConfig":{"port":%d}}`, port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := start(cmd); err != nil {
		return nil, fmt.Errorf("start the seed: %w", err)
	}
	c := &child{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), group: true}
	deadline := time.Now().Add(seedReadyTimeout)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		status, err := post(ctx, client, c.url+"/example/pool", seedPool)
		if err == nil && status == http.StatusOK {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			if err == nil {
				err = fmt.Errorf("status %d", status)
			}
			return nil, fmt.Errorf("the seed on %s did not answer within %s: %w", c.url, seedReadyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopGroup ends the process group this program started as c (SIGTERM,
// then SIGKILL after 15 s).
func (c *child) stopGroup(exited <-chan struct{}) {
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // stragglers of the group
	<-exited
}

// benchSeed runs the seed's /example/pool case at each connection count,
// or prints why it can't.
func benchSeed(ctx context.Context, o options, stdout io.Writer, add func(row)) error {
	c, cleanup, skip, err := startSeed(ctx, o.seed)
	if skip != "" {
		fmt.Fprintf(stdout, "\nskipped: the Node seed side by side (%s)\n", skip)
		return nil
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		fmt.Fprintf(stdout, "\nskipped: the Node seed side by side (%s)\n", strings.TrimSpace(err.Error()))
		return nil
	}
	defer cleanup()
	defer c.stop()
	fmt.Fprintf(stdout, "\nthe Node seed (%s, node %s) on %s:\n", o.seed, nodeVersion(), c.url)
	for _, n := range o.conns {
		if err := ctx.Err(); err != nil {
			return err
		}
		add(load(ctx, target{name: seedName, url: c.url + "/example/pool", body: seedPool, server: c}, n, o))
	}
	return nil
}

// seedName names the seed's case.
const seedName = "seed POST /example/pool"

func nodeVersion() string {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
