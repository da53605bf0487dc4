package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/host"
)

func runPlugins(args []string, e env) int {
	fs := pflag.NewFlagSet("plugins", pflag.ContinueOnError)
	full := fs.Bool("full", false, "print each plugin's whole SHA-256, as plugins.checksums takes it")
	cfg, st, done := loadConfig(fs, lookup("plugins"), args, e, "plugins-dir")
	if done {
		return st
	}
	hostCfg := cfg.Host
	hostCfg.Pools = nil
	mgr, err := host.New(hostCfg, host.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm plugins: %v\n", err)
		return 1
	}
	defer mgr.Shutdown(context.Background())
	plugins, err := mgr.Plugins()
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm plugins: %v\n", err)
		return 1
	}
	used := map[string][]string{}
	for _, p := range cfg.Host.Pools {
		used[p.Plugin] = append(used[p.Plugin], p.Name)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tMODIFIED\tSHA256\tPROTOCOL\tPOOLS")
	for _, p := range plugins {
		sum := p.SHA256
		if !*full {
			sum = sum[:12]
		}
		fmt.Fprintf(tw, "%s\t%.1f MB\t%s\t%s\t%s\t%s\n", p.Name, float64(p.SizeBytes)/1e6,
			p.ModTime.Format("2006-01-02 15:04:05"), sum, p.Protocol, strings.Join(used[p.Name], ","))
	}
	_ = tw.Flush()
	return 0
}
