package config_test

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/wpmdev/wpm/cmd/wpm/internal/config"
)

// A command registers the flags, parses them, and passes the file named by
// --config, the environment and the flags to Load.
func ExampleLoad() {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	_ = fs.Parse([]string{"--config", "../../../../config/default.yaml", "--log-level", "debug"})
	file, _ := fs.GetString("config")

	cfg, err := config.Load(config.Options{
		File:    file,
		Environ: []string{"WPM_HTTP_ADDR=127.0.0.1:3999"}, // os.Environ() in a real command
		Flags:   fs,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.HTTP.Addr, cfg.Log.Level, cfg.HTTP.BodyLimitBytes)
	for _, p := range cfg.Host.Pools {
		fmt.Println(p.Name, p.Plugin, p.Workers)
	}
	// Output:
	// 127.0.0.1:3999 debug 10000000
	// CPU cpuload 2
	// MEM memusage 2
}

func ExampleLoad_problems() {
	_, err := config.Load(config.Options{Environ: []string{
		"WPM_HTTP_ADR=127.0.0.1:3999",
		"WPM_ONESHOT_TIMEOUT=5 minutes",
	}})
	fmt.Println(err)
	// Output:
	// WPM_HTTP_ADR: unknown variable: no key "ADR" under http (known keys under http: addr, bodyLimit, authToken, metricsAuth, readTimeout, idleTimeout, maxConns, inflightBodyLimit)
	// WPM_ONESHOT_TIMEOUT: oneShot.timeout: "5 minutes" is not a duration like 30s or 5m
}
