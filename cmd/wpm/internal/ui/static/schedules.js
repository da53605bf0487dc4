// The dashboard's schedules view, /ui/schedules: every schedule with its
// next run and its last runs' tasks, Pause/Resume and Delete buttons, and
// a form that makes one (GET and POST /v1/schedules, POST
// /v1/schedules/{name}/pause and /resume, DELETE /v1/schedules/{name}).
// While shown, the view re-reads the schedules every few seconds, and
// sooner when a shown next run has passed; it changes the table's rows in
// place, so that a button is not replaced under the pointer.
"use strict";

(() => {
  const refreshMillis = 3000; // how often the list is read again
  const shownRuns = 5;        // last runs' task links per schedule

  const sv = {
    built: false,
    timer: null,
    list: [],          // the schedules, as GET /v1/schedules sent them
    fetchedAt: 0,      // when the list was last read (ms)
    loading: false,
    changes: 0,        // local changes (made, paused, deleted…) so far
    rows: new Map(),   // name → its <tr>
  };
  const drawnKey = new WeakMap(); // element → the key it was last drawn for

  // build makes the view's elements once.
  function build() {
    const kind = h("select", { id: "sched-kind" },
      h("option", { value: "every" }, "every"), h("option", { value: "cron" }, "cron"));
    const tzList = h("datalist", { id: "sched-tz-list" });
    if (Intl.supportedValuesOf) tzList.append(...Intl.supportedValuesOf("timeZone").map((z) => h("option", { value: z })));
    const form = h("form", { id: "schedule-form" },
      h("label", {}, "Name ", h("input", { id: "sched-name", required: "", maxlength: "64", pattern: "[A-Za-z0-9_\\-]+",
        placeholder: "letters, digits, - and _", autocomplete: "off" })),
      h("label", {}, "On ", h("select", { id: "sched-target", class: "targets", required: "" })),
      h("label", {}, "Input (JSON) ", h("textarea", { id: "sched-input", rows: "3" }, "{}")),
      h("div", { class: "when" },
        h("label", {}, "Runs ", kind),
        h("label", { class: "spec" }, h("span", { id: "sched-spec-label" }, "every"), " ",
          h("input", { id: "sched-spec", required: "", autocomplete: "off" }))),
      h("label", { id: "sched-tz-field" }, "Time zone of the cron (empty: UTC) ",
        h("input", { id: "sched-tz", list: "sched-tz-list", autocomplete: "off", placeholder: "UTC" }), tzList),
      h("button", { type: "submit", id: "sched-create" }, "Make the schedule"),
      h("p", { id: "sched-error", class: "error", role: "alert" }));
    $("view-schedules").replaceChildren(
      h("section", { class: "split" },
        h("div", {}, h("h2", {}, "New schedule"), form),
        h("div", {},
          h("h2", {}, "Schedules"),
          h("p", { id: "sched-status", class: "error", role: "status" }),
          h("table", { id: "sched-table" },
            h("thead", {}, h("tr", {}, ["name", "on", "when", "next run", "last runs", ""].map((c) => h("th", {}, c)))),
            h("tbody", {})),
          h("p", { id: "sched-empty", class: "muted" }, "No schedules yet."))));
    kind.addEventListener("change", kindChanged);
    form.addEventListener("submit", create);
    $("sched-table").addEventListener("click", acted);
    kindChanged();
    sv.built = true;
  }

  // kindChanged fits the spec field and the time zone to cron or every.
  function kindChanged() {
    const cron = $("sched-kind").value === "cron";
    $("sched-spec-label").textContent = cron ? "cron (6 fields, seconds first)" : "every (a duration)";
    $("sched-spec").placeholder = cron ? "0 */5 * * * *" : "30s";
    $("sched-tz-field").hidden = !cron;
    $("sched-tz").disabled = !cron;
  }

  // refresh reads the schedules again and redraws them; one read at a time.
  // A list read while the page changed a schedule may predate the change:
  // it is dropped, and the next tick reads again.
  async function refresh() {
    if (sv.loading) return;
    sv.loading = true;
    const changes = sv.changes;
    try {
      const resp = await api("/v1/schedules");
      const a = await resp.json();
      if (!resp.ok) throw new Error(a.error ? a.error.message : "GET /v1/schedules answered " + resp.status);
      if (changes !== sv.changes) return;
      sv.list = a.schedules || [];
      sv.fetchedAt = Date.now();
      setStatus("");
      render();
    } catch (e) {
      // The page asks for a token now, and shows the view again once in.
      if (e.message === "unauthorized") stop();
      else setStatus("Can not read the schedules: " + e.message);
    } finally {
      sv.loading = false;
    }
  }

  // tick runs each second while the view is shown: it redraws the
  // countdowns and reads the list again when it is old or a next run passed.
  function tick() {
    const now = Date.now();
    const due = sv.list.some((s) => s.nextRun && Date.parse(s.nextRun) <= now);
    if (now - sv.fetchedAt >= refreshMillis || (due && now - sv.fetchedAt >= 1000)) refresh();
    else render();
  }

  function stop() {
    clearInterval(sv.timer);
    sv.timer = null;
  }

  function setStatus(msg) { $("sched-status").textContent = msg; }

  // draw replaces el's children with build()'s when key differs from the
  // key it was last drawn for.
  function draw(el, key, build) {
    if (drawnKey.get(el) === key) return;
    drawnKey.set(el, key);
    el.replaceChildren(...[build()].flat().filter((c) => c !== null));
  }

  // until says how far off t (ms) is, roughly.
  function until(t) {
    const s = Math.round((t - Date.now()) / 1000);
    if (s <= 0) return "due";
    if (s < 120) return "in " + s + " s";
    if (s < 7200) return "in " + Math.round(s / 60) + " min";
    if (s < 172800) return "in " + Math.round(s / 3600) + " h";
    return "in " + Math.round(s / 86400) + " days";
  }

  // localTime shows t in the browser's time zone, without the date when it
  // is today.
  function localTime(t) {
    const d = new Date(t);
    return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function render() {
    const body = $("sched-table").tBodies[0];
    const seen = new Set();
    sv.list.forEach((s, i) => {
      seen.add(s.name);
      let tr = sv.rows.get(s.name);
      if (!tr) {
        tr = h("tr", { "data-schedule": s.name }, h("td", {}), h("td", {}), h("td", {}), h("td", {}), h("td", { class: "runs" }), h("td", { class: "acts" }));
        sv.rows.set(s.name, tr);
      }
      if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
      tr.dataset.paused = s.paused ? "true" : "false";
      drawRow(tr, s);
    });
    for (const [name, tr] of sv.rows) {
      if (seen.has(name)) continue;
      tr.remove();
      sv.rows.delete(name);
    }
    $("sched-empty").hidden = sv.list.length > 0;
  }

  function drawRow(tr, s) {
    const [name, on, runs, next, last, acts] = tr.cells;
    draw(name, s.name + s.source, () => [h("b", {}, s.name), s.source === "config" ? h("span", { class: "tag", title: "declared in the config file (schedules:), made again on reload" }, "config") : null]);
    const target = s.pool ? "pool " + s.pool : "plugin " + s.plugin + " (one-shot)";
    draw(on, target + "\n" + JSON.stringify(s.input), () => h("span", { title: "input " + JSON.stringify(s.input === undefined ? {} : s.input) }, target));
    const spec = s.cron ? "cron " + s.cron + " (" + (s.timezone || "UTC") + ")" : "every " + s.every;
    draw(runs, spec, () => h("span", { class: "mono" }, spec));
    if (s.paused) draw(next, "paused", () => h("span", { class: "paused" }, "paused"));
    else if (!s.nextRun) draw(next, "none", () => "–");
    else {
      const at = new Date(s.nextRun);
      draw(next, s.nextRun + until(at.getTime()), () => h("span", { title: s.nextRun }, localTime(at), h("span", { class: "until" }, " " + until(at.getTime()))));
    }
    const ids = (s.lastRuns || []).slice(0, shownRuns);
    draw(last, s.name + "|" + ids.map((r) => r.taskId).join(","), () => [
      ...ids.map((r) => h("a", { class: "mono", href: "/ui/tasks/" + encodeURIComponent(r.taskId), "data-task": r.taskId, title: "made " + new Date(r.at).toLocaleString() }, r.taskId)),
      ids.length ? h("a", { class: "all", href: "/ui/tasks?schedule=" + encodeURIComponent(s.name) }, "all") : h("span", { class: "muted" }, "none yet"),
    ]);
    draw(acts, s.name + (s.paused ? "|paused" : "|running"), () => [
      h("button", { type: "button", class: "small", "data-act": s.paused ? "resume" : "pause", "data-for": s.name }, s.paused ? "Resume" : "Pause"),
      h("button", { type: "button", class: "small danger", "data-act": "delete", "data-for": s.name }, "Delete"),
    ]);
  }

  // acted pauses, resumes or deletes the schedule of a row's button.
  async function acted(ev) {
    const b = ev.target.closest("button[data-act]");
    if (!b) return;
    const name = b.dataset.for, act = b.dataset.act;
    const s = sv.list.find((x) => x.name === name);
    if (act === "delete" && !confirm("Delete the schedule " + name + "? Its ticks stop; the tasks it made stay." +
      (s && s.source === "config" ? " It is declared in the config file, which makes it again on reload." : ""))) return;
    b.disabled = true;
    const path = "/v1/schedules/" + encodeURIComponent(name);
    try {
      const resp = act === "delete" ? await api(path, { method: "DELETE" }) : await api(path + "/" + act, { method: "POST" });
      const a = await resp.json();
      if (!resp.ok) { setStatus(name + ": " + a.error.message); return; }
      setStatus("");
      sv.list = act === "delete" ? sv.list.filter((x) => x.name !== name) : sv.list.map((x) => x.name === name ? a : x);
      sv.changes++;
      render();
    } catch (e) {
      if (e.message !== "unauthorized") setStatus(name + ": " + e.message);
    } finally {
      b.disabled = false;
    }
  }

  // create sends the form's schedule; the API's error (naming the field)
  // shows beside the form, the new schedule in the table.
  async function create(ev) {
    ev.preventDefault();
    const err = $("sched-error");
    err.textContent = "";
    err.removeAttribute("data-code");
    const [kind, target] = $("sched-target").value.split(/:(.*)/s);
    const body = { name: $("sched-name").value.trim() };
    body[kind === "plugin" ? "plugin" : "pool"] = target || "";
    const input = $("sched-input").value.trim();
    if (input) {
      try { body.input = JSON.parse(input); } catch (e) { err.textContent = "The input is not JSON: " + e.message; return; }
    }
    const spec = $("sched-spec").value.trim();
    if ($("sched-kind").value === "cron") {
      body.cron = spec;
      if ($("sched-tz").value.trim()) body.timezone = $("sched-tz").value.trim();
    } else {
      body.every = spec;
    }
    $("sched-create").disabled = true;
    try {
      const resp = await api("/v1/schedules", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      const a = await resp.json();
      if (!resp.ok) {
        err.textContent = a.error ? a.error.message : "POST /v1/schedules answered " + resp.status;
        if (a.error) err.dataset.code = a.error.code;
        return;
      }
      sv.list = sv.list.filter((x) => x.name !== a.name).concat([a]).sort((x, y) => x.name < y.name ? -1 : x.name > y.name ? 1 : 0);
      sv.changes++;
      render();
      $("sched-name").value = "";
    } catch (e) {
      if (e.message !== "unauthorized") err.textContent = e.message;
    } finally {
      $("sched-create").disabled = false;
    }
  }

  views.schedules = {
    show() {
      if (!sv.built) build();
      fillTargetSelect($("sched-target")); // app.js keeps it filled from then on
      refresh();
      stop();
      sv.timer = setInterval(tick, 1000);
    },
    hide: stop,
    onEvent(type) {
      // A tick's task is queued: show it among the last runs now.
      if (type === "task.queued" && sv.list.some((s) => s.nextRun && Date.parse(s.nextRun) <= Date.now() + 500)) refresh();
      if (type === "pool.reloaded") refresh(); // app.js fills the targets again
    },
  };
})();
