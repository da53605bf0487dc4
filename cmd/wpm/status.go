package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/client"
	"github.com/wpmdev/wpm/cmd/wpm/internal/config"
)

// defaultStatusURL is where wpm status looks when neither --url nor a
// config says otherwise: the default http.addr.
const defaultStatusURL = "http://127.0.0.1:3000"

// tokenEnv is the environment variable wpm status reads the token from,
// the same one that sets http.authToken for wpm serve.
const tokenEnv = config.EnvPrefix + "HTTP_AUTHTOKEN"

func runStatus(args []string, e env) int {
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	urlFlag := fs.String("url", "", "base URL of a running wpm (default: http://<http.addr> from the config, else "+defaultStatusURL+")")
	token := fs.String("token", "", "bearer token, when wpm serve has http.authToken (default: $"+tokenEnv+", else http.authToken from the config)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	config.RegisterConfigFlag(fs)
	if st, done := parseFlags(fs, lookup("status"), args, e); done {
		return st
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "wpm status: unexpected argument %q; use --url to name the server\n", fs.Arg(0))
		return 2
	}
	c, st := serverClient("status", fs, *urlFlag, *token, e)
	if c == nil {
		return st
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	list, err := c.Pools(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm status: %v\n", explain(err))
		return 1
	}
	printStatus(e.stdout, list)
	if hosts, err := c.Cluster(ctx); err == nil && len(hosts) > 1 {
		printHosts(e.stdout, hosts)
	}
	return 0
}

// printHosts writes the cluster's hosts, when there are several.
func printHosts(w io.Writer, hosts []client.Host) {
	fmt.Fprintln(w, "\ncluster")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  HOST	ROLE	ADDRESS	VERSION	POOLS (ready/workers, running)	SEEN")
	for _, h := range hosts {
		name := h.Name
		if h.Self {
			name += " (this)"
		}
		pools := make([]string, len(h.Pools))
		for i, p := range h.Pools {
			pools[i] = fmt.Sprintf("%s %d/%d, %d", p.Name, p.Ready, p.Workers, p.Running)
		}
		if len(pools) == 0 {
			pools = []string{"-"}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s ago\n", name, h.Role, h.Address, h.Version,
			strings.Join(pools, "; "), time.Since(h.SeenAt).Round(100*time.Millisecond))
	}
	_ = tw.Flush()
}

// statusTarget decides the server's base URL and the token: flags first,
// then the token's environment variable, then the config (--config, the
// environment and the config flags, as wpm serve would read them). The
// config is read only when something is missing, and a missing default
// config file is no error.
func statusTarget(fs *pflag.FlagSet, u, token string, e env) (base, tok string, err error) {
	if token == "" {
		token = lookupEnv(e.environ, tokenEnv)
	}
	if u != "" && token != "" {
		return normalizeURL(u), token, nil
	}
	cfg, err := config.Load(config.Options{File: configPath(fs, true), Environ: e.environ, Flags: fs})
	switch {
	case err != nil && u == "":
		return "", "", fmt.Errorf("%w (or give --url)", err)
	case err != nil: // the URL is known; the config only could have had a token
		return normalizeURL(u), token, nil
	}
	if u == "" {
		u = addrURL(cfg.HTTP.Addr)
	}
	if token == "" {
		token = cfg.HTTP.AuthToken
	}
	return normalizeURL(u), token, nil
}

// lookupEnv returns name's value in environ ("NAME=value" strings).
func lookupEnv(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// addrURL turns a listen address into the URL to reach it from this
// machine: an empty or unspecified host (":3000", "0.0.0.0:3000") becomes
// loopback.
func addrURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return defaultStatusURL
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// normalizeURL adds a missing scheme and drops trailing slashes.
func normalizeURL(u string) string {
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return strings.TrimRight(u, "/")
}

// newClient returns a client of the wpm at base, with token.
func newClient(base, token string) (*client.Client, error) {
	c, err := client.New(base, client.WithToken(token))
	if err != nil {
		return nil, fmt.Errorf("bad --url %q: %w", base, err)
	}
	return c, nil
}

// serverClient is the client of the server that command (wpm status,
// tasks, pools, schedules) talks to, as --url, --token and the config
// name it (statusTarget). On failure it says why on stderr and returns
// the exit status: 2 for a server it can not find out, 1 for a bad URL.
func serverClient(command string, fs *pflag.FlagSet, u, token string, e env) (*client.Client, int) {
	base, tok, err := statusTarget(fs, u, token, e)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm %s: %v\n", command, err)
		return nil, exitUsage
	}
	c, err := newClient(base, tok)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm %s: %v\n", command, err)
		return nil, exitFailed
	}
	return c, 0
}

// explain adds to a client's error what a person can do about it: start
// wpm serve, or give the token.
func explain(err error) error {
	var ue *url.Error
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		return fmt.Errorf("%w (give --token or set %s)", err, tokenEnv)
	case errors.As(err, &ue):
		return fmt.Errorf("is wpm serve running there? %w", err)
	}
	return err
}

// printStatus writes one table of pools, then one of workers per pool.
func printStatus(w io.Writer, list *client.PoolList) {
	if len(list.Pools) == 0 {
		fmt.Fprintln(w, "no pools")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tPLUGIN\tREADY\tQUEUED\tOLDEST\tRUNNING\tHEALTH")
	for _, p := range list.Pools {
		health := "ok"
		switch {
		case p.Ready == 0 && p.Target == 0:
			health = "idle" // minWorkers 0: a task starts a worker
		case p.Ready == 0:
			health = "down"
		case p.Degraded:
			health = "degraded"
		}
		if p.Paused {
			health += ", paused"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\t%d\t%s\n", p.Name, p.Plugin, p.Ready, p.Size,
			p.QueueDepth, age(p.OldestQueuedMs), p.Running, health)
	}
	_ = tw.Flush()
	for _, p := range list.Pools {
		fmt.Fprintf(w, "\n%s (%s)\n", p.Name, p.Plugin)
		if p.LastError != "" {
			when := ""
			if p.LastErrorAt != nil {
				when = fmt.Sprintf(" (%s ago)", time.Since(*p.LastErrorAt).Round(time.Second))
			}
			msg := strings.ReplaceAll(strings.TrimSpace(p.LastError), "\n", "\n    ")
			fmt.Fprintf(w, "  last start failure%s:\n    %s\n", when, msg)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SLOT\tPID\tSTATE\tRUNNING\tTASKS\tRSS MB\tUPTIME\tRESTARTS\tLAST EXIT")
		for _, wk := range p.Workers {
			pid, lastExit := "-", "-"
			if wk.PID != 0 {
				pid = fmt.Sprint(wk.PID)
			}
			if wk.LastExit != "" {
				lastExit = wk.LastExit
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%d\t%.1f\t%s\t%d\t%s\n", wk.Slot, pid, wk.State, wk.Running,
				wk.TasksDone, float64(wk.RSSBytes)/(1<<20), age(wk.UptimeMs), wk.Restarts, lastExit)
		}
		_ = tw.Flush()
	}
}

// age formats milliseconds for a person: "-" for none, "350ms", "12.3s",
// "1h2m3s".
func age(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
