// wpm's dashboard. Plain JavaScript, no build step and no library: the
// page reads GET /v1/pools and /v1/plugins once, then lives on the
// Server-Sent Events of GET /v1/events (read with fetch, so that the
// bearer token travels in a header, never in a URL). This file is the
// overview (/ui/) and what every view shares: the token, the event
// stream and the routing between views; tasks.js and schedules.js are
// the other views.
"use strict";

const tokenKey = "wpm.token";
const windowSeconds = 300;   // the charts' span
const rssSamples = 60;       // points in a worker's RSS chart
const maxTasks = 50;         // rows of recent tasks
const goneMillis = 15000;    // how long an exited worker stays listed
const clusterEvery = 2000;   // how often the cluster's pools are read again

const state = {
  pools: new Map(),        // name → PoolView from /v1/pools or a stats event
  cluster: {},             // name → the cluster's sums of a pool (cluster in /v1/pools)
  hosts: [],               // the cluster's hosts (GET /v1/cluster)
  clusterTimer: null,      // the next readCluster
  plugins: [],             // GET /v1/plugins
  targets: "",             // the run form's targets, as last filled
  rss: new Map(),          // pid → [bytes…]
  gone: new Map(),         // pid → {pool, slot, reason, at}
  workerLog: new Map(),    // pool → [line…]
  tasks: new Map(),        // id → task row state (insertion order = age)
  queue: [],               // [{t, v}] total queue depth
  finished: [],            // times (ms) of task.finished events
  lastEventID: "",
  streaming: false,
  abort: null,
};

const $ = (id) => document.getElementById(id);

// views are the page's views by name, each shown in the element
// view-<name>: {show(arg), hide(), onEvent(type, e)}. tasks.js and
// schedules.js add theirs; the overview lives on render().
const views = { overview: { show() { render(); }, hide() {}, onEvent() {} } };
let currentView = "";

// route shows the view of the address bar: /ui/ (overview),
// /ui/tasks, /ui/tasks/{id} and /ui/schedules.
function route() {
  const path = location.pathname.replace(/\/+$/, "");
  let name = "overview", arg = "";
  if (path === "/ui/tasks") name = "tasks";
  else if (path.startsWith("/ui/tasks/")) { name = "task"; arg = decodeURIComponent(path.slice("/ui/tasks/".length)); }
  else if (path === "/ui/schedules") name = "schedules";
  if (!views[name]) name = "overview";
  if (currentView && currentView !== name) views[currentView].hide();
  currentView = name;
  for (const el of document.querySelectorAll("main > .view")) el.hidden = el.id !== "view-" + name;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === name || (name === "task" && a.dataset.view === "tasks")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  views[name].show(arg);
}

// go moves to path, one of the page's views, without reloading the page.
function go(path) {
  history.pushState(null, "", path);
  route();
}

// linkClicked keeps a click on a link to one of the page's views in the
// page (a click with a modifier key opens a new tab as usual).
function linkClicked(ev) {
  const a = ev.target.closest("a[href^='/ui/']");
  if (!a || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey || a.target) return;
  ev.preventDefault();
  if (a.getAttribute("href") !== location.pathname + location.search) go(a.getAttribute("href"));
}

// h builds an element; children are nodes or text (never parsed as HTML).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v; else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

function token() { return sessionStorage.getItem(tokenKey) || ""; }

function headers(extra) {
  const hd = Object.assign({}, extra || {});
  if (token()) hd.Authorization = "Bearer " + token();
  return hd;
}

// api fetches path; a 401 shows the token form and throws. Whether the
// token was refused is judged by what this request sent: another request's
// 401 may have cleared the stored token meanwhile.
async function api(path, opts) {
  const o = Object.assign({}, opts || {});
  const sent = token();
  o.headers = headers(o.headers);
  const resp = await fetch(path, o);
  if (resp.status === 401) {
    showLogin(sent ? "That token was refused." : "");
    throw new Error("unauthorized");
  }
  return resp;
}

function showLogin(msg) {
  sessionStorage.removeItem(tokenKey);
  stopStream();
  $("main").hidden = true;
  $("nav").hidden = true;
  $("reload").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
  $("token").focus();
}

async function start() {
  try {
    const [pools, plugins] = await Promise.all([api("/v1/pools"), api("/v1/plugins")]);
    const pj = await pools.json();
    const gj = await plugins.json();
    $("login").hidden = true;
    $("main").hidden = false;
    $("nav").hidden = false;
    $("reload").hidden = false;
    $("logout").hidden = !token();
    setPools(pj.pools || []);
    state.cluster = pj.cluster || {};
    fillTargets(gj.plugins || []);
    readCluster();
    currentView = "";
    route();
    follow();
  } catch (e) {
    if (e.message !== "unauthorized") {
      $("conn").textContent = "error: " + e.message;
    }
  }
}

function setPools(list) {
  const now = Date.now();
  const seen = new Set();
  for (const p of list) {
    state.pools.set(p.name, p);
    seen.add(p.name);
    for (const w of p.workers || []) {
      if (!w.pid) continue;
      const hist = state.rss.get(w.pid) || [];
      hist.push(w.rssBytes || 0);
      if (hist.length > rssSamples) hist.shift();
      state.rss.set(w.pid, hist);
    }
  }
  for (const name of [...state.pools.keys()]) if (!seen.has(name)) state.pools.delete(name);
  let depth = 0;
  for (const p of list) depth += p.queueDepth || 0;
  for (const p of remotePools()) depth += p.queued || 0;
  state.queue.push({ t: now, v: depth });
  while (state.queue.length && state.queue[0].t < now - windowSeconds * 1000) state.queue.shift();
}

// remotePools lists the cluster's pools that do not run on this host
// (all of them on a host of role api), by name, with their plugin.
function remotePools() {
  const out = [];
  for (const name of Object.keys(state.cluster).sort()) {
    if (state.pools.has(name)) continue;
    const on = state.hosts.find((x) => (x.pools || []).some((p) => p.name === name));
    out.push({ name, plugin: on ? on.pools.find((p) => p.name === name).plugin : "", ...state.cluster[name] });
  }
  return out;
}

// readCluster reads the cluster's pools and hosts again, every
// clusterEvery while some pool runs only on other hosts: the stats events
// carry this host's pools only.
async function readCluster() {
  clearTimeout(state.clusterTimer);
  try {
    const [pools, cluster] = await Promise.all([api("/v1/pools"), api("/v1/cluster")]);
    if (pools.ok) state.cluster = (await pools.json()).cluster || {};
    if (cluster.ok) state.hosts = (await cluster.json()).hosts || [];
    if (remotePools().length) {
      fillTargets(state.plugins);
      scheduleRender();
    }
  } catch (e) {
    if (e.message === "unauthorized") return;
  }
  // A host of role api has no pool of its own; a host among others may
  // see pools it does not run appear.
  const clustered = state.pools.size === 0 || state.hosts.length > 1;
  if (clustered && !$("main").hidden) state.clusterTimer = setTimeout(readCluster, clusterEvery);
}

// fillTargets fills every form's choice of where a task runs (the
// selects of class "targets": the run form's, the schedule form's) when
// the pools (this host's and the cluster's) or the plugins changed.
function fillTargets(plugins) {
  state.plugins = plugins;
  const key = JSON.stringify([targetPools(), plugins.map((p) => p.name)]);
  if (key === state.targets) return;
  state.targets = key;
  for (const sel of document.querySelectorAll("select.targets")) fillTargetSelect(sel);
}

// targetPools lists the pools a task may run on, this host's and the
// cluster's: [{name, plugin}].
function targetPools() {
  return [...state.pools.values()].map((p) => ({ name: p.name, plugin: p.plugin }))
    .concat(remotePools().map((p) => ({ name: p.name, plugin: p.plugin })));
}

// fillTargetSelect offers in sel the pools and the plugins (as
// one-shots), keeping the choice made when it is still offered.
function fillTargetSelect(sel) {
  const keep = sel.value;
  sel.replaceChildren(
    h("optgroup", { label: "pools" }, targetPools().map((p) => h("option", { value: "pool:" + p.name }, p.name + " (" + p.plugin + ")"))),
    h("optgroup", { label: "plugins (one-shot)" }, state.plugins.map((p) => h("option", { value: "plugin:" + p.name }, p.name))),
  );
  if (keep && [...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

// readSSE reads a text/event-stream response, calling onEvent(type, id, data).
async function readSSE(resp, onEvent) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const chunk = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = "message", id = "", data = "";
      for (const line of chunk.split("\n")) {
        if (line.startsWith("event: ")) type = line.slice(7);
        else if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (!data) continue;
      let parsed;
      try { parsed = JSON.parse(data); } catch { continue; }
      onEvent(type, id, parsed);
    }
  }
}

function stopStream() {
  if (state.abort) state.abort.abort();
  state.abort = null;
  setConn(false);
}

function setConn(on) {
  state.streaming = on;
  $("conn").textContent = on ? "live" : "offline";
  $("conn").className = "badge " + (on ? "on" : "off");
}

// follow keeps /v1/events open, resuming with Last-Event-ID after a break.
async function follow() {
  stopStream();
  const ctl = new AbortController();
  state.abort = ctl;
  while (!ctl.signal.aborted) {
    try {
      const extra = state.lastEventID ? { "Last-Event-ID": state.lastEventID } : {};
      const resp = await api("/v1/events", { headers: extra, signal: ctl.signal });
      if (resp.ok) {
        setConn(true);
        await readSSE(resp, onEvent);
      }
    } catch (e) {
      if (e.message === "unauthorized") return;
    }
    setConn(false);
    if (ctl.signal.aborted) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function onEvent(type, id, e) {
  if (id) state.lastEventID = id;
  switch (type) {
    case "stats":
      setPools(e.pools || []);
      break;
    case "task.queued": case "task.started": case "task.progress": case "task.finished":
      onTask(type, e);
      break;
    case "worker.started": case "worker.exited": case "worker.replaced":
      onWorker(type, e);
      break;
    case "pool.reloaded":
      Promise.all([api("/v1/pools"), api("/v1/plugins")])
        .then(([p, g]) => Promise.all([p.json(), g.json()]))
        .then(([pj, gj]) => { setPools(pj.pools || []); state.cluster = pj.cluster || {}; fillTargets(gj.plugins || []); render(); })
        .catch(() => {});
      break;
  }
  for (const [name, v] of Object.entries(views)) if (name === currentView) v.onEvent(type, e);
  scheduleRender();
}

function onTask(type, e) {
  let t = state.tasks.get(e.task);
  if (!t) {
    t = { id: e.task, on: e.pool || e.plugin + " (one-shot)", state: "queued", fraction: 0, message: "", ms: null, error: "", at: Date.parse(e.time) };
    state.tasks.set(e.task, t);
    if (state.tasks.size > maxTasks) state.tasks.delete(state.tasks.keys().next().value);
  }
  if (type === "task.started") { t.state = "running"; t.pid = e.pid; workerTask(e.pool, e.pid, 1); }
  if (type === "task.progress") { t.state = "running"; t.fraction = e.fraction || 0; t.message = e.message || ""; }
  if (type === "task.finished") {
    t.state = e.code === "ok" ? "succeeded" : "failed";
    t.code = e.code;
    t.ms = e.durationMs || 0;
    t.error = e.error || "";
    if (e.code === "ok") t.fraction = 1;
    state.finished.push(Date.now());
    workerTask(e.pool, e.pid, -1);
  }
}

// workerTask updates a pool worker's state as a task starts (+1) or ends
// (-1) on it, until the next stats event says all.
function workerTask(pool, pid, delta) {
  const p = state.pools.get(pool);
  const w = p && (p.workers || []).find((x) => x.pid === pid);
  if (!w) return;
  p.running = Math.max(0, (p.running || 0) + delta);
  w.running = Math.max(0, (w.running || 0) + delta);
  if (delta < 0) w.tasksDone = (w.tasksDone || 0) + 1;
  if (w.state === "idle" || w.state === "busy") w.state = w.running > 0 ? "busy" : "idle";
}

function onWorker(type, e) {
  if (!e.pool) return; // a one-shot's process: the page shows pools only
  const log = state.workerLog.get(e.pool) || [];
  const when = new Date(e.time).toLocaleTimeString();
  if (type === "worker.exited") {
    state.gone.set(e.pid, { pool: e.pool, slot: e.slot, reason: e.reason, at: Date.now() });
    log.push(when + "  pid " + e.pid + " exited (" + e.reason + ")");
    const p = state.pools.get(e.pool);
    if (p) p.workers = (p.workers || []).filter((w) => w.pid !== e.pid);
  } else if (type === "worker.replaced") {
    log.push(when + "  slot " + e.slot + " is replacing pid " + e.pid);
  } else {
    log.push(when + "  pid " + e.pid + " started in slot " + e.slot + (e.reason ? " (" + e.reason + ")" : ""));
    const p = state.pools.get(e.pool);
    if (p && !(p.workers || []).some((w) => w.pid === e.pid)) {
      p.workers = (p.workers || []).filter((w) => w.slot !== e.slot);
      p.workers.push({ slot: e.slot, pid: e.pid, state: "idle", tasksDone: 0, rssBytes: 0, restarts: 0 });
    }
  }
  while (log.length > 6) log.shift();
  state.workerLog.set(e.pool, log);
}

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; render(); });
}

function mib(b) { return (b / 1048576).toFixed(1) + " MiB"; }

function spark(values, cls) {
  const s = svg("svg", { class: cls || "spark", viewBox: "0 0 100 24", preserveAspectRatio: "none" });
  if (values.length < 2) return s;
  const top = Math.max(...values) * 1.1 || 1;
  const pts = values.map((v, i) => (i * 100 / (values.length - 1)).toFixed(1) + "," + (24 - v / top * 22).toFixed(1));
  s.append(svg("polyline", { points: pts.join(" ") }));
  return s;
}

function renderPools() {
  const now = Date.now();
  for (const [pid, g] of state.gone) if (now - g.at > goneMillis) state.gone.delete(pid);
  const out = [];
  for (const p of [...state.pools.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const rows = (p.workers || []).slice().sort((a, b) => a.slot - b.slot).map((w) =>
      h("tr", { "data-pid": w.pid, "data-state": w.state },
        h("td", {}, w.slot), h("td", {}, w.pid || "–"),
        h("td", {}, h("span", { class: "state " + w.state }, w.state)),
        h("td", {}, w.tasksDone), h("td", {}, mib(w.rssBytes || 0)),
        h("td", {}, spark(state.rss.get(w.pid) || [])),
        h("td", {}, w.restarts), h("td", {}, w.lastExit || "")));
    for (const [pid, g] of state.gone) {
      if (g.pool !== p.name) continue;
      rows.push(h("tr", { class: "gone", "data-pid": pid, "data-state": "exited" },
        h("td", {}, g.slot), h("td", {}, pid), h("td", {}, h("span", { class: "state exited" }, "exited")),
        h("td", {}), h("td", {}), h("td", {}), h("td", {}), h("td", {}, g.reason)));
    }
    const log = state.workerLog.get(p.name) || [];
    out.push(h("div", { class: "pool", "data-pool": p.name },
      h("div", { class: "head" }, h("b", {}, p.name), h("span", {}, "plugin " + p.plugin),
        h("span", {}, p.ready + " of " + p.size + " ready"),
        p.minWorkers !== p.maxWorkers ? h("span", { "data-scale": p.target }, "scales " + p.minWorkers + "–" + p.maxWorkers) : null,
        h("span", {}, "running " + p.running),
        h("span", { "data-queue": p.queueDepth }, "queued " + p.queueDepth),
        p.paused ? h("span", { class: "paused", "data-paused": "true" }, "paused") : null,
        h("button", { type: "button", "data-pause": p.paused ? "resume" : "pause", "data-for": p.name }, p.paused ? "Resume" : "Pause"),
        p.lastError ? h("span", { class: "error" }, "last start error: " + p.lastError) : null),
      h("table", {}, h("thead", {}, h("tr", {}, ["slot", "pid", "state", "tasks done", "RSS", "RSS history", "restarts", "last exit"].map((c) => h("th", {}, c)))),
        h("tbody", {}, rows)),
      log.length ? h("div", { class: "mono worker-log" }, log.join("\n")) : null));
  }
  for (const p of remotePools()) out.push(clusterPool(p));
  $("pools").replaceChildren(...out);
}

// clusterPool draws a pool that runs on other hosts only: the cluster's
// sums and, by host, its figures there.
function clusterPool(p) {
  const rows = state.hosts.flatMap((x) => (x.pools || []).filter((hp) => hp.name === p.name).map((hp) =>
    h("tr", { "data-host": x.name },
      h("td", {}, x.name), h("td", { class: "mono" }, x.address), h("td", {}, x.role),
      h("td", {}, hp.workers), h("td", {}, hp.ready), h("td", {}, hp.running), h("td", {}, hp.queued))));
  return h("div", { class: "pool", "data-pool": p.name, "data-cluster": "true" },
    h("div", { class: "head" }, h("b", {}, p.name), h("span", {}, "plugin " + p.plugin),
      h("span", { "data-hosts": p.hosts }, "on " + p.hosts + (p.hosts === 1 ? " host" : " hosts")),
      h("span", {}, p.ready + " of " + p.workers + " ready"),
      h("span", {}, "running " + p.running),
      h("span", { "data-queue": p.queued }, "queued " + p.queued),
      p.paused ? h("span", { class: "paused", "data-paused": "true" }, "paused") : null,
      h("button", { type: "button", "data-pause": p.paused ? "resume" : "pause", "data-for": p.name }, p.paused ? "Resume" : "Pause")),
    h("table", {}, h("thead", {}, h("tr", {}, ["host", "address", "role", "workers", "ready", "running", "queued"].map((c) => h("th", {}, c)))),
      h("tbody", {}, rows)));
}

function renderTasks() {
  const rows = [...state.tasks.values()].reverse().map((t) => {
    const pct = Math.round((t.fraction || 0) * 100);
    const cls = "bar" + (t.state === "succeeded" ? " done" : t.state === "failed" ? " failed" : "");
    const fill = h("i", {});
    fill.style.width = pct + "%"; // CSSOM, which the page's CSP allows
    const bar = h("span", { class: cls }, fill);
    return h("tr", { "data-task": t.id, "data-state": t.state, "data-fraction": t.fraction || 0 },
      h("td", { class: "mono" }, t.id), h("td", {}, t.on),
      h("td", {}, h("span", { class: "state " + t.state }, t.state)),
      h("td", { title: t.message }, bar, h("span", { class: "pct" }, pct + "%")),
      h("td", {}, t.ms === null ? "" : (t.ms / 1000).toFixed(2) + " s"),
      h("td", { class: "err" }, t.error ? t.code + ": " + t.error : ""));
  });
  $("tasks").tBodies[0].replaceChildren(...rows);
}

// chart draws [{t, v}] over the last windowSeconds into the svg with id.
function chart(id, points) {
  const el = $(id);
  const now = Date.now();
  const top = Math.max(1, ...points.map((p) => p.v)) * 1.15;
  const span = Math.min(windowSeconds, Math.max(60, (now - started) / 1000));
  const xy = points.filter((p) => now - p.t <= span * 1000)
    .map((p) => [300 - (now - p.t) / 1000 * 300 / span, 80 - p.v / top * 76]);
  el.replaceChildren();
  if (xy.length < 2) return;
  const line = xy.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" ");
  el.append(svg("polygon", { points: xy[0][0].toFixed(1) + ",80 " + line + " " + xy[xy.length - 1][0].toFixed(1) + ",80" }));
  el.append(svg("polyline", { points: line }));
}

function renderCharts() {
  const now = Date.now();
  while (state.finished.length && state.finished[0] < now - windowSeconds * 1000) state.finished.shift();
  const rate = [];
  const span = Math.min(windowSeconds, Math.max(5, Math.ceil((now - started) / 1000)));
  for (let s = Math.floor(span / 5) * 5; s >= 0; s -= 5) { // the last bucket ends now
    const from = now - (s + 5) * 1000, to = now - s * 1000;
    rate.push({ t: to, v: state.finished.filter((x) => x > from && x <= to).length / 5 });
  }
  chart("chart-rate", rate);
  chart("chart-queue", state.queue);
  $("queue-now").textContent = state.queue.length ? state.queue[state.queue.length - 1].v : "";
  $("rate-now").textContent = rate.length ? rate[rate.length - 1].v.toFixed(1) + "/s" : "";
}

const started = Date.now();
function render() {
  renderPools();
  renderTasks();
  renderCharts();
}

// run runs the form's task: sync (a pool task streams its progress) or
// async (queued, then followed through its events to its record).
async function run(ev) {
  ev.preventDefault();
  const [kind, name] = $("run-target").value.split(/:(.*)/s);
  const input = $("run-input").value;
  const out = $("run-result");
  out.className = "mono";
  out.removeAttribute("data-ok");
  try { JSON.parse(input); } catch (e) { out.className = "mono error"; out.textContent = "the input is not JSON: " + e.message; return; }
  $("run-button").disabled = true;
  out.textContent = "running…";
  const path = kind === "pool"
    ? "/v1/pools/" + encodeURIComponent(name) + "/tasks"
    : "/v1/plugins/" + encodeURIComponent(name) + "/run";
  try {
    if ($("run-async").checked) {
      await runAsync(path, input);
    } else if (kind === "pool") {
      const resp = await api(path,
        { method: "POST", body: input, headers: { "Content-Type": "application/json", Accept: "text/event-stream" } });
      if (!(resp.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
        showAnswer(await resp.json());
      } else {
        await readSSE(resp, (type, _id, e) => {
          if (type === "task.progress") out.textContent = "running… " + Math.round(e.fraction * 100) + "% " + (e.message || "");
          if (type === "result" || type === "error") showAnswer(e);
        });
      }
    } else {
      const resp = await api(path, { method: "POST", body: input, headers: { "Content-Type": "application/json" } });
      showAnswer(await resp.json());
    }
  } catch (e) {
    if (e.message !== "unauthorized") { out.className = "mono error"; out.textContent = e.message; }
  } finally {
    $("run-button").disabled = false;
  }
}

// runAsync submits the task with ?async=true, follows its events while it
// runs and shows its record once it ended.
async function runAsync(path, input) {
  const out = $("run-result");
  const resp = await api(path + "?async=true", { method: "POST", body: input, headers: { "Content-Type": "application/json" } });
  const a = await resp.json();
  if (!a.ok) { showAnswer(a); return; }
  out.setAttribute("data-task", a.id);
  out.replaceChildren("queued as ", h("a", { href: "/ui/tasks/" + encodeURIComponent(a.id) }, a.id), "…");
  const events = await api("/v1/tasks/" + encodeURIComponent(a.id) + "/events", { headers: { Accept: "text/event-stream" } });
  if ((events.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
    await readSSE(events, (type, _id, e) => {
      if (type === "task.started") out.textContent = a.id + " running…";
      if (type === "task.progress") out.textContent = a.id + " running… " + Math.round(e.fraction * 100) + "% " + (e.message || "");
    });
  }
  // The record is written just after the task's last event; wait for it.
  const rec = await (await api("/v1/tasks/" + encodeURIComponent(a.id) + "?wait=30s")).json();
  if (rec.error && !rec.state) { showAnswer(rec); return; }
  showAnswer({ ok: rec.state === "succeeded", id: rec.id, state: rec.state, attempts: rec.attempts, result: rec.result, error: rec.error });
}

function showAnswer(a) {
  const out = $("run-result");
  out.className = "mono " + (a.ok ? "ok" : "error");
  out.setAttribute("data-ok", a.ok ? "true" : "false");
  out.textContent = JSON.stringify(a, null, 2);
}

// pauseClicked pauses or resumes the pool of a pool's Pause/Resume
// button, for the whole cluster; the pool's next stats agree.
async function pauseClicked(ev) {
  const b = ev.target.closest("button[data-pause]");
  if (!b) return;
  b.disabled = true;
  try {
    const resp = await api("/v1/pools/" + encodeURIComponent(b.dataset.for) + "/" + b.dataset.pause, { method: "POST" });
    const a = await resp.json();
    if (!resp.ok) { alert(a.error.message); return; }
    const p = state.pools.get(a.pool);
    if (p) p.paused = a.paused;
    if (state.cluster[a.pool]) state.cluster[a.pool].paused = a.paused;
    renderPools();
  } catch (e) {
    if (e.message !== "unauthorized") alert(e.message);
  } finally {
    b.disabled = false;
  }
}

async function reload() {
  try {
    const resp = await api("/v1/admin/reload", { method: "POST" });
    const a = await resp.json();
    alert(a.ok ? "Reloaded: pools " + a.pools.join(", ") : "Reload refused: " + a.error.message);
  } catch (e) {
    if (e.message !== "unauthorized") alert(e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(tokenKey, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("logout").addEventListener("click", () => showLogin(""));
  document.addEventListener("click", linkClicked);
  window.addEventListener("popstate", route);
  $("reload").addEventListener("click", reload);
  $("pools").addEventListener("click", pauseClicked);
  $("run-form").addEventListener("submit", run);
  setInterval(renderCharts, 1000);
  start();
});
