package shared

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Object is a task's input read strictly as a JSON object, for plugins to
// pull typed fields from. Every problem is an [ErrInvalidInput] error whose
// message names the field and says what to send.
type Object struct {
	fields map[string]json.RawMessage
}

// ParseObject reads input as a JSON object whose keys must all be among
// known.
func ParseObject(input []byte, known ...string) (Object, error) {
	want := fmt.Sprintf("send a JSON object with the fields %s", strings.Join(quoted(known), ", "))
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Object{}, InvalidInput("the task must be a JSON object; %s", want)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return Object{}, InvalidInput("the task is not a valid JSON object (%v); %s", err, want)
	}
	for name := range fields {
		if !slices.Contains(known, name) {
			return Object{}, InvalidInput("unknown field %q; %s", name, want)
		}
	}
	return Object{fields: fields}, nil
}

// Int returns the whole-number field name, which must be present and
// within [min, max].
func (o Object) Int(name string, min, max int64) (int64, error) {
	raw, ok := o.fields[name]
	if !ok || string(raw) == "null" {
		return 0, InvalidInput("%q is required: a whole number from %d to %d", name, min, max)
	}
	return parseInt(name, raw, min, max)
}

// OptionalInt returns the whole-number field name within [min, max], or def
// when it is absent or null.
func (o Object) OptionalInt(name string, min, max, def int64) (int64, error) {
	raw, ok := o.fields[name]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	return parseInt(name, raw, min, max)
}

func parseInt(name string, raw json.RawMessage, min, max int64) (int64, error) {
	bad := func() (int64, error) {
		return 0, InvalidInput("%q must be a whole number from %d to %d, got %s", name, min, max, truncate(raw))
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return bad()
	}
	if f != math.Trunc(f) || f < float64(min) || f > float64(max) {
		return bad()
	}
	return int64(f), nil
}

func truncate(raw json.RawMessage) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}

func quoted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}
