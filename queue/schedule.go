package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delayed tasks and schedules use NATS message schedules (ADR-51): the
// task stream allows them, and the server itself fires them; wpm keeps no
// timer of its own.
//
//   - A delayed task's message is a schedule definition ("@at <runAt>") on
//     wpm.tasks.delay.<id> whose target is its pool's (or the one-shots')
//     work subject: at runAt the server publishes the task there, and
//     removes the definition. Canceling the task purges the definition; a
//     task fired anyway finds its record canceled and is dropped.
//   - A schedule's definition ("@every", or a 6-field cron with an
//     optional time zone) is on wpm.tasks.sched.<hex of the name>, its
//     target wpm.tasks.tick.<hex of the name>: each tick lands in the
//     stream once, and the one durable consumer "ticks", shared by every
//     host that runs tasks, hands it to one of them, which makes the task.
//     The task's id derives from the tick's stream sequence, so a tick
//     taken twice (its host died) makes one task. The schedules
//     themselves are kept in the bucket wpm_schedules, the source of
//     truth; the definition message is the mechanism (pause purges it,
//     resume publishes it again). Ticks missed while no NATS server ran
//     are not replayed: the server skips ahead to the next one.
const (
	delayPrefix     = subjectPrefix + "delay."
	schedPrefix     = subjectPrefix + "sched."
	tickPrefix      = subjectPrefix + "tick."
	ticksConsumer   = "ticks"
	schedulesBucket = "wpm_schedules"
	// keptRuns is how many of a schedule's last runs its record keeps.
	keptRuns = 10
)

// taskStreamConfig is the task stream's: a work queue that holds message
// schedules. An existing stream is updated to allow them (ensureStream).
func (e *Engine) taskStreamConfig() jetstream.StreamConfig {
	cfg := e.workQueue(streamName, subjectPrefix)
	cfg.AllowMsgSchedules = true
	cfg.AllowRollup = true // the server sets it with schedules
	return cfg
}

// withSchedule sets the job's delay, schedule and fixed id from req. A
// runAt is rounded up to the whole second, as NATS's @at keeps it, so that
// the task never starts before it.
func (j *job) withSchedule(req Request) {
	if req.id != "" {
		j.ID = req.id
	}
	j.Schedule = req.Schedule
	if req.RunAt.IsZero() || !req.RunAt.After(time.Now()) {
		return
	}
	at := req.RunAt.UTC()
	if at.Nanosecond() != 0 {
		at = at.Truncate(time.Second).Add(time.Second)
	}
	j.RunAt = &at
}

// delayed reports whether the job waits for its runAt.
func (j job) delayed() bool { return j.RunAt != nil && j.RunAt.After(time.Now()) }

// publishJob stores the job's message on subj, or, when it is delayed, as
// a schedule that the server publishes to subj at its runAt.
func (e *Engine) publishJob(ctx context.Context, j job, subj string, data []byte) error {
	if !j.delayed() {
		return e.publishTask(ctx, subj, data, j.ID)
	}
	if err := e.schedulesAllowed(); err != nil {
		return err
	}
	return e.publishTask(ctx, delayPrefix+j.ID, data, j.ID,
		jetstream.WithScheduleAt(*j.RunAt), jetstream.WithScheduleTarget(subj))
}

// schedulesAllowed fails when the task stream holds no message schedules:
// an external NATS server older than 2.12 takes the stream's setting
// without knowing it, and would keep a schedule as a plain message that
// never fires.
func (e *Engine) schedulesAllowed() error {
	if info := e.stream.CachedInfo(); info != nil && !info.Config.AllowMsgSchedules {
		return fmt.Errorf("%w: the NATS server does not support message schedules (nats-server 2.12 or later; 2.14 for every and cron), so delayed tasks and schedules are off", ErrUnavailable)
	}
	return nil
}

// unschedule removes a canceled delayed task's schedule, so that it never
// fires; when it fires anyway, the runner finds the record canceled.
func (e *Engine) unschedule(ctx context.Context, t Task) {
	if t.RunAt == nil {
		return
	}
	if _, err := e.purgeSubject(ctx, delayPrefix+t.ID); err != nil {
		e.logger.Warn("can not remove a canceled task's schedule; it is dropped when it fires", "task", t.ID, "error", err)
	}
}

// purgeSubject removes every message of subj from the task stream.
func (e *Engine) purgeSubject(ctx context.Context, subj string) (bool, error) {
	s, err := e.js.Stream(ctx, streamName)
	if err != nil {
		return false, err
	}
	return true, s.Purge(ctx, jetstream.WithPurgeSubject(subj))
}

// MaxDelayDefault is async.maxDelay's default: 30 days.
const MaxDelayDefault = 720 * time.Hour

// Schedule is a recurring task: every tick of Cron or Every makes one
// asynchronous task on Pool (or a one-shot of Plugin) with Input, whose
// record names the schedule.
type Schedule struct {
	// Name identifies the schedule: 1 to 64 letters, digits, '-', '_'.
	Name string `json:"name"`
	// Pool, or Plugin for a one-shot, runs its tasks.
	Pool   string `json:"pool,omitempty"`
	Plugin string `json:"plugin,omitempty"`
	// Input is each task's JSON input; empty means {}.
	Input json.RawMessage `json:"input,omitempty"`
	// Cron is a 6-field cron expression, seconds first (or @hourly,
	// @daily, ...), in Timezone (an IANA name; UTC when empty).
	Cron     string `json:"cron,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// Every is a Go duration of at least 1s, when Cron is empty.
	Every string `json:"every,omitempty"`
	// Paused is set while the schedule makes no tasks.
	Paused bool `json:"paused"`
	// Source says where the schedule comes from: "api" or "config".
	Source string `json:"source"`
	// CreatedAt is when it was made; Since when its ticks last started
	// (made or resumed).
	CreatedAt time.Time `json:"createdAt"`
	Since     time.Time `json:"since"`
	// NextRun is when it next ticks (none while paused).
	NextRun *time.Time `json:"nextRun,omitempty"`
	// LastRuns are its last ticks' tasks, newest first.
	LastRuns []ScheduleRun `json:"lastRuns,omitempty"`
}

// ScheduleRun is one tick of a schedule.
type ScheduleRun struct {
	TaskID string    `json:"taskId"`
	At     time.Time `json:"at"`
}

// Sources of a schedule.
const (
	SourceAPI    = "api"
	SourceConfig = "config"
)

// tick is a schedule's definition's body, copied into each tick.
type tick struct {
	Schedule string `json:"schedule"`
}

var scheduleName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// badSchedule is the error of a schedule's field.
func badSchedule(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrBadSchedule, field, fmt.Sprintf(format, args...))
}

// CheckSchedule checks s's own fields (not whether its pool exists): the
// name, one of pool and plugin, one of cron and every, the time zone, the
// input. Each error names the field.
func CheckSchedule(s Schedule) error {
	switch {
	case s.Name == "":
		return badSchedule("name", "is empty; name the schedule (letters, digits, - and _)")
	case !scheduleName.MatchString(s.Name):
		return badSchedule("name", "%q must be 1 to 64 letters, digits, - or _", clipKey(s.Name))
	case (s.Pool == "") == (s.Plugin == ""):
		return badSchedule("pool", "or plugin: give exactly one of them")
	case (s.Cron == "") == (s.Every == ""):
		return badSchedule("cron", "or every: give exactly one of them")
	case len(s.Input) > 0 && !json.Valid(s.Input):
		return badSchedule("input", "is not valid JSON")
	}
	if s.Every != "" {
		d, err := time.ParseDuration(s.Every)
		if err != nil || d < time.Second {
			return badSchedule("every", "must be a Go duration of at least 1s, like 30s or 1h, got %q", clipKey(s.Every))
		}
		if s.Timezone != "" {
			return badSchedule("timezone", "applies to cron only, not to every")
		}
		return nil
	}
	loc := time.UTC
	if s.Timezone != "" {
		l, err := time.LoadLocation(s.Timezone)
		if err != nil || s.Timezone == "Local" {
			return badSchedule("timezone", "must be an IANA time zone like Europe/Paris, got %q", clipKey(s.Timezone))
		}
		loc = l
	}
	if _, err := parseMsgCron(s.Cron, loc, time.Now()); err != nil {
		return badSchedule("cron", "%q is not a 6-field cron expression, seconds first (like \"0 */5 * * * *\"), or @hourly, @daily, @weekly, @monthly, @yearly: %v", clipKey(s.Cron), err)
	}
	return nil
}

// parseMsgCron returns the first tick of cron after t, as NATS computes it.
func parseMsgCron(cron string, loc *time.Location, t time.Time) (time.Time, error) {
	switch cron {
	case "@yearly", "@annually":
		cron = "0 0 0 1 1 *"
	case "@monthly":
		cron = "0 0 0 1 * *"
	case "@weekly":
		cron = "0 0 0 * * 0"
	case "@daily", "@midnight":
		cron = "0 0 0 * * *"
	case "@hourly":
		cron = "0 0 * * * *"
	}
	return parseCron(cron, loc, t.UnixNano())
}

// nextRun is when s next ticks after now, or nil while it is paused.
func (s Schedule) nextRun(now time.Time) *time.Time {
	if s.Paused {
		return nil
	}
	if s.NextRun != nil && s.NextRun.After(now) {
		return s.NextRun
	}
	var next time.Time
	if s.Every != "" {
		d, err := time.ParseDuration(s.Every)
		if err != nil || d <= 0 {
			return nil
		}
		base := s.Since.Round(time.Second)
		if len(s.LastRuns) > 0 && s.LastRuns[0].At.After(base) {
			base = s.LastRuns[0].At.Round(time.Second)
		}
		n := now.Sub(base)/d + 1
		next = base.Add(n * d)
	} else {
		loc := time.UTC
		if s.Timezone != "" {
			if l, err := time.LoadLocation(s.Timezone); err == nil {
				loc = l
			}
		}
		var err error
		if next, err = parseMsgCron(s.Cron, loc, now); err != nil {
			return nil
		}
	}
	next = next.UTC()
	return &next
}

// sha256Hex is the hex SHA-256 of s.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// nameToken is a schedule's name as a subject token.
func nameToken(name string) string { return hex.EncodeToString([]byte(name)) }

// setUpSchedules makes the schedules' bucket.
func (e *Engine) setUpSchedules(ctx context.Context) error {
	kv, err := ensureKV(ctx, e.js, jetstream.KeyValueConfig{Bucket: schedulesBucket, Storage: jetstream.FileStorage, Replicas: e.opts.Replicas, History: 1})
	if err != nil {
		return fmt.Errorf("make the schedules bucket %s: %w", schedulesBucket, err)
	}
	e.schedMu.Lock()
	e.scheds = kv
	e.schedMu.Unlock()
	return nil
}

// schedules returns the schedules' bucket.
func (e *Engine) schedules() jetstream.KeyValue {
	e.schedMu.Lock()
	defer e.schedMu.Unlock()
	return e.scheds
}

// publishSchedule publishes s's definition, replacing any earlier one.
func (e *Engine) publishSchedule(ctx context.Context, s Schedule) error {
	if err := e.schedulesAllowed(); err != nil {
		return err
	}
	subj := schedPrefix + nameToken(s.Name)
	if _, err := e.purgeSubject(ctx, subj); err != nil {
		return err
	}
	opts := []jetstream.PublishOpt{jetstream.WithScheduleTarget(tickPrefix + nameToken(s.Name))}
	if s.Every != "" {
		d, err := time.ParseDuration(s.Every)
		if err != nil {
			return badSchedule("every", "%v", err)
		}
		opts = append(opts, jetstream.WithScheduleEvery(d))
	} else {
		opts = append(opts, jetstream.WithScheduleCron(s.Cron))
		if s.Timezone != "" {
			opts = append(opts, jetstream.WithScheduleTimeZone(s.Timezone))
		}
	}
	body, _ := json.Marshal(tick{Schedule: s.Name})
	_, err := e.js.Publish(ctx, subj, body, opts...)
	if errors.Is(err, jetstream.ErrSchedulePatternInvalid) {
		if s.Every != "" { // a server before 2.14 knows only @at
			return badSchedule("every", "%q is refused by NATS (every and cron need nats-server 2.14 or later): %v", clipKey(s.Every), err)
		}
		return badSchedule("cron", "%q is refused by NATS (every and cron need nats-server 2.14 or later): %v", clipKey(s.Cron), err)
	}
	return err
}

// CreateSchedule stores a new schedule and starts its ticks. A name in
// use gives ErrScheduleExists; a bad field ErrBadSchedule; an unknown pool
// or plugin host's errors.
func (e *Engine) CreateSchedule(ctx context.Context, s Schedule) (Schedule, error) {
	v, err := e.createSchedule(ctx, s)
	return v, e.unavailable(err)
}

func (e *Engine) createSchedule(ctx context.Context, s Schedule) (Schedule, error) {
	if err := e.checkScheduleTarget(s); err != nil {
		return Schedule{}, err
	}
	if s.Source == "" {
		s.Source = SourceAPI
	}
	t := time.Now().UTC()
	s.CreatedAt, s.Since, s.NextRun, s.LastRuns = t, t, nil, nil
	b, _ := encode(s)
	if _, err := e.schedules().Create(ctx, s.Name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Schedule{}, fmt.Errorf("%w: a schedule named %q exists; delete it first or pick another name", ErrScheduleExists, s.Name)
		}
		return Schedule{}, fmt.Errorf("store schedule %s: %w", s.Name, err)
	}
	if !s.Paused {
		if err := e.publishSchedule(ctx, s); err != nil {
			_ = e.schedules().Delete(ctx, s.Name)
			return Schedule{}, err
		}
	}
	s.NextRun = s.nextRun(time.Now())
	return s, nil
}

// checkScheduleTarget checks s's fields and that its pool or plugin exists.
func (e *Engine) checkScheduleTarget(s Schedule) error {
	if err := CheckSchedule(s); err != nil {
		return err
	}
	_, err := e.newJob(Request{Pool: s.Pool, Plugin: s.Plugin, Input: s.Input})
	return err
}

// GetSchedule returns the schedule, with its next run, or
// ErrUnknownSchedule.
func (e *Engine) GetSchedule(ctx context.Context, name string) (Schedule, error) {
	s, _, err := e.getSchedule(ctx, name)
	if err == nil {
		s.NextRun = s.nextRun(time.Now())
	}
	return s, e.unavailable(err)
}

func (e *Engine) getSchedule(ctx context.Context, name string) (Schedule, uint64, error) {
	if !scheduleName.MatchString(name) {
		return Schedule{}, 0, unknownSchedule(name)
	}
	entry, err := e.schedules().Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Schedule{}, 0, unknownSchedule(name)
	}
	if err != nil {
		return Schedule{}, 0, fmt.Errorf("read schedule %s: %w", name, err)
	}
	var s Schedule
	if err := json.Unmarshal(entry.Value(), &s); err != nil {
		return Schedule{}, 0, fmt.Errorf("schedule %s has a broken record: %w", name, err)
	}
	return s, entry.Revision(), nil
}

func unknownSchedule(name string) error {
	return fmt.Errorf("%w: no schedule %q; GET /v1/schedules lists them", ErrUnknownSchedule, clipKey(name))
}

// ListSchedules returns every schedule, by name.
func (e *Engine) ListSchedules(ctx context.Context) ([]Schedule, error) {
	v, err := e.listSchedules(ctx)
	return v, e.unavailable(err)
}

func (e *Engine) listSchedules(ctx context.Context) ([]Schedule, error) {
	keys, err := e.schedules().Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []Schedule{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out := []Schedule{}
	now := time.Now()
	for _, k := range keys {
		s, _, err := e.getSchedule(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		s.NextRun = s.nextRun(now)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Schedule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteSchedule removes the schedule and its ticks; tasks it made stay.
func (e *Engine) DeleteSchedule(ctx context.Context, name string) (Schedule, error) {
	s, _, err := e.getSchedule(ctx, name)
	if err != nil {
		return s, e.unavailable(err)
	}
	if err := e.schedules().Delete(ctx, name); err != nil {
		return Schedule{}, e.unavailable(fmt.Errorf("delete schedule %s: %w", name, err))
	}
	if _, err := e.purgeSubject(ctx, schedPrefix+nameToken(name)); err != nil {
		// A tick of a schedule that is gone is dropped.
		e.logger.Warn("can not remove a deleted schedule's definition; its ticks are dropped", "schedule", name, "error", err)
	}
	s.NextRun = nil
	return s, nil
}

// PauseSchedule stops the schedule's ticks until ResumeSchedule; it is
// cluster-wide and survives restarts.
func (e *Engine) PauseSchedule(ctx context.Context, name string) (Schedule, error) {
	s, err := e.modifySchedule(ctx, name, func(s *Schedule) { s.Paused, s.NextRun = true, nil })
	if err != nil {
		return s, e.unavailable(err)
	}
	if _, err := e.purgeSubject(ctx, schedPrefix+nameToken(name)); err != nil {
		return s, e.unavailable(fmt.Errorf("remove schedule %s's definition: %w", name, err))
	}
	return s, nil
}

// ResumeSchedule starts a paused schedule's ticks again; missed ticks are
// not made up.
func (e *Engine) ResumeSchedule(ctx context.Context, name string) (Schedule, error) {
	s, err := e.modifySchedule(ctx, name, func(s *Schedule) {
		if s.Paused {
			s.Paused, s.Since, s.NextRun = false, time.Now().UTC(), nil
		}
	})
	if err != nil {
		return s, e.unavailable(err)
	}
	if err := e.publishSchedule(ctx, s); err != nil {
		return s, e.unavailable(err)
	}
	s.NextRun = s.nextRun(time.Now())
	return s, nil
}

// modifySchedule applies change to the schedule's record, compare and set.
func (e *Engine) modifySchedule(ctx context.Context, name string, change func(*Schedule)) (Schedule, error) {
	for range casTries {
		s, rev, err := e.getSchedule(ctx, name)
		if err != nil {
			return s, err
		}
		change(&s)
		b, _ := encode(s)
		_, err = e.schedules().Update(ctx, name, b, rev)
		if err == nil {
			return s, nil
		}
		if !conflict(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return Schedule{}, fmt.Errorf("update schedule %s: %w", name, err)
		}
	}
	return Schedule{}, fmt.Errorf("schedule %s is being changed by another request at the same time; retry", name)
}

// tickLoop takes the schedules' ticks off the queue, one at a time, and
// makes each one's task; it runs on every host that runs tasks.
func (e *Engine) tickLoop() {
	ctx := e.loops
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			c, err := ensureConsumer(ctx, e.js, streamName, jetstream.ConsumerConfig{
				Durable: ticksConsumer, FilterSubject: tickPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: e.opts.AckWait, MaxDeliver: -1,
			})
			if err != nil {
				e.logger.Debug("can not make the ticks' consumer yet", "error", err)
				idle(ctx, nil, e.opts.PollInterval)
				continue
			}
			cons = c
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(min(e.opts.PollInterval, time.Second)))
		if err != nil {
			cons = nil
			idle(ctx, nil, e.opts.PollInterval)
			continue
		}
		for msg := range batch.Messages() {
			e.tick(ctx, msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			cons = nil // gone with a restart of the server, say: made again
			idle(ctx, nil, e.opts.PollInterval)
		}
	}
}

// tick makes the task of one tick, once: its id derives from the tick's
// stream sequence, so a tick redelivered after its host died makes none.
func (e *Engine) tick(ctx context.Context, msg jetstream.Msg) {
	var tk tick
	meta, err := msg.Metadata()
	if json.Unmarshal(msg.Data(), &tk) != nil || tk.Schedule == "" || err != nil {
		e.logger.Error("dropping a tick that names no schedule", "subject", msg.Subject())
		_ = msg.Term()
		return
	}
	s, _, err := e.getSchedule(ctx, tk.Schedule)
	switch {
	case errors.Is(err, ErrUnknownSchedule):
		_ = msg.Term() // deleted: its definition should be gone too
		_, _ = e.purgeSubject(ctx, schedPrefix+nameToken(tk.Schedule))
		return
	case err != nil:
		_ = msg.NakWithDelay(e.opts.PollInterval)
		return
	case s.Paused:
		_ = msg.Ack()
		return
	}
	sum := sha256Hex(fmt.Sprintf("%s\x00%d", s.Name, meta.Sequence.Stream))
	id := sum[:16]
	if _, _, err := e.get(ctx, id); err != nil {
		input := s.Input
		if len(input) == 0 {
			input = json.RawMessage(`{}`)
		}
		_, err := e.submit(ctx, Request{Pool: s.Pool, Plugin: s.Plugin, Input: input, Schedule: s.Name, id: id})
		if err != nil && e.unavailable(err) != nil && errors.Is(e.unavailable(err), ErrUnavailable) {
			_ = msg.NakWithDelay(e.opts.PollInterval)
			return
		}
		if err != nil {
			e.logger.Warn("a schedule's tick could not make its task; the tick is skipped", "schedule", s.Name, "error", err)
			_ = msg.Term()
			return
		}
		e.counters.scheduleRuns.WithLabelValues(s.Name).Inc()
	}
	var next *time.Time
	if v := msg.Headers().Get(jetstream.ScheduleNextHeader); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			next = &t
		}
	}
	_, err = e.modifySchedule(ctx, s.Name, func(s *Schedule) {
		if slices.ContainsFunc(s.LastRuns, func(r ScheduleRun) bool { return r.TaskID == id }) {
			return
		}
		s.LastRuns = append([]ScheduleRun{{TaskID: id, At: time.Now().UTC()}}, s.LastRuns...)
		if len(s.LastRuns) > keptRuns {
			s.LastRuns = s.LastRuns[:keptRuns]
		}
		if next != nil {
			s.NextRun = next
		}
	})
	if err != nil && !errors.Is(err, ErrUnknownSchedule) {
		e.logger.Warn("can not record a schedule's run", "schedule", s.Name, "error", err)
	}
	_ = msg.Ack()
}

// ReconcileSchedules matches the config-declared schedules to decl: each
// is made, or updated when it changed (it stays paused if paused through
// the API); a config-declared one no longer in decl is deleted; those
// made through the API are left alone, unless decl names one, which it
// then takes over. Every running schedule's definition is published again
// when it is missing (wpm died between storing a schedule and publishing
// it). Call it at start and after each reload.
func (e *Engine) ReconcileSchedules(ctx context.Context, decl []Schedule) error {
	var errs []error
	want := map[string]bool{}
	for _, d := range decl {
		want[d.Name] = true
		d.Source = SourceConfig
		if err := e.reconcileOne(ctx, d); err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", d.Name, err))
		}
	}
	all, err := e.listSchedules(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, s := range all {
		switch {
		case s.Source == SourceConfig && !want[s.Name]:
			if _, err := e.DeleteSchedule(ctx, s.Name); err != nil && !errors.Is(err, ErrUnknownSchedule) {
				errs = append(errs, err)
			}
		case !s.Paused:
			if err := e.ensureDefinition(ctx, s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return e.unavailable(errors.Join(errs...))
}

// reconcileOne makes or updates the config-declared schedule d.
func (e *Engine) reconcileOne(ctx context.Context, d Schedule) error {
	cur, _, err := e.getSchedule(ctx, d.Name)
	if errors.Is(err, ErrUnknownSchedule) {
		_, err = e.createSchedule(ctx, d)
		if errors.Is(err, ErrScheduleExists) {
			return nil // another host made it meanwhile
		}
		return err
	}
	if err != nil {
		return err
	}
	if cur.Source == SourceConfig && sameDefinition(cur, d) {
		return nil
	}
	if err := e.checkScheduleTarget(d); err != nil {
		return err
	}
	if cur.Source != SourceConfig {
		e.logger.Warn("a schedule made through the API is taken over by the config's of the same name", "schedule", d.Name)
	}
	s, err := e.modifySchedule(ctx, d.Name, func(s *Schedule) {
		s.Pool, s.Plugin, s.Input, s.Cron, s.Every, s.Timezone, s.Source = d.Pool, d.Plugin, d.Input, d.Cron, d.Every, d.Timezone, SourceConfig
		s.Since, s.NextRun = time.Now().UTC(), nil
	})
	if err != nil || s.Paused {
		return err
	}
	return e.publishSchedule(ctx, s)
}

// sameDefinition reports whether a and b tick alike and make like tasks.
func sameDefinition(a, b Schedule) bool {
	return a.Pool == b.Pool && a.Plugin == b.Plugin && a.Cron == b.Cron && a.Every == b.Every &&
		a.Timezone == b.Timezone && string(a.Input) == string(b.Input)
}

// ensureDefinition publishes s's definition when the stream has none.
func (e *Engine) ensureDefinition(ctx context.Context, s Schedule) error {
	st, err := e.js.Stream(ctx, streamName)
	if err != nil {
		return err
	}
	_, err = st.GetLastMsgForSubject(ctx, schedPrefix+nameToken(s.Name))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return e.publishSchedule(ctx, s)
	}
	return err
}

// MaxDelay is the longest a task may be delayed (async.maxDelay).
func (e *Engine) MaxDelay() time.Duration {
	if e.opts.MaxDelay <= 0 {
		return MaxDelayDefault
	}
	return e.opts.MaxDelay
}
