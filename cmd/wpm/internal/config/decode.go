package config

import (
	"fmt"
	"math"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wpmdev/wpm/host"
)

var (
	logLevels  = []string{"trace", "debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

// decode turns the merged layers into a Config, reporting each value that
// has the wrong type or is out of range.
func (l *loader) decode() Config {
	var c Config
	l.str("http.addr", &c.HTTP.Addr)
	if _, port, err := net.SplitHostPort(c.HTTP.Addr); (err != nil || port == "") && !l.reported["http.addr"] {
		l.fail("http.addr", fmt.Errorf("%q is not host:port like 127.0.0.1:3000", c.HTTP.Addr))
	}
	if v := l.k.Get("http.bodyLimit"); v != nil {
		n, err := toSize(v)
		if err != nil {
			l.fail("http.bodyLimit", err)
		}
		c.HTTP.BodyLimitBytes = n
	}
	l.str("http.authToken", &c.HTTP.AuthToken)
	l.boolean("http.metricsAuth", &c.HTTP.MetricsAuth)
	l.oneOf("log.level", logLevels, &c.Log.Level)
	l.oneOf("log.format", logFormats, &c.Log.Format)
	l.str("plugins.dir", &c.Host.PluginDir)
	if v := l.k.Get("plugins.checksums"); v != nil {
		m, ok := asMap(v)
		if !ok {
			l.fail("plugins.checksums", fmt.Errorf("must be a map from plugin name to its SHA-256 in hex, got %v", v))
		}
		for _, name := range sortedKeys(m) {
			sum, ok := m[name].(string)
			if !ok {
				l.fail("plugins.checksums."+name, fmt.Errorf("must be a SHA-256 in hex, got %v", m[name]))
				continue
			}
			if c.Host.Checksums == nil {
				c.Host.Checksums = map[string]string{}
			}
			c.Host.Checksums[name] = sum
		}
	}
	l.duration("shutdown.grace", &c.Shutdown.Grace)
	if c.Shutdown.Grace < 0 {
		l.fail("shutdown.grace", fmt.Errorf("must not be negative, got %s", c.Shutdown.Grace))
	}

	o := &c.Host.OneShot
	l.integer("oneShot.memoryLimitMB", &o.MemoryLimitMB)
	l.duration("oneShot.timeout", &o.Timeout)
	l.integer("oneShot.maxConcurrent", &o.MaxConcurrent)
	l.duration("oneShot.maxWait", &o.MaxWait)
	l.integer("oneShot.spares", &o.Spares)
	l.duration("oneShot.startTimeout", &o.StartTimeout)

	pools, _ := l.k.Get("pools").([]any)
	for i, e := range pools {
		m, _ := asMap(e)
		c.Host.Pools = append(c.Host.Pools, l.pool(fmt.Sprintf("pools[%d].", i), m))
	}
	return c
}

// pool decodes one pool entry m, whose keys start with prefix.
func (l *loader) pool(prefix string, m map[string]any) host.PoolConfig {
	p := host.PoolConfig{
		Concurrency:  host.DefaultConcurrency,
		QueueLimit:   host.DefaultQueueLimit,
		StartTimeout: host.DefaultStartTimeout,
	}
	setValue(l, prefix+"name", m["name"], toString, &p.Name)
	setValue(l, prefix+"plugin", m["plugin"], toString, &p.Plugin)
	setValue(l, prefix+"workers", m["workers"], toInt, &p.Workers)
	setValue(l, prefix+"memoryLimitMB", m["memoryLimitMB"], toInt, &p.MemoryLimitMB)
	setValue(l, prefix+"concurrency", m["concurrency"], toInt, &p.Concurrency)
	setValue(l, prefix+"prefetch", m["prefetch"], toInt, &p.Prefetch)
	setValue(l, prefix+"queueLimit", m["queueLimit"], toInt, &p.QueueLimit)
	setValue(l, prefix+"taskTimeout", m["taskTimeout"], toDuration, &p.TaskTimeout)
	setValue(l, prefix+"maxTasksPerWorker", m["maxTasksPerWorker"], toInt, &p.MaxTasksPerWorker)
	setValue(l, prefix+"maxWorkerAge", m["maxWorkerAge"], toDuration, &p.MaxWorkerAge)
	setValue(l, prefix+"startTimeout", m["startTimeout"], toDuration, &p.StartTimeout)
	return p
}

// setValue converts v, the value of key, into *dst. An absent (nil) value
// leaves *dst alone; one that does not convert is reported and zeroes *dst.
func setValue[T any](l *loader, key string, v any, conv func(any) (T, error), dst *T) {
	if v == nil {
		return
	}
	x, err := conv(v)
	if err != nil {
		l.fail(key, err)
	}
	*dst = x
}

func (l *loader) str(key string, dst *string) { setValue(l, key, l.k.Get(key), toString, dst) }

func (l *loader) integer(key string, dst *int) { setValue(l, key, l.k.Get(key), toInt, dst) }

func (l *loader) boolean(key string, dst *bool) { setValue(l, key, l.k.Get(key), toBool, dst) }

func (l *loader) duration(key string, dst *time.Duration) {
	setValue(l, key, l.k.Get(key), toDuration, dst)
}

// oneOf reads a string that must be one of allowed, in any case, and
// stores it in lower case.
func (l *loader) oneOf(key string, allowed []string, dst *string) {
	setValue(l, key, l.k.Get(key), func(v any) (string, error) {
		s, err := toString(v)
		if err != nil {
			return "", err
		}
		if low := strings.ToLower(strings.TrimSpace(s)); slices.Contains(allowed, low) {
			return low, nil
		}
		return "", fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
	}, dst)
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
	case float64:
		if v == math.Trunc(v) && v >= math.MinInt && v < math.MaxInt {
			return int(v), nil
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n, nil
		}
	}
	return 0, bad
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
