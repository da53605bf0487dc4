package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// section is a top-level map of settings and its keys, in SPEC §5's order.
type section struct {
	name string
	keys []string
}

// sections are the known top-level maps. Pools, a list, are apart.
var sections = []section{
	{"http", []string{"addr", "bodyLimit", "authToken", "metricsAuth"}},
	{"log", []string{"level", "format"}},
	{"plugins", []string{"dir", "checksums"}},
	{"shutdown", []string{"grace"}},
	{"oneShot", []string{"memoryLimitMB", "timeout", "maxConcurrent", "maxWait", "spares", "startTimeout"}},
}

// poolKeys are the keys of one entry of pools.
var poolKeys = []string{
	"name", "plugin", "workers", "memoryLimitMB", "concurrency", "prefetch", "queueLimit",
	"taskTimeout", "maxTasksPerWorker", "maxWorkerAge", "startTimeout",
}

// topKeys returns the known top-level keys.
func topKeys() []string {
	keys := make([]string, 0, len(sections)+1)
	for _, s := range sections {
		keys = append(keys, s.name)
	}
	return append(keys, "pools")
}

// sectionNamed returns the section called name, matched exactly or, when
// fold is set, case-insensitively.
func sectionNamed(name string, fold bool) (section, bool) {
	for _, s := range sections {
		if s.name == name || fold && strings.EqualFold(s.name, name) {
			return s, true
		}
	}
	return section{}, false
}

// readFile reads and checks the config file at path and returns its
// settings with every unknown or misshapen part left out. It reports
// problems itself; ok is false when the file could not be read at all.
func (l *loader) readFile(path string) (map[string]any, bool) {
	var parser koanf.Parser
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		parser = yaml.Parser()
	case ".json":
		parser = json.Parser()
	default:
		l.errs = append(l.errs, fmt.Errorf("%s: unsupported config file type %q; use .yaml, .yml or .json", path, ext))
		return nil, false
	}
	b, err := file.Provider(path).ReadBytes()
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.errs = append(l.errs, fmt.Errorf("%s: can not read the config file: %w", path, err))
		return nil, false
	}
	raw, err := parser.Unmarshal(b)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: not valid %s: %w", path, strings.ToUpper(strings.TrimPrefix(filepath.Ext(path), ".")), err))
		return nil, false
	}
	return l.checkTree(path, raw), true
}

// checkTree reports unknown keys and misshapen sections in raw, a file
// read from src, and returns what is left, recording each key's origin.
func (l *loader) checkTree(src string, raw map[string]any) map[string]any {
	out := make(map[string]any, len(raw))
	for _, name := range sortedKeys(raw) {
		v := raw[name]
		if v == nil {
			continue
		}
		if name == "pools" {
			if pools, ok := l.checkPools(src, v); ok {
				out["pools"] = pools
				l.origin["pools"] = src
			}
			continue
		}
		sec, ok := sectionNamed(name, false)
		if !ok {
			l.unknownKey(src, "", name, "top-level keys", topKeys())
			continue
		}
		m, ok := asMap(v)
		if !ok {
			l.problem(src, name, "must be a map of %s settings (%s), got %s", name, strings.Join(sec.keys, ", "), describe(v))
			continue
		}
		clean := make(map[string]any, len(m))
		for _, key := range sortedKeys(m) {
			if m[key] == nil {
				continue
			}
			if !slices.Contains(sec.keys, key) {
				l.unknownKey(src, name+".", key, "keys under "+name, sec.keys)
				continue
			}
			clean[key] = m[key]
			l.origin[name+"."+key] = src
		}
		out[name] = clean
	}
	return out
}

// checkPools checks the value of pools. An entry that is not a map
// becomes an empty one, so the indexes of the others stay right.
func (l *loader) checkPools(src string, v any) ([]any, bool) {
	list, ok := v.([]any)
	if !ok {
		l.problem(src, "pools", "must be a list of pools, each a map with keys %s; got %s", strings.Join(poolKeys, ", "), describe(v))
		return nil, false
	}
	out := make([]any, len(list))
	for i, e := range list {
		key := fmt.Sprintf("pools[%d]", i)
		clean := make(map[string]any)
		out[i] = clean
		m, ok := asMap(e)
		if !ok {
			l.problem(src, key, "must be a map of pool settings (%s), got %s", strings.Join(poolKeys, ", "), describe(e))
			continue
		}
		for _, k := range sortedKeys(m) {
			if m[k] == nil {
				continue
			}
			if !slices.Contains(poolKeys, k) {
				l.unknownKey(src, key+".", k, "keys in a pool", poolKeys)
				continue
			}
			clean[k] = m[k]
		}
	}
	return out, true
}

// unknownKey reports the unknown key parent+name found in src. When name
// differs from a known key only in case, it suggests that key and counts
// it as reported, so its absence is not reported too.
func (l *loader) unknownKey(src, parent, name, what string, known []string) {
	for _, k := range known {
		if strings.EqualFold(k, name) {
			l.reported[parent+k] = true
			l.errs = append(l.errs, withSource(src, fmt.Sprintf("unknown key %q (keys are case-sensitive: did you mean %s?)", parent+name, k)))
			return
		}
	}
	l.errs = append(l.errs, withSource(src, fmt.Sprintf("unknown key %q (known %s: %s)", parent+name, what, strings.Join(known, ", "))))
}

// envKey maps the part of an environment variable's name after EnvPrefix,
// such as ONESHOT_MEMORYLIMITMB, to its key, matching each level
// case-insensitively.
func envKey(rest string) (string, error) {
	levels := strings.Split(rest, "_")
	if strings.EqualFold(levels[0], "pools") {
		return "", errors.New("pools can not be set from the environment; put them in the config file")
	}
	sec, ok := sectionNamed(levels[0], true)
	if !ok {
		return "", fmt.Errorf("unknown variable: no section %q (known sections: %s)", levels[0], strings.Join(topKeys()[:len(sections)], ", "))
	}
	if len(levels) != 2 {
		return "", fmt.Errorf("unknown variable: expected %s%s_<KEY> with KEY one of %s", EnvPrefix, strings.ToUpper(sec.name), envNames(sec))
	}
	for _, k := range sec.keys {
		if strings.EqualFold(k, levels[1]) {
			return sec.name + "." + k, nil
		}
	}
	return "", fmt.Errorf("unknown variable: no key %q under %s (known keys under %s: %s)", levels[1], sec.name, sec.name, strings.Join(sec.keys, ", "))
}

func envNames(sec section) string {
	names := make([]string, len(sec.keys))
	for i, k := range sec.keys {
		names[i] = strings.ToUpper(k)
	}
	return strings.Join(names, ", ")
}

// asMap returns v as a map with string keys, if it is a map.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
