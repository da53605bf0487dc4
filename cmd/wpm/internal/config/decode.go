package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"

	"github.com/wpmdev/wpm/host"
	"github.com/wpmdev/wpm/queue"
)

var (
	logLevels  = []string{"trace", "debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
	roles      = []string{RoleAll, RoleAPI, RoleWorker}
)

// decode unmarshals the merged layers over Default, reporting each value
// that does not convert. It fails only on an error that names no key.
func (l *loader) decode() (Config, error) {
	c := Default()
	var pools []Pool
	if raw, ok := l.k.Get("pools").([]any); ok {
		pools = make([]Pool, len(raw))
		for i := range pools {
			pools[i].PoolConfig = host.DefaultPoolConfig()
		}
	}
	err := l.k.UnmarshalWithConf("", shapeOf(&c, &pools), koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:  mapstructure.DecodeHookFuncValue(convert),
		ErrorUnused: true,
		MatchName:   func(key, field string) bool { return key == field },
		TagName:     "koanf",
	}})
	for _, e := range flatten(err) {
		var de *mapstructure.DecodeError
		if !errors.As(e, &de) {
			return Config{}, fmt.Errorf("decoding the configuration: %w", e)
		}
		key := keyOf(de.Name())
		l.add(l.sourceOf(key), key, &host.ConfigError{Key: key, Problem: de.Unwrap().Error()})
	}
	if pools != nil {
		c.Host.Pools = make([]host.PoolConfig, len(pools))
		c.Retries = make(map[string]queue.Retries, len(pools))
		for i, p := range pools {
			c.Host.Pools[i] = p.PoolConfig
			c.Retries[p.Name] = p.Retries
			for _, err := range flatten(p.Retries.Validate(fmt.Sprintf("pools[%d].retries.", i))) {
				if ce, ok := errors.AsType[*host.ConfigError](err); ok {
					l.add(l.sourceOf(ce.Key), ce.Key, ce)
				}
			}
		}
	}
	if len(c.Host.Checksums) == 0 {
		c.Host.Checksums = nil // "checksums: {}" pins nothing, like no key
	}
	if len(c.Schedules) == 0 {
		c.Schedules = nil // "schedules: []" declares none, like no key
	}
	if len(c.Async.CallbackAllow) == 0 {
		c.Async.CallbackAllow = nil // "callbackAllow: []" allows nothing, like no key
	}
	return c, nil
}

// flatten returns the errors joined in err, however deeply, and however
// wrapped (the decoder wraps its joined errors in one message).
func flatten(err error) []error {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		if err == nil {
			return nil
		}
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

// keyOf turns a decoder's field name, such as plugins.checksums[cpuload]
// or pools[0].workers, into a key: map entries after a dot, list indexes
// in brackets.
func keyOf(name string) string {
	var b strings.Builder
	for {
		before, rest, ok := strings.Cut(name, "[")
		b.WriteString(before)
		if !ok {
			return b.String()
		}
		inside, after, _ := strings.Cut(rest, "]")
		if strings.Trim(inside, "0123456789") == "" {
			b.WriteString("[" + inside + "]")
		} else {
			b.WriteString("." + inside)
		}
		name = after
	}
}

// convert is the decoder's hook: it turns a value from any layer into the
// type of the field it sets, or says why it can not. A time.Duration field
// takes a duration and an int64 field a size in bytes; int, string and bool
// fields take what their names say, whole numbers and booleans also as
// strings, as they always are from the environment and flags.
func convert(from, to reflect.Value) (any, error) {
	v := from.Interface()
	switch to.Type() {
	case reflect.TypeFor[time.Duration]():
		return toDuration(v)
	case reflect.TypeFor[int64]():
		return toSizeOrZero(v)
	case reflect.TypeFor[float64]():
		return toFloat(v)
	}
	switch to.Kind() {
	case reflect.Int:
		return toInt(v)
	case reflect.String:
		return toString(v)
	case reflect.Bool:
		return toBool(v)
	case reflect.Map:
		if _, ok := asMap(v); !ok {
			return nil, fmt.Errorf("must be a map, got %s", describe(v))
		}
	case reflect.Slice:
		if s, ok := v.(string); ok && to.Type().Elem().Kind() == reflect.String {
			return splitList(s), nil // from the environment: a,b,c
		}
	}
	return v, nil
}

// check returns the problems with the sections host does not check, each
// a *host.ConfigError, and puts log.level and log.format in lower case.
func (c *Config) check() error {
	var p checks
	p.oneOf("role", roles, &c.Role)
	c.HTTP.check(&p)
	p.oneOf("log.level", logLevels, &c.Log.Level)
	p.oneOf("log.format", logFormats, &c.Log.Format)
	if c.Shutdown.Grace < 0 {
		p.add("shutdown.grace", "must not be negative, got %s", c.Shutdown.Grace)
	}
	c.NATS.check(&p)
	c.Async.check(&p)
	c.checkSchedules(&p)
	c.Tracing.check(&p)
	return errors.Join(p...)
}

// check adds the problems of the http section to p.
func (h HTTP) check(p *checks) {
	if _, port, err := net.SplitHostPort(h.Addr); err != nil || port == "" {
		p.add("http.addr", "%q is not host:port like 127.0.0.1:3000", h.Addr)
	}
	p.positiveSize("http.bodyLimit", h.BodyLimitBytes)
	p.positiveSize("http.inflightBodyLimit", h.InflightBodyLimitBytes)
	p.positiveDuration("http.readTimeout", h.ReadTimeout)
	p.positiveDuration("http.idleTimeout", h.IdleTimeout)
	switch {
	case h.MaxConns < 1:
		p.add("http.maxConns", "must be 1 or more, got %d", h.MaxConns)
	case h.MaxConns > math.MaxInt32:
		p.add("http.maxConns", "must be at most %d, got %d", math.MaxInt32, h.MaxConns)
	}
}

// check adds the problems of the nats section to p.
func (n NATS) check(p *checks) {
	if n.StoreDir == "" && n.URL == "" {
		p.add("nats.storeDir", "must name a directory for the embedded server's files, like data/nats")
	}
	if (n.Credentials != "" || n.TLS != NATSTLS{}) && n.URL == "" {
		p.add("nats.url", "is needed with nats.credentials or nats.tls: they apply to an external server")
	}
	switch {
	case n.Replicas != 1 && n.Replicas != 3 && n.Replicas != 5:
		p.add("nats.replicas", "must be 1, 3 or 5, got %d", n.Replicas)
	case n.Replicas > 1 && n.URL == "":
		p.add("nats.replicas", "applies to an external NATS cluster (nats.url); the embedded server keeps one copy")
	}
	if (n.TLS.Cert == "") != (n.TLS.Key == "") {
		p.add("nats.tls", "cert and key go together; set both or neither")
	}
	if n.Listen != "" {
		if _, port, err := net.SplitHostPort(n.Listen); err != nil || port == "" {
			p.add("nats.listen", "%q is not host:port like 127.0.0.1:4222; leave it empty for no port", n.Listen)
		}
	}
	a := n.ListenAuth
	switch {
	case a.Token != "" && (a.User != "" || a.Password != ""):
		p.add("nats.listenAuth", "takes a token, or a user and password, not both")
	case (a.User == "") != (a.Password == ""):
		p.add("nats.listenAuth", "user and password go together; set both or neither")
	case n.Listen != "" && a == NATSAuth{} && !n.ListenInsecure:
		p.add("nats.listen", "opens the embedded NATS server, where tasks and their records are kept, to every process that reaches %s: set nats.listenAuth.token (or user and password), or nats.listenInsecure: true to open it without credentials", n.Listen)
	}
}

// checkSchedules adds the problems of the schedules section to p, each
// under the key of the field to blame: queue.CheckSchedule's, a name
// given twice, a pool the config does not declare. A plugin is checked
// when the schedule is made (the plugins directory is read then).
func (c Config) checkSchedules(p *checks) {
	seen := map[string]bool{}
	for i, s := range c.Schedules {
		key := fmt.Sprintf("schedules[%d]", i)
		q, err := s.Queue()
		if err != nil {
			p.add(key+".input", "%s", err)
			continue
		}
		if err := queue.CheckSchedule(q); err != nil {
			field, msg := "", err.Error()
			if _, after, ok := strings.Cut(msg, ": "); ok {
				field, _, _ = strings.Cut(after, " ")
				msg = strings.TrimPrefix(after, field+" ")
			}
			p.add(key+"."+field, "%s", msg)
			continue
		}
		if seen[s.Name] {
			p.add(key+".name", "%q is the name of an earlier schedule; each needs its own", s.Name)
		}
		seen[s.Name] = true
		if s.Pool != "" && !slices.ContainsFunc(c.Host.Pools, func(pc host.PoolConfig) bool { return pc.Name == s.Pool }) {
			p.add(key+".pool", "%q is no pool of this config's pools", s.Pool)
		}
	}
}

// check adds the problems of the async section to p.
func (a Async) check(p *checks) {
	p.positiveDuration("async.retention", a.Retention)
	p.positiveSize("async.maxResultBytes", a.MaxResultBytes)
	p.positiveDuration("async.dedupWindow", a.DedupWindow)
	p.positiveDuration("async.ackWait", a.AckWait)
	p.positiveDuration("async.maxDelay", a.MaxDelay)
	for i, entry := range a.CallbackAllow {
		if err := queue.CheckCallbackAllow(entry); err != nil {
			p.add(fmt.Sprintf("async.callbackAllow[%d]", i), "%s; write an http or https URL prefix like http://127.0.0.1:1880/wpm/", err)
		}
	}
}

// check adds the problems of the tracing section to p.
func (t Tracing) check(p *checks) {
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("tracing.endpoint", "%q is not an http or https URL like http://127.0.0.1:4318 (an OTLP/HTTP collector)", t.Endpoint)
		}
	}
	if t.ServiceName == "" {
		p.add("tracing.serviceName", "must not be empty; the default is wpm")
	}
	if math.IsNaN(t.SampleRatio) || t.SampleRatio < 0 || t.SampleRatio > 1 {
		p.add("tracing.sampleRatio", "must be from 0 to 1, got %v", t.SampleRatio)
	}
}

// checks collects the problems check finds.
type checks []error

// add records a problem with key.
func (p *checks) add(key, format string, args ...any) {
	*p = append(*p, &host.ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)})
}

// positiveSize checks a size that must be more than 0 bytes.
func (p *checks) positiveSize(key string, n int64) {
	if n <= 0 {
		p.add(key, "must be more than 0 bytes, got %d", n)
	}
}

// positiveDuration checks a duration that must be more than 0.
func (p *checks) positiveDuration(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be more than 0, like 60s, got %s", d)
	}
}

// oneOf checks that *s is one of allowed, in any case, and stores it in
// lower case.
func (p *checks) oneOf(key string, allowed []string, s *string) {
	low := strings.ToLower(strings.TrimSpace(*s))
	if !slices.Contains(allowed, low) {
		p.add(key, "%q is not one of %s", *s, strings.Join(allowed, ", "))
	}
	*s = low
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// describe shows v in a message: strings quoted, maps and lists by kind.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case map[string]any, map[any]any:
		return "a map"
	case []any:
		return "a list"
	case nil:
		return "nothing"
	}
	return fmt.Sprint(v)
}

func toString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool, int, int64, uint64, float64:
		return "", fmt.Errorf("must be a string, got %v (put it in quotes)", v)
	}
	return "", fmt.Errorf("must be a string, got %s", describe(v))
}

func toInt(v any) (int, error) {
	bad := fmt.Errorf("must be a whole number, got %s", describe(v))
	switch v := v.(type) {
	case int:
		return v, nil
	case int64:
		if v >= math.MinInt && v <= math.MaxInt {
			return int(v), nil
		}
	case uint64:
		if v <= math.MaxInt {
			return int(v), nil
		}
		return 0, fmt.Errorf("must be a whole number that fits in 64 bits, got %d", v)
	case float64:
		if v == math.Trunc(v) && v >= math.MinInt && v < math.MaxInt {
			return int(v), nil
		}
		if v == math.Trunc(v) {
			return 0, fmt.Errorf("must be a whole number that fits in 64 bits, got %s", strconv.FormatFloat(v, 'f', -1, 64))
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n, nil
		}
	}
	return 0, bad
}

func toFloat(v any) (float64, error) {
	switch v := v.(type) {
	case float64:
		return v, nil
	case int:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return f, nil
		}
	}
	return 0, fmt.Errorf("must be a number, got %s", describe(v))
}

func toBool(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("must be true or false, got %s", describe(v))
}

func toDuration(v any) (time.Duration, error) {
	switch v := v.(type) {
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(v)); err == nil {
			return d, nil
		}
	case int, int64, uint64, float64:
		if n, err := toInt(v); err == nil && n == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("%v is not a duration like 30s or 5m (give a unit)", v)
	}
	return 0, fmt.Errorf("%s is not a duration like 30s or 5m", describe(v))
}

// toSizeOrZero reads a size (see toSize) or a bare 0.
func toSizeOrZero(v any) (int64, error) {
	if n, err := toInt(v); err == nil && n == 0 {
		return 0, nil
	}
	return toSize(v)
}

// sizeUnits are the units a size may have, in lower case, in bytes.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1000, "mb": 1000 * 1000, "gb": 1000 * 1000 * 1000,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
}

// toSize reads a size, a number of bytes as described in the package doc.
func toSize(v any) (int64, error) {
	switch v := v.(type) {
	case string:
		return parseSize(v)
	case int, int64, uint64, float64:
		n, err := toInt(v)
		if err != nil {
			return 0, fmt.Errorf("must be a whole number of bytes or a size like 10MB, got %v", v)
		}
		if n <= 0 {
			return 0, fmt.Errorf("must be more than 0 bytes, got %d", n)
		}
		return int64(n), nil
	}
	return 0, fmt.Errorf("must be a size like 10MB, 512KB, 1MiB or 1048576 (bytes), got %s", describe(v))
}

// parseSize parses a size such as "10MB", "1.5 GiB" or "1048576": a
// decimal number, optional spaces and a case-insensitive unit (B, KB, MB,
// GB in powers of 1000; KiB, MiB, GiB in powers of 1024; none means
// bytes). A fraction of a byte is rounded down; the result must be more
// than 0 and fit in an int64.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("must be more than 0 bytes, got %q", s)
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, okUnit := sizeUnits[strings.ToLower(unit)]
	n, okNum := new(big.Rat).SetString(num)
	if !okUnit || !okNum || !validDecimal(num) {
		return 0, fmt.Errorf("%q is not a size like 10MB, 512KB, 1MiB or 1048576 (bytes); units are B, KB, MB, GB (1000-based) and KiB, MiB, GiB (1024-based)", s)
	}
	n.Mul(n, new(big.Rat).SetInt64(mult))
	bytes := new(big.Int).Quo(n.Num(), n.Denom())
	if !bytes.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if bytes.Sign() <= 0 {
		return 0, fmt.Errorf("must be more than 0 bytes, got %q", s)
	}
	return bytes.Int64(), nil
}

// validDecimal reports whether s is digits with at most one inner '.'.
func validDecimal(s string) bool {
	whole, frac, hasDot := strings.Cut(s, ".")
	digits := func(x string) bool {
		return x != "" && strings.Trim(x, "0123456789") == ""
	}
	return digits(whole) && (!hasDot || digits(frac))
}
