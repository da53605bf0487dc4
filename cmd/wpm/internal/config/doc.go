// Package config loads wpm's configuration (SPEC §5) with koanf and checks
// it before anything starts.
//
// # Layers
//
// [Load] reads three layers into a private koanf instance, each later one
// overriding the earlier ones key by key, and unmarshals them over the
// built-in defaults, [Default]:
//
//  1. the config file, YAML (.yaml, .yml) or JSON (.json) by extension;
//  2. environment variables starting with [EnvPrefix];
//  3. the command-line flags added by [RegisterFlags] that the user set.
//
// [Default] builds on host.DefaultConfig, so wpm and a program embedding
// host agree, except that wpm ships one warm spare per plugin
// ([DefaultSpares]) where the library has none.
//
// # Keys
//
// The keys are the koanf tags of the section types (HTTP, Log, Shutdown,
// host.OneShotConfig, host.PoolConfig), read by reflection; there is no
// other list of them. Keys are camelCase and case-sensitive in the file:
// "memorylimitmb" is an error that suggests "memoryLimitMB". Every section key is a two-level name
// such as http.addr or oneShot.memoryLimitMB; pools is a list of maps. A key
// whose value is empty (YAML null) counts as absent, so its default applies.
// A pool entry that leaves out a key gets its value in host.DefaultPoolConfig:
// concurrency 1, queueLimit 1024, startTimeout 10s and scaleDownAfter 30s;
// any other key left out is 0, which means "none" or "never" (name, plugin
// and either workers or maxWorkers are required).
//
// # Environment
//
// An environment variable WPM_<SECTION>_<KEY> sets section.key, the levels
// matched case-insensitively: WPM_HTTP_ADDR sets http.addr and
// WPM_ONESHOT_MEMORYLIMITMB sets oneShot.memoryLimitMB. A WPM_ variable that
// names no key is an error, so a typo never goes unnoticed. Pools can not be
// set from the environment. The environment is passed in [Options]; Load
// never reads the process environment itself.
//
// # Values
//
// Durations (time.Duration fields) are Go durations ("30s", "5m", "1h30m";
// a bare 0 is allowed). Sizes (int64 fields, such as http.bodyLimit) are
// plain bytes (1048576 or "1048576"), or a number with a unit, where B is
// bytes, KB, MB and GB are powers of 1000 and KiB, MiB and GiB powers of
// 1024 ("10MB" is 10,000,000 bytes, "1MiB" 1,048,576); units are
// case-insensitive, a fraction is rounded down to whole bytes, and the size
// must be more than 0 (a bare 0 passes decoding, for keys where it means
// "none"). Whole numbers and booleans may also be given as strings, as they
// always are from the environment and flags.
//
// # Errors
//
// Load reports every problem at once, joined with [errors.Join]. Each one
// reads "key: message", prefixed with where the value came from when that
// was not the defaults: the file's path, the environment variable's name or
// the flag, as in
//
//	config/wpm.yaml: pools[0].workers: must be a whole number, got "two"
//	WPM_ONESHOT_TIMEOUT: oneShot.timeout: "5 minutes" is not a duration like 30s or 5m
//	config/wpm.yaml: unknown key "http.adr" (known keys under http: addr, bodyLimit, authToken, metricsAuth, readTimeout, idleTimeout, maxConns, inflightBodyLimit)
//
// After decoding, Load checks the sections host does not know and runs
// [host.Config.Validate], whose problems are *host.ConfigError values naming
// their key (counts out of range, memory limits above 1 TiB, duplicate pool
// names, ...); a key whose value did not decode is not reported again.
// Whether each pool's plugin exists is checked later, by host.New.
package config
