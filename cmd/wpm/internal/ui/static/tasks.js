// The dashboard's task views. /ui/tasks lists every kept task (GET
// /v1/tasks), newest first, filtered by state, pool and schedule, paged by
// the API's cursor, and follows the event stream; /ui/tasks/{id} shows one
// task's record and its live events, with Cancel, Retry and Run again.
// The filters live in the address (?state=&pool=&schedule=), so a link
// can open a filtered list.
"use strict";

const taskPageSize = 25;
const taskRefetchMillis = 1000; // the least time between two refetches of a live list
const taskEventsShown = 200;    // the task view's latest events shown
const endStates = ["succeeded", "failed", "canceled"];

const taskList = {
  cursors: [""],  // the cursor of each page seen, the first page's empty
  tasks: [],      // the page shown
  next: "",       // the cursor of the page after it, if any
  timer: null,    // a refetch waiting
  lastFetch: 0,
  generation: 0,  // bumped on each fetch, so that a slow answer is dropped
};

// taskFilter reads the list's filters from the address.
function taskFilter() {
  const q = new URLSearchParams(location.search);
  return { state: q.get("state") || "", pool: q.get("pool") || "", schedule: q.get("schedule") || "" };
}

function when(t) { return t ? new Date(t).toLocaleString() : ""; }

function seconds(from, to) {
  if (!from || !to) return "";
  return ((Date.parse(to) - Date.parse(from)) / 1000).toFixed(2) + " s";
}

function taskLink(id) { return h("a", { href: "/ui/tasks/" + encodeURIComponent(id), class: "mono" }, id); }

function stateBadge(s) { return h("span", { class: "state " + s }, s); }

function progressBar(fraction, st) {
  const pct = Math.round((fraction || 0) * 100);
  const fill = h("i", {});
  fill.style.width = pct + "%"; // CSSOM, which the page's CSP allows
  return [h("span", { class: "bar" + (st === "succeeded" ? " done" : st === "failed" ? " failed" : "") }, fill), h("span", { class: "pct" }, pct + "%")];
}

views.tasks = {
  show() {
    taskList.cursors = [""];
    this.build();
    this.fetch();
  },
  hide() {
    clearTimeout(taskList.timer);
    taskList.timer = null;
  },
  // build draws the filters and an empty table; fetch fills it.
  build() {
    const f = taskFilter();
    const pools = new Set([...state.pools.keys(), ...Object.keys(state.cluster || {})]);
    if (f.pool) pools.add(f.pool);
    $("view-tasks").replaceChildren(
      h("h2", {}, "Tasks"),
      h("form", { id: "task-filter", class: "filters" },
        h("label", {}, "State ", h("select", { id: "filter-state" },
          h("option", { value: "" }, "any"), ["scheduled", "queued", "running", "succeeded", "failed", "canceled"].map((s) => h("option", { value: s }, s)))),
        h("label", {}, "Pool ", h("select", { id: "filter-pool" },
          h("option", { value: "" }, "any"), [...pools].sort().map((p) => h("option", { value: p }, p)))),
        h("label", {}, "Schedule ", h("input", { id: "filter-schedule", type: "text", placeholder: "any" })),
        h("button", { type: "submit" }, "Show")),
      h("table", { id: "task-list" },
        h("thead", {}, h("tr", {}, ["task", "state", "on", "priority", "schedule", "created", "attempts", "progress", "duration", "error"].map((c) => h("th", {}, c)))),
        h("tbody", {})),
      h("p", { id: "tasks-empty", class: "muted", hidden: true }, "No task matches."),
      h("p", { id: "tasks-error", class: "error" }),
      h("div", { class: "pager" },
        h("button", { type: "button", id: "tasks-newer" }, "← Newer"),
        h("span", { id: "tasks-page" }),
        h("button", { type: "button", id: "tasks-older" }, "Older →")));
    $("filter-state").value = f.state;
    $("filter-pool").value = f.pool;
    $("filter-schedule").value = f.schedule;
    $("task-filter").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, id] of [["state", "filter-state"], ["pool", "filter-pool"], ["schedule", "filter-schedule"]]) {
        const v = $(id).value.trim();
        if (v) q.set(k, v);
      }
      go("/ui/tasks" + (q.size ? "?" + q : ""));
    });
    $("tasks-newer").addEventListener("click", () => { taskList.cursors.pop(); this.fetch(); });
    $("tasks-older").addEventListener("click", () => { taskList.cursors.push(taskList.next); this.fetch(); });
  },
  async fetch() {
    const gen = ++taskList.generation;
    taskList.lastFetch = Date.now();
    const q = new URLSearchParams({ limit: taskPageSize });
    for (const [k, v] of Object.entries(taskFilter())) if (v) q.set(k, v);
    const cursor = taskList.cursors[taskList.cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    try {
      const resp = await api("/v1/tasks?" + q);
      const a = await resp.json();
      if (gen !== taskList.generation || currentView !== "tasks") return;
      if (!resp.ok) { $("tasks-error").textContent = a.error ? a.error.message : resp.statusText; return; }
      $("tasks-error").textContent = "";
      taskList.tasks = a.tasks || [];
      taskList.next = a.next || "";
      this.render();
    } catch (e) {
      if (e.message !== "unauthorized" && gen === taskList.generation) $("tasks-error").textContent = e.message;
    }
  },
  render() {
    const rows = taskList.tasks.map((t) => {
      const shown = t.state === "running" || t.progress ? progressBar(t.state === "succeeded" ? 1 : t.progress ? t.progress.fraction : 0, t.state) : "";
      return h("tr", { "data-task": t.id, "data-state": t.state },
        h("td", {}, taskLink(t.id)),
        h("td", {}, stateBadge(t.state)),
        h("td", {}, t.pool || (t.plugin + " (one-shot)")),
        h("td", {}, t.priority || "normal"),
        h("td", {}, t.schedule ? h("a", { href: "/ui/tasks?schedule=" + encodeURIComponent(t.schedule) }, t.schedule) : ""),
        h("td", { title: t.createdAt }, when(t.createdAt)),
        h("td", {}, t.attempts),
        h("td", { class: "progress" }, shown),
        h("td", {}, seconds(t.startedAt, t.finishedAt)),
        h("td", { class: "err" }, t.error ? t.error.code + ": " + t.error.message : ""));
    });
    $("task-list").tBodies[0].replaceChildren(...rows);
    $("tasks-empty").hidden = rows.length > 0;
    $("tasks-newer").disabled = taskList.cursors.length <= 1;
    $("tasks-older").disabled = !taskList.next;
    $("tasks-page").textContent = "page " + taskList.cursors.length;
  },
  // onEvent updates a shown task's row at once; on the first page, where
  // new tasks appear, it also refetches, at most once a second.
  onEvent(type, e) {
    if (!type.startsWith("task.")) return;
    const t = taskList.tasks.find((x) => x.id === e.task);
    if (t) {
      if (type === "task.started") t.state = "running";
      if (type === "task.progress") { t.state = "running"; t.progress = { fraction: e.fraction || 0, message: e.message || "" }; }
      this.render();
    }
    if (type === "task.progress" || taskList.cursors.length > 1 || taskList.timer) return;
    const wait = Math.max(0, taskList.lastFetch + taskRefetchMillis - Date.now());
    taskList.timer = setTimeout(() => { taskList.timer = null; this.fetch(); }, wait);
  },
};

// taskView is the shown task: its record, the stream of its events and
// the events seen.
const taskView = { id: "", rec: null, abort: null, events: [], dropped: 0, generation: 0, drawPending: false, actionError: "" };

// progressPart is the task's progress bar and message, or null when it
// has none to show.
function progressPart(t) {
  if (t.state !== "running" && !t.progress) return null;
  const f = t.state === "succeeded" ? 1 : t.progress ? t.progress.fraction : 0;
  return h("p", { id: "task-progress", "data-fraction": f }, progressBar(f, t.state), " ", t.progress ? t.progress.message : "");
}

// eventsPart is the table of the task's latest events.
function eventsPart() {
  const skipped = Math.max(0, taskView.events.length - taskEventsShown);
  const hidden = skipped + taskView.dropped;
  const rows = taskView.events.slice(skipped).map(({ type, e }) =>
    h("tr", { "data-event": type },
      h("td", {}, e.time ? new Date(e.time).toLocaleTimeString() : ""),
      h("td", {}, type),
      h("td", { class: "mono" }, type === "task.progress" ? Math.round((e.fraction || 0) * 100) + "% " + (e.message || "")
        : type === "task.started" ? "pid " + e.pid + (e.host ? " on " + e.host : "")
          : type === "task.finished" ? e.code + (e.error ? ": " + e.error : "") + (e.durationMs !== undefined ? " in " + e.durationMs + " ms" : "")
            : e.pool ? "pool " + e.pool : "")));
  return h("div", { id: "task-events-part" },
    hidden ? h("p", { class: "muted" }, hidden + " earlier events not shown") : null,
    h("table", { id: "task-events" },
      h("thead", {}, h("tr", {}, ["time", "event", ""].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)));
}

views.task = {
  show(id) {
    this.hide();
    taskView.id = id;
    taskView.rec = null;
    taskView.events = [];
    taskView.dropped = 0;
    taskView.actionError = "";
    $("view-task").replaceChildren(
      h("p", {}, h("a", { href: "/ui/tasks" }, "← all tasks")),
      h("h2", {}, "Task ", h("span", { class: "mono" }, id), " ", h("span", { id: "task-state" })),
      h("p", { id: "task-load-error", class: "error" }),
      h("div", { id: "task-body" }));
    this.load().then(() => this.follow());
  },
  hide() {
    taskView.generation++;
    if (taskView.abort) taskView.abort.abort();
    taskView.abort = null;
  },
  onEvent() {}, // the task's own stream feeds the view (follow)

  // load reads the record (waiting up to wait for its end) and draws it.
  async load(wait) {
    const gen = taskView.generation;
    const id = taskView.id;
    try {
      const resp = await api("/v1/tasks/" + encodeURIComponent(id) + (wait ? "?wait=" + wait : ""));
      const a = await resp.json();
      if (gen !== taskView.generation) return;
      if (!resp.ok) { $("task-load-error").textContent = a.error ? a.error.message : resp.statusText; return; }
      $("task-load-error").textContent = "";
      taskView.rec = a;
      this.render();
    } catch (e) {
      if (e.message !== "unauthorized" && gen === taskView.generation) $("task-load-error").textContent = e.message;
    }
  },

  // follow reads the task's events (its kept ones, then new ones until
  // its record ended, every attempt's), showing each; at each change of
  // state it reads the record again. A stream that breaks before the end
  // (wpm restarted, say) is opened again from the last event seen.
  async follow() {
    const gen = taskView.generation;
    let after = "";
    for (;;) {
      const ctl = new AbortController();
      taskView.abort = ctl;
      let got = 0;
      try {
        const hd = { Accept: "text/event-stream" };
        if (after) hd["Last-Event-ID"] = after;
        const resp = await api("/v1/tasks/" + encodeURIComponent(taskView.id) + "/events", { headers: hd, signal: ctl.signal });
        if (!(resp.headers.get("Content-Type") || "").startsWith("text/event-stream")) return;
        await readSSE(resp, (type, id, e) => {
          if (gen !== taskView.generation) return;
          if (id) after = id;
          got++;
          this.event(type, e);
        });
      } catch (e) {
        if (e.name === "AbortError" || e.message === "unauthorized") return;
      }
      if (gen !== taskView.generation) return;
      await this.load("2s");
      if (gen !== taskView.generation || !taskView.rec || endStates.includes(taskView.rec.state)) return;
      if (!got) await new Promise((r) => setTimeout(r, 1000));
    }
  },

  // event shows one of the task's events: progress at once, any other
  // change with the record read again.
  event(type, e) {
    taskView.events.push({ type, e });
    if (taskView.events.length > 2 * taskEventsShown) { taskView.events.splice(0, taskEventsShown); taskView.dropped += taskEventsShown; }
    const t = taskView.rec;
    if (type === "task.progress" && t && !endStates.includes(t.state)) {
      t.state = "running";
      t.progress = { fraction: e.fraction || 0, message: e.message || "" };
    } else if (type !== "task.finished") {
      this.load("");
    }
    this.renderSoon();
  },

  // renderSoon draws the progress and the events at the next frame, once
  // however many events came meanwhile, leaving the rest (where text may
  // be selected) alone; the record, read again at a change of state, is
  // drawn whole.
  renderSoon() {
    if (taskView.drawPending) return;
    taskView.drawPending = true;
    requestAnimationFrame(() => {
      taskView.drawPending = false;
      const t = taskView.rec, bar = $("task-progress"), events = $("task-events-part");
      const next = t && progressPart(t);
      if (!events || !bar !== !next) { this.render(); return; }
      if (bar) bar.replaceWith(next);
      events.replaceWith(eventsPart());
    });
  },

  render() {
    const t = taskView.rec;
    if (!t) return;
    const ended = endStates.includes(t.state);
    $("task-state").replaceChildren(stateBadge(t.state));
    $("task-state").dataset.state = t.state;
    const facts = [
      ["On", t.pool ? "pool " + t.pool : "plugin " + t.plugin + " (one-shot)"],
      ["Priority", t.priority || "normal"],
      ["Schedule", t.schedule ? h("a", { href: "/ui/tasks?schedule=" + encodeURIComponent(t.schedule) }, t.schedule) : null],
      ["Created", when(t.createdAt)],
      ["Runs at", t.runAt ? when(t.runAt) : null],
      ["Started", when(t.startedAt) || null],
      ["Finished", when(t.finishedAt) || null],
      ["Duration", seconds(t.startedAt, t.finishedAt) || null],
      ["Attempts", t.attempts],
      ["Retry of", t.retryOf ? h("span", { id: "task-retry-of" }, taskLink(t.retryOf)) : null],
      ["Retried by", t.retriedBy ? h("span", { id: "task-retried-by" }, taskLink(t.retriedBy)) : null],
      ["Trace", t.traceId ? h("span", { class: "mono" }, t.traceId) : null],
      ["Callback", t.callbackUrl || null],
    ].filter(([, v]) => v !== null && v !== "");
    const attempts = (t.history && t.history.length) ? t.history : t.startedAt ? [{
      host: t.host, workerPid: t.workerPid, startedAt: t.startedAt, finishedAt: t.finishedAt,
      cause: t.state === "succeeded" ? "ok" : t.error ? t.error.code : "", message: t.error ? t.error.message : "",
    }] : [];
    const input = t.input !== undefined ? JSON.stringify(t.input, null, 2) : t.inputSize ? "(" + t.inputSize + " bytes, kept beside the record)" : "(not kept: a task of an older version)";
    $("task-body").replaceChildren(...[
      h("div", { class: "actions" },
        h("button", { type: "button", id: "task-cancel", disabled: ended }, "Cancel"),
        h("button", { type: "button", id: "task-retry", disabled: !(t.state === "failed" || t.state === "canceled"), title: "a new task with the same input and options, linked to this one" }, "Retry"),
        h("button", { type: "button", id: "task-again", disabled: t.input === undefined && !t.inputSize, title: "a new task with the same input and options" }, "Run again"),
        h("span", { id: "task-action-error", class: "error" }, taskView.actionError)),
      progressPart(t),
      h("dl", { id: "task-facts", class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("div", { class: "split2" },
        h("div", {}, h("h3", {}, "Input"), h("pre", { id: "task-input", class: "mono box" }, input)),
        t.error ? h("div", {}, h("h3", {}, "Error"),
          h("div", { id: "task-error", class: "box" }, h("p", { class: "error" }, h("b", {}, t.error.code), ": ", t.error.message),
            t.error.detail ? h("pre", { id: "task-error-detail", class: "mono" }, t.error.detail) : null))
          : h("div", {}, h("h3", {}, "Result"), h("pre", { id: "task-result", class: "mono box" }, t.result !== undefined ? JSON.stringify(t.result, null, 2) : ended ? "(none)" : "(not yet)"))),
      h("h3", {}, "Attempts"),
      h("table", { id: "task-attempts" },
        h("thead", {}, h("tr", {}, ["#", "host", "worker pid", "started", "ended", "cause", "message"].map((c) => h("th", {}, c)))),
        h("tbody", {}, attempts.map((a, i) => h("tr", { "data-cause": a.cause || "" },
          h("td", {}, i + 1), h("td", {}, a.host || ""), h("td", {}, a.workerPid || ""),
          h("td", {}, when(a.startedAt)), h("td", {}, when(a.finishedAt)),
          h("td", {}, a.cause || (a.finishedAt ? "" : "running")), h("td", { class: "err" }, a.message || ""))))),
      h("h3", {}, "Events"),
      eventsPart(),
    ].filter((c) => c)); // replaceChildren would show a null as "null"
    $("task-cancel").addEventListener("click", () => this.act("cancel"));
    $("task-retry").addEventListener("click", () => this.act("retry"));
    $("task-again").addEventListener("click", () => this.act("again"));
  },

  // act cancels the task, retries it or runs it again; a new task opens.
  async act(what) {
    const t = taskView.rec;
    const failed = (msg) => { taskView.actionError = msg; this.render(); };
    taskView.actionError = "";
    $("task-action-error").textContent = "";
    for (const b of document.querySelectorAll("#task-body .actions button")) b.disabled = true;
    try {
      const id = encodeURIComponent(t.id);
      let resp;
      if (what === "cancel") resp = await api("/v1/tasks/" + id, { method: "DELETE" });
      else if (what === "retry") resp = await api("/v1/tasks/" + id + "/retry", { method: "POST" });
      else resp = await this.runAgain(t);
      const a = await resp.json();
      if (!resp.ok) { failed(a.error ? a.error.message : resp.statusText); return; }
      if (what === "cancel") { taskView.rec = a; this.render(); return; }
      go("/ui/tasks/" + encodeURIComponent(a.id));
    } catch (e) {
      if (e.message !== "unauthorized") failed(e.message);
    }
  },

  // runAgain submits t's input again, async, to its pool or plugin with its
  // priority and run options.
  async runAgain(t) {
    let input = t.input;
    if (input === undefined) input = (await (await api("/v1/tasks/" + encodeURIComponent(t.id))).json()).input;
    const q = new URLSearchParams({ async: "true" });
    if (t.priority && t.priority !== "normal") q.set("priority", t.priority);
    if (t.callbackUrl) q.set("callbackUrl", t.callbackUrl);
    let path;
    if (t.pool) path = "/v1/pools/" + encodeURIComponent(t.pool) + "/tasks";
    else {
      path = "/v1/plugins/" + encodeURIComponent(t.plugin) + "/run";
      if (t.options && t.options.memoryLimitMB) q.set("memoryLimitMB", t.options.memoryLimitMB);
      if (t.options && t.options.timeout) q.set("timeout", t.options.timeout);
    }
    return api(path + "?" + q, { method: "POST", body: JSON.stringify(input), headers: { "Content-Type": "application/json" } });
  },
};
