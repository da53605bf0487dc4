package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// The keys wpm knows are read from the file type by reflection: a field's
// key is its koanf tag (its name when it has none; "-" skips it). A struct
// is a map of settings, a slice of structs a list of such maps; anything
// else is a value, checked as it is decoded.

// field is one key of a map of settings.
type field struct {
	key string
	typ reflect.Type
}

// fieldsOf returns the keys of t, a struct or a pointer to one, in order.
func fieldsOf(t reflect.Type) []field {
	t = deref(t)
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		key, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		if f.Anonymous && opts == "squash" {
			out = append(out, fieldsOf(f.Type)...) // its keys are the struct's own
			continue
		}
		if !f.IsExported() || key == "-" {
			continue
		}
		if key == "" {
			key = f.Name
		}
		out = append(out, field{key, f.Type})
	}
	return out
}

// keysOf returns the names of the keys of t.
func keysOf(t reflect.Type) []string {
	var keys []string
	for _, f := range fieldsOf(t) {
		keys = append(keys, f.key)
	}
	return keys
}

// shapeType is the type whose fields are the top-level keys.
var shapeType = reflect.TypeFor[shape]()

// deref returns the type t points to, or t.
func deref(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		return t.Elem()
	}
	return t
}

// isSettings reports whether a value of type t is a map of settings.
func isSettings(t reflect.Type) bool { return deref(t).Kind() == reflect.Struct }

// listOf returns the element type of t when t is a list of maps of
// settings.
func listOf(t reflect.Type) (reflect.Type, bool) {
	t = deref(t)
	if t.Kind() == reflect.Slice && isSettings(t.Elem()) {
		return t.Elem(), true
	}
	return nil, false
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
	return l.checkMap(path, "", "top-level keys", raw, shapeType), true
}

// checkMap reports unknown keys and misshapen values in m, the map of
// settings at key (the whole file when key is empty) read from src, whose
// keys are those of t. It returns what is left, recording each key's
// origin. what names the keys in a message, as in "keys under http".
func (l *loader) checkMap(src, key, what string, m map[string]any, t reflect.Type) map[string]any {
	prefix := key
	if prefix != "" {
		prefix += "."
	}
	fields := fieldsOf(t)
	out := make(map[string]any, len(m))
	for _, name := range sortedKeys(m) {
		if m[name] == nil {
			continue
		}
		i := slices.IndexFunc(fields, func(f field) bool { return f.key == name })
		if i < 0 {
			l.unknownKey(src, prefix, name, what, keysOf(t))
			continue
		}
		if v, ok := l.checkValue(src, prefix+name, m[name], fields[i].typ); ok {
			out[name] = v
		}
	}
	return out
}

// checkValue checks the shape of v, the value of key, whose type is t.
func (l *loader) checkValue(src, key string, v any, t reflect.Type) (any, bool) {
	if isSettings(t) {
		m, ok := asMap(v)
		if !ok {
			l.problem(src, key, "must be a map of %s settings (%s), got %s", key, strings.Join(keysOf(t), ", "), describe(v))
			return nil, false
		}
		return l.checkMap(src, key, "keys under "+key, m, t), true
	}
	l.origin[key] = src
	elem, ok := listOf(t)
	if !ok {
		return v, true // a value: decoding checks it
	}
	list, ok := v.([]any)
	if !ok {
		l.problem(src, key, "must be a list of %s, each a map with keys %s; got %s", key, strings.Join(keysOf(elem), ", "), describe(v))
		return nil, false
	}
	one := strings.TrimSuffix(key, "s")
	out := make([]any, len(list))
	for i, e := range list {
		at := fmt.Sprintf("%s[%d]", key, i)
		out[i] = map[string]any{} // keeps the indexes of the others right
		if m, ok := asMap(e); ok {
			out[i] = l.checkMap(src, at, "keys in a "+one, m, elem)
		} else {
			l.problem(src, at, "must be a map of %s settings (%s), got %s", one, strings.Join(keysOf(elem), ", "), describe(e))
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

// withSource returns msg as an error, after src when there is one.
func withSource(src, msg string) error {
	if src == "" {
		return errors.New(msg)
	}
	return errors.New(src + ": " + msg)
}

// envKey maps the part of an environment variable's name after EnvPrefix,
// such as ONESHOT_MEMORYLIMITMB, to its key, matching each level
// case-insensitively. Only the keys of maps of settings can be set.
func envKey(rest string) (string, error) {
	levels := strings.Split(rest, "_")
	var sections []string
	for _, sec := range fieldsOf(shapeType) {
		switch {
		case deref(sec.typ).Kind() == reflect.String && strings.EqualFold(sec.key, levels[0]) && len(levels) == 1:
			return sec.key, nil // a top-level setting, like role
		case !isSettings(sec.typ) && strings.EqualFold(sec.key, levels[0]):
			return "", fmt.Errorf("%s can not be set from the environment; put them in the config file", sec.key)
		case !isSettings(sec.typ):
		case strings.EqualFold(sec.key, levels[0]):
			return sectionKey(sec, levels)
		default:
			sections = append(sections, sec.key)
		}
	}
	return "", fmt.Errorf("unknown variable: no section %q (known sections: %s)", levels[0], strings.Join(sections, ", "))
}

// sectionKey returns the key under sec named by levels[1:].
func sectionKey(sec field, levels []string) (string, error) {
	keys := keysOf(sec.typ)
	if len(levels) >= 3 { // a section inside the section, like nats.tls
		for _, f := range fieldsOf(sec.typ) {
			if isSettings(f.typ) && strings.EqualFold(f.key, levels[1]) {
				key, err := sectionKey(f, levels[1:])
				if err != nil {
					return "", err
				}
				return sec.key + "." + key, nil
			}
		}
	}
	if len(levels) != 2 {
		return "", fmt.Errorf("unknown variable: expected %s%s_<KEY> with KEY one of %s", EnvPrefix, strings.ToUpper(sec.key), strings.ToUpper(strings.Join(keys, ", ")))
	}
	for _, k := range keys {
		if strings.EqualFold(k, levels[1]) {
			return sec.key + "." + k, nil
		}
	}
	return "", fmt.Errorf("unknown variable: no key %q under %s (known keys under %s: %s)", levels[1], sec.key, sec.key, strings.Join(keys, ", "))
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

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
