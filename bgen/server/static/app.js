// bgen dashboard: runs list, start form, one run's progress, policies and flights.
// Talks only to the server that served this page (HTTP on its origin, WebSockets on the
// ws_port that GET /health names). Plain ES module, no build step.
import { FlightView } from "/static/flight3d.js";

const TOKEN_KEY = "bgen.token";
const RUNS_POLL_MS = 2000;
const RUN_POLL_MS = 3000;
const RECONNECT_MS = [500, 1000, 2000, 4000];
const FINAL = new Set(["done", "error", "terminated"]);
const ACTIVE = new Set(["queued", "running", "stopping"]);

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
};

// ---------------------------------------------------------------- HTTP with an optional token

let tokenPrompt = null;   // the pending "ask for a token" promise, so a burst of 401s asks once

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function askToken(message) {
  if (tokenPrompt) return tokenPrompt;
  const dialog = $("#token-dialog");
  $("#token-error").textContent = message || "";
  dialog.hidden = false;
  $("#token-input").focus();
  tokenPrompt = new Promise((resolve) => {
    $("#token-form").onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
      dialog.hidden = true;
      tokenPrompt = null;
      resolve();
    };
  });
  return tokenPrompt;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.body = body;
  }
}

async function api(path, options = {}, retried = false) {
  const headers = { ...(options.headers || {}), ...authHeaders() };
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET", headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: text.slice(0, 200) }; }
  if (response.status === 401 && !retried) {
    await askToken(sessionStorage.getItem(TOKEN_KEY) ? "That token was refused." : "");
    return api(path, options, true);
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function wsUrl(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined) query.set(key, value);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) query.set("token", token);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const text = query.toString();
  return `${scheme}://${location.hostname}:${state.wsPort}${path}${text ? "?" + text : ""}`;
}

// ---------------------------------------------------------------- formatting

const pct = (value) => (typeof value === "number" ? `${Math.round(value * 100)} %` : "—");
const num = (value, digits = 2) => (typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "—");

function when(seconds) {
  if (typeof seconds !== "number") return "—";
  const date = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function duration(run) {
  const start = run.started ?? run.created;
  if (typeof start !== "number") return "—";
  const end = typeof run.finished === "number" ? run.finished : (ACTIVE.has(run.status) ? Date.now() / 1000 : null);
  if (end === null) return "—";
  const s = Math.max(0, end - start);
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// A graded score, when the aggregate has one (mean score of the task spec's checks).
function scoreOf(aggregate) {
  if (!aggregate || typeof aggregate !== "object") return null;
  for (const key of ["score", "mean_score", "graded_score"]) {
    const value = aggregate[key];
    if (typeof value === "number") return value;
    if (value && typeof value.mean === "number") return value.mean;
  }
  return null;
}

// Per-check results of an aggregate or a summary, as [{name, pass_rate, score, account}].
function checksOf(source) {
  const checks = source && source.checks;
  if (!checks) return [];
  const list = Array.isArray(checks) ? checks : Object.entries(checks).map(([name, value]) => ({ name, ...value }));
  return list.map((check, index) => {
    const name = check.name || check.label || check.kind || `check ${index}`;
    const passRate = typeof check.pass_rate === "number" ? check.pass_rate
      : typeof check.passed === "boolean" ? (check.passed ? 1 : 0)
      : typeof check.ok === "boolean" ? (check.ok ? 1 : 0) : null;
    const score = typeof check.score === "number" ? check.score
      : typeof check.mean_score === "number" ? check.mean_score : null;
    return { name, passRate, score, account: check.account || check.accounts || "" };
  });
}

// ---------------------------------------------------------------- state

const state = {
  wsPort: null,
  runs: [],
  runId: null,
  record: null,
  iterations: new Map(),     // iteration -> {aggregate, tokens, latency, critique, episodes: Map(seed -> summary)}
  holdout: null,
  lastEventId: null,
  socket: null,
  reconnects: 0,
  flight: null,
  live: null,                // agents WebSocket of a rendered run
  chart: null,
  codeIterations: [],
};

// ---------------------------------------------------------------- runs list

async function refreshRuns() {
  try {
    const body = await api("/runs");
    state.runs = (body && body.runs) || [];
    renderRuns(body && typeof body.total === "number" ? body.total : state.runs.length);
    $("#runs-error").textContent = "";
  } catch (error) {
    $("#runs-error").textContent = `cannot list runs: ${error.message}`;
  }
}

function renderRuns(total) {
  $("#runs-total").textContent = `(${total})`;
  const body = $("#runs-table tbody");
  body.replaceChildren(...state.runs.map((run) => {
    const row = el("tr", { dataset: { runId: run.run_id }, onclick: () => openRun(run.run_id) },
      el("td", { class: "goal", title: run.user_goal || "", textContent: run.user_goal || "—" }),
      el("td", {}, el("span", { class: `status ${run.status}`, textContent: run.status })),
      el("td", { textContent: pct(run.best_success_rate) }),
      el("td", { textContent: num(run.best_score ?? scoreOf(run.best_aggregate)) }),
      el("td", { textContent: when(run.created) }),
      el("td", { textContent: duration(run) }),
      el("td", {},
        ACTIVE.has(run.status) ? el("button", { class: "small", type: "button", textContent: "Terminate",
          onclick: (event) => { event.stopPropagation(); terminateRun(run.run_id); } }) : null,
        !ACTIVE.has(run.status) ? el("button", { class: "small", type: "button", textContent: "Delete",
          onclick: (event) => { event.stopPropagation(); deleteRun(run.run_id); } }) : null));
    if (run.run_id === state.runId) row.classList.add("selected");
    return row;
  }));
}

async function terminateRun(runId) {
  try {
    await api(`/runs/${runId}/terminate`, { method: "POST" });
  } catch (error) {
    showRunError(`terminate: ${error.message}`);
  }
  refreshRuns();
}

async function deleteRun(runId) {
  try {
    await api(`/runs/${runId}`, { method: "DELETE" });
    if (state.runId === runId) closeRun();
  } catch (error) {
    const target = state.runId === runId ? "#run-error" : "#runs-error";
    $(target).textContent = `delete: ${error.message}`;
  }
  refreshRuns();
}

// ---------------------------------------------------------------- start form

const NUMBER_FIELDS = ["iterations", "episodes", "max_steps", "success_threshold"];

function formRequest(form) {
  const data = new FormData(form);
  const request = { user_goal: (data.get("user_goal") || "").trim() || null, scenario: data.get("scenario"),
    render: form.elements.render.checked };
  for (const name of NUMBER_FIELDS) {
    const text = String(data.get(name) || "").trim();
    if (text !== "") request[name] = Number(text);
  }
  // Sent only when they differ from the loop's defaults, so a server without them still starts runs.
  const candidates = Number(data.get("candidates") || 1);
  if (candidates !== 1) request.candidates = candidates;
  const holdout = Number(data.get("holdout_seeds") || 0);
  if (holdout !== 0) request.holdout_seeds = holdout;
  for (const name of ["provider", "model", "provider_url"]) {
    const text = String(data.get(name) || "").trim();
    if (text) request[name] = text;
  }
  const spec = String(data.get("task_spec") || "").trim();
  if (spec) {
    try {
      request.task_spec = JSON.parse(spec);
    } catch (error) {
      throw new ApiError(400, { error: `task_spec: not JSON: ${error.message}`, field: "task_spec" });
    }
  }
  const code = String(data.get("policy_code") || "");
  if (code.trim()) request.policy_code = code;
  return request;
}

function clearFormErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  $("#form-error").textContent = "";
}

function showFormError(form, error) {
  // "task_spec.checks[0].kind" is shown at task_spec.
  const slotOf = (name) => name && form.querySelector(`.field-error[data-field="${CSS.escape(name)}"]`);
  const slot = slotOf(error.field) || slotOf(String(error.field || "").split(/[.[]/)[0]);
  let message = error.message;
  if (error.body && error.body.lineno) message += ` (line ${error.body.lineno})`;
  if (slot) {
    slot.textContent = message;
    const details = slot.closest("details");
    if (details) details.open = true;
  } else {
    $("#form-error").textContent = message;
  }
}

async function startRun(event) {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form);
  const button = $("#start-run");
  button.disabled = true;
  try {
    const started = await api("/run", { method: "POST", json: formRequest(form) });
    $("#form-error").textContent = "";
    await refreshRuns();
    openRun(started.run_id);
  } catch (error) {
    showFormError(form, error);
  } finally {
    button.disabled = false;
  }
}

function loadPolicyFile(event) {
  const file = event.target.files && event.target.files[0];
  if (!file) return;
  file.text().then((text) => { $("#run-form").elements.policy_code.value = text; });
}

// ---------------------------------------------------------------- one run

function showRunError(message) {
  $("#run-error").textContent = message;
}

function closeRun() {
  if (state.socket) { state.socket.onclose = null; state.socket.close(); }
  stopLive();
  state.socket = null;
  state.runId = null;
  $("#run-panel").hidden = true;
  renderRuns(state.runs.length);
}

function iterationEntry(n) {
  if (!state.iterations.has(n)) {
    state.iterations.set(n, { aggregate: null, tokens: null, latency: null, critique: null, episodes: new Map(),
      policyTokens: { in: 0, out: 0 }, policyLatency: 0 });
  }
  return state.iterations.get(n);
}

async function openRun(runId) {
  if (state.runId === runId) return;
  closeRun();
  state.runId = runId;
  state.iterations = new Map();
  state.holdout = null;
  state.lastEventId = null;
  state.reconnects = 0;
  state.codeIterations = [];
  state.policyPinned = false;
  state.taskSpec = null;
  $("#run-panel").hidden = false;
  $("#run-title").textContent = `Run ${runId}`;
  $("#critiques").replaceChildren();
  $("#policy-code").replaceChildren();
  $("#policy-iteration").replaceChildren();
  $("#episode-select").replaceChildren();
  $("#episode-info").textContent = "";
  $("#run-live").textContent = "";
  if (state.flight) state.flight.reset();
  showRunError("");
  renderRuns(state.runs.length);
  await refreshRun();
  connectProgress();
}

async function refreshRun() {
  const runId = state.runId;
  if (!runId) return;
  try {
    const record = await api(`/runs/${runId}`);
    if (runId !== state.runId) return;
    state.record = record;
    prefetchWorld(record);
    for (const item of record.iterations || []) {
      const entry = iterationEntry(item.iteration);
      entry.aggregate = entry.aggregate || item.aggregate;
    }
    renderRunHead();
    renderIterations();
    const codes = record.code_iterations || [];
    if (codes.join() !== state.codeIterations.join()) {
      state.codeIterations = codes;
      renderPolicyChoices();
    }
    if (record.request && record.request.render && ACTIVE.has(record.status)) startLive();
    else stopLive();
  } catch (error) {
    showRunError(`cannot read run ${runId}: ${error.message}`);
  }
}

function renderRunHead() {
  const record = state.record || {};
  const status = $("#run-status");
  status.textContent = record.status || "";
  status.className = `status ${record.status || ""}`;
  $("#run-goal").textContent = (record.request && record.request.user_goal) || "";
  $("#run-terminate").disabled = !ACTIVE.has(record.status);
  $("#run-delete").disabled = ACTIVE.has(record.status);
  if (record.error) showRunError(typeof record.error === "string" ? record.error : JSON.stringify(record.error));
}

// -- progress WebSocket (resumes with ?since=<last id> after a drop)

function connectProgress() {
  const runId = state.runId;
  if (!runId || !state.wsPort) return;
  const socket = new WebSocket(wsUrl(`/ws/progress/${runId}`, { since: state.lastEventId }));
  state.socket = socket;
  $("#connection").textContent = "progress: connecting";
  socket.onopen = () => { state.reconnects = 0; $("#connection").textContent = "progress: live"; };
  socket.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    onProgress(event);
  };
  socket.onclose = () => {
    if (state.socket !== socket || state.runId !== runId) return;
    const record = state.record || {};
    if (!ACTIVE.has(record.status) && state.finalSeen) {
      $("#connection").textContent = "progress: run ended";
      return;
    }
    const delay = RECONNECT_MS[Math.min(state.reconnects, RECONNECT_MS.length - 1)];
    state.reconnects += 1;
    $("#connection").textContent = `progress: reconnecting in ${delay / 1000} s`;
    setTimeout(() => { if (state.runId === runId && state.socket === socket) connectProgress(); }, delay);
  };
  socket.onerror = () => {};
  state.finalSeen = false;
}

let runRefreshTimer = null;

function scheduleRunRefresh() {
  if (runRefreshTimer) return;
  runRefreshTimer = setTimeout(() => { runRefreshTimer = null; refreshRun(); }, 300);
}

function onProgress(event) {
  if (typeof event.id === "number") state.lastEventId = Math.max(state.lastEventId || 0, event.id);
  const live = $("#run-live");
  switch (event.type) {
    case "connected":
      break;
    case "status":
      if (event.status === "running" && state.record && state.record.request && state.record.request.render) startLive();
      scheduleRunRefresh();
      break;
    case "iteration":
      iterationEntry(event.iteration);
      live.textContent = `iteration ${event.iteration + 1} of ${event.iterations} started`;
      break;
    case "policy": {
      const entry = iterationEntry(event.iteration);
      entry.policyTokens.in += event.tokens_in || 0;
      entry.policyTokens.out += event.tokens_out || 0;
      entry.policyLatency += event.latency_s || 0;
      live.textContent = `iteration ${event.iteration}: policy ${event.source}${event.ok ? "" : " failed its check: " + (event.error || "")}`;
      scheduleRunRefresh();
      break;
    }
    case "step": {
      const step = event.step || event;
      const pos = step.agent_pos;
      live.textContent = `iteration ${event.iteration}, seed ${event.seed}: step ${step.step}` +
        (Array.isArray(pos) ? ` at [${pos.map((v) => v.toFixed(1)).join(", ")}]` : "") +
        (typeof step.distance_to_target === "number" ? `, ${step.distance_to_target.toFixed(1)} m to the target` : "");
      break;
    }
    case "episode_summary": {
      const summary = event.summary || event;
      const key = event.phase === "holdout" ? "holdout" : event.iteration;
      if (key === "holdout") {
        state.holdout = state.holdout || { episodes: new Map() };
        state.holdout.episodes.set(event.seed, summary);
      } else {
        iterationEntry(key).episodes.set(event.seed, summary);
      }
      live.textContent = `episode seed ${event.seed}: ${summary.reason || (summary.success ? "success" : "")}`;
      renderEpisodeChoices();
      break;
    }
    case "critique": {
      const entry = iterationEntry(event.iteration);
      entry.aggregate = event.aggregate || entry.aggregate;
      entry.critique = event.critique || event.text || "";
      entry.tokens = event.tokens || null;
      entry.latency = typeof event.llm_latency_s === "number" ? event.llm_latency_s : null;
      renderIterations();
      scheduleRunRefresh();
      break;
    }
    case "holdout":
      state.holdout = { ...(state.holdout || { episodes: new Map() }), aggregate: event.aggregate,
        critique: event.critique || event.text || "" };
      renderIterations();
      break;
    case "warning":
      live.textContent = `warning: ${event.message}`;
      break;
    case "task":
      state.taskSpec = event.task_spec || event.spec || event.task || null;
      break;
    default:
      if (FINAL.has(event.type)) {
        state.finalSeen = true;
        live.textContent = event.type === "error" ? `ended: ${event.message}` :
          `${event.type}${event.stopped_reason ? " (" + event.stopped_reason + ")" : ""}` +
          (event.timing ? `, ${num(event.timing.wall_time_s, 1)} s wall, ${num(event.timing.speedup_x, 0)}× real time` : "");
        scheduleRunRefresh();
        refreshRuns();
      }
  }
}

// -- per-iteration chart, table, checks, critiques

function sortedIterations() {
  return [...state.iterations.entries()].sort((a, b) => a[0] - b[0]);
}

function renderIterations() {
  const rows = sortedIterations();
  const body = $("#iterations-table tbody");
  body.replaceChildren(...rows.map(([n, entry]) => {
    const tokens = entry.tokens || entry.policyTokens;
    const latency = entry.latency ?? entry.policyLatency;
    return el("tr", {},
      el("td", { textContent: String(n) }),
      el("td", { textContent: entry.aggregate ? pct(entry.aggregate.success_rate) : "…" }),
      el("td", { textContent: num(scoreOf(entry.aggregate)) }),
      el("td", { textContent: tokens ? `${tokens.in ?? 0} / ${tokens.out ?? 0}` : "—" }),
      el("td", { textContent: typeof latency === "number" ? `${latency.toFixed(2)} s` : "—" }),
      el("td", { textContent: entry.aggregate ? `${entry.aggregate.successes ?? "?"} of ${entry.aggregate.episodes ?? "?"}` : `${entry.episodes.size} so far` }));
  }));
  if (state.holdout && state.holdout.aggregate) {
    body.append(el("tr", {}, el("td", { textContent: "holdout" }),
      el("td", { textContent: pct(state.holdout.aggregate.success_rate) }),
      el("td", { textContent: num(scoreOf(state.holdout.aggregate)) }),
      el("td", { textContent: "—" }), el("td", { textContent: "—" }),
      el("td", { textContent: `${state.holdout.aggregate.successes ?? "?"} of ${state.holdout.aggregate.episodes ?? "?"}` })));
  }
  renderChart(rows);
  renderChecks(rows);
  renderCritiques(rows);
}

function renderChart(rows) {
  const done = rows.filter(([, entry]) => entry.aggregate);
  const xs = done.map(([n]) => n);
  const success = done.map(([, entry]) => entry.aggregate.success_rate ?? null);
  const score = done.map(([, entry]) => scoreOf(entry.aggregate));
  const data = [xs, success, score];
  const container = $("#chart");
  const width = Math.max(300, container.clientWidth || 480);
  if (!state.chart) {
    container.replaceChildren();
    state.chart = new uPlot({
      width, height: 200,
      legend: { live: false },
      scales: { x: { time: false }, y: { range: [0, 1] } },
      axes: [{ label: "iteration", incrs: [1, 2, 5, 10], values: (u, ticks) => ticks.map((v) => String(v)) },
        { label: "rate / score", values: (u, ticks) => ticks.map((v) => v.toFixed(1)) }],
      series: [{ label: "iteration" },
        { label: "success rate", stroke: "#2f6fdf", width: 2, points: { show: true, size: 8 } },
        { label: "graded score", stroke: "#d35400", width: 2, dash: [6, 4], points: { show: true, size: 7 } }],
    }, data, container);
  } else {
    state.chart.setData(data);
  }
  container.dataset.points = String(xs.length);
}

function renderChecks(rows) {
  const names = [];
  const perIteration = rows.map(([n, entry]) => {
    const checks = checksOf(entry.aggregate);
    for (const check of checks) if (!names.includes(check.name)) names.push(check.name);
    return [n, checks];
  }).filter(([, checks]) => checks.length);
  const container = $("#checks");
  if (!perIteration.length) {
    container.replaceChildren(el("p", { class: "muted", textContent: "no per-check results in this run" }));
    return;
  }
  const table = el("table", { class: "checks-table" },
    el("thead", {}, el("tr", {}, el("th", { textContent: "check" }),
      ...perIteration.map(([n]) => el("th", { textContent: `iteration ${n}` })))),
    el("tbody", {}, ...names.map((name) => el("tr", {}, el("td", { textContent: name }),
      ...perIteration.map(([, checks]) => {
        const check = checks.find((c) => c.name === name);
        if (!check) return el("td", { textContent: "—" });
        const rate = check.passRate;
        return el("td", { class: rate === 1 ? "pass" : rate === null ? "" : "fail",
          title: Array.isArray(check.account) ? check.account.join("\n") : String(check.account || ""),
          textContent: `${pct(rate)}${check.score !== null ? ` · ${num(check.score)}` : ""}` });
      })))));
  container.replaceChildren(table);
}

function renderCritiques(rows) {
  const items = rows.filter(([, entry]) => entry.critique).map(([n, entry]) =>
    el("details", { open: n === rows[rows.length - 1][0] },
      el("summary", { textContent: `iteration ${n}` }),
      el("pre", { class: "critique", textContent: entry.critique })));
  if (state.holdout && state.holdout.critique) {
    items.push(el("details", {}, el("summary", { textContent: "holdout" }),
      el("pre", { class: "critique", textContent: state.holdout.critique })));
  }
  $("#critiques").replaceChildren(...(items.length ? items : [el("p", { class: "muted", textContent: "no critique yet" })]));
}

// -- policy per iteration, with a diff against the previous one

function renderPolicyChoices() {
  const select = $("#policy-iteration");
  const previous = select.value;
  select.replaceChildren(...state.codeIterations.map((n) => el("option", { value: String(n), textContent: `iteration ${n}` })));
  if (!state.codeIterations.length) {
    $("#policy-info").textContent = "no policy yet";
    return;
  }
  // Follows the newest iteration unless the user picked one.
  const pinned = state.policyPinned && state.codeIterations.includes(Number(previous));
  select.value = pinned ? previous : String(state.codeIterations[state.codeIterations.length - 1]);
  showPolicy();
}

async function showPolicy() {
  const runId = state.runId;
  const n = Number($("#policy-iteration").value);
  if (!runId || !Number.isInteger(n)) return;
  const index = state.codeIterations.indexOf(n);
  const previous = index > 0 ? state.codeIterations[index - 1] : null;
  const pre = $("#policy-code");
  try {
    if ($("#diff-toggle").checked && previous !== null) {
      const diff = await api(`/code/${runId}/diff?from=${previous}&to=${n}`);
      if (runId !== state.runId) return;
      $("#policy-info").textContent = `iteration ${diff.from} → ${diff.to}: +${diff.added} −${diff.removed} lines`;
      pre.dataset.mode = "diff";
      pre.replaceChildren(...(diff.diff ? diff.diff.split("\n").filter((line, i, all) => i < all.length - 1 || line).map((line) =>
        el("span", { class: line.startsWith("+++") || line.startsWith("---") ? "meta" : line.startsWith("@@") ? "hunk" :
          line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "", textContent: line + "\n" }))
        : [el("span", { class: "meta", textContent: "no change from the previous iteration\n" })]));
    } else {
      const code = await api(`/code/${runId}?iteration=${n}`);
      if (runId !== state.runId) return;
      $("#policy-info").textContent = previous === null ? `iteration ${n} (the first)` : `iteration ${n}`;
      pre.dataset.mode = "code";
      pre.textContent = code.code;
    }
  } catch (error) {
    $("#policy-info").textContent = `cannot load the policy: ${error.message}`;
  }
}

// -- episodes and the 3D flight

function renderEpisodeChoices() {
  const select = $("#episode-select");
  const previous = select.value;
  const options = [];
  for (const [n, entry] of sortedIterations()) {
    for (const [seed, summary] of [...entry.episodes.entries()].sort((a, b) => a[0] - b[0])) {
      options.push(el("option", { value: `${n}/${seed}`,
        textContent: `iteration ${n}, seed ${seed}: ${summary.reason || (summary.success ? "success" : "")}` }));
    }
  }
  if (state.holdout) {
    for (const [seed, summary] of state.holdout.episodes) {
      options.push(el("option", { value: `holdout/${seed}`, textContent: `holdout, seed ${seed}: ${summary.reason || ""}` }));
    }
  }
  const values = options.map((o) => o.value);
  if (values.join() === [...select.options].map((o) => o.value).join()) return;
  select.replaceChildren(...options);
  if (values.includes(previous)) select.value = previous;
  else if (values.length) {
    select.value = values[0];
    showEpisode();
  }
}

async function showEpisode() {
  const runId = state.runId;
  const value = $("#episode-select").value;
  if (!runId || !value) return;
  const [iteration, seed] = value.split("/");
  const info = $("#episode-info");
  info.textContent = "loading the episode and its world…";
  const started = performance.now();
  try {
    const scenario = (state.record && state.record.request && state.record.request.scenario) || "terrain";
    const [episode, world] = await Promise.all([api(`/runs/${runId}/episodes/${iteration}/${seed}`),
      worldOf(scenario, Number(seed))]);
    if (runId !== state.runId || value !== $("#episode-select").value) return;
    if (!state.flight) state.flight = new FlightView($("#flight-canvas"), $("#flight-legend"));
    episode.task_spec = episode.task_spec || state.taskSpec || null;
    state.flight.show(world, episode, $("#colour-by").value);
    setSlider(1);
    const took = Math.round(performance.now() - started);
    const summary = episode.summary || {};
    const checks = checksOf(summary);
    info.textContent = `seed ${seed}: ${summary.reason || "running"}, ${summary.steps ?? episode.track.steps} steps, ` +
      `${summary.collisions_total ?? 0} collisions, closest ${num(summary.min_distance_to_target)} m; ` +
      `world: ${world.count} of ${world.cells_total} cells drawn (loaded and drawn in ${took} ms); track: ${episode.track.t.length} of ${episode.track.steps} steps` +
      (checks.length ? "; checks: " + checks.map((c) => `${c.name} ${c.passRate === 1 ? "passed" : "failed"}`).join(", ") : "");
  } catch (error) {
    info.textContent = `cannot show the episode: ${error.message}`;
  }
}

// Worlds by "scenario/seed": the promise of the JSON, so a prefetch and a view share one request.
const worlds = new Map();
const WORLDS_KEPT = 4;

function worldOf(scenario, seed) {
  const key = `${scenario}/${seed}`;
  if (!worlds.has(key)) {
    const request = api(`/worlds/${key}`);
    request.catch(() => worlds.delete(key));
    worlds.set(key, request);
    while (worlds.size > WORLDS_KEPT) worlds.delete(worlds.keys().next().value);
  }
  return worlds.get(key);
}

// The first episode's world is built on the server while the run's episodes fly.
function prefetchWorld(record) {
  const request = record && record.request;
  const seeds = request && request.seeds;
  if (Array.isArray(seeds) && seeds.length && state.prefetched !== record.run_id) {
    state.prefetched = record.run_id;
    worldOf(request.scenario || "terrain", seeds[0]).catch(() => {});
  }
}

let playing = null;

function setSlider(fraction) {
  const slider = $("#time-slider");
  slider.value = String(Math.round(fraction * Number(slider.max)));
  onSlider();
}

function onSlider() {
  if (!state.flight) return;
  const slider = $("#time-slider");
  const t = state.flight.setTime(Number(slider.value) / Number(slider.max));
  $("#time-label").textContent = typeof t === "number" ? `t = ${t.toFixed(2)} s` : "";
}

function togglePlay() {
  const button = $("#play");
  if (playing) {
    cancelAnimationFrame(playing);
    playing = null;
    button.textContent = "Play";
    return;
  }
  if (!state.flight) return;
  button.textContent = "Pause";
  const slider = $("#time-slider");
  if (Number(slider.value) >= Number(slider.max)) slider.value = "0";
  let last = performance.now();
  const duration = Math.max(2, Math.min(20, state.flight.duration() || 10));   // seconds of wall time per flight
  const tick = (now) => {
    const step = ((now - last) / 1000) / duration * Number(slider.max);
    last = now;
    const value = Math.min(Number(slider.max), Number(slider.value) + step);
    slider.value = String(value);
    onSlider();
    if (value >= Number(slider.max)) {
      playing = null;
      button.textContent = "Play";
      return;
    }
    playing = requestAnimationFrame(tick);
  };
  playing = requestAnimationFrame(tick);
}

// -- live marker from the agents stream of a rendered run

function startLive() {
  if (state.live || !state.wsPort) return;
  const runId = state.runId;
  const socket = new WebSocket(wsUrl(`/ws/render/${runId}/agents`, { format: "json" }));
  state.live = socket;
  socket.onmessage = (message) => {
    let frame;
    try { frame = JSON.parse(message.data); } catch (_) { return; }
    if (frame.type !== "frame" || !frame.data) return;
    const agent = Object.values(frame.data)[0];
    if (!agent || !Array.isArray(agent.pos)) return;
    state.liveFrames = (state.liveFrames || 0) + 1;
    document.body.dataset.liveFrames = String(state.liveFrames);
    if (!state.flight) state.flight = new FlightView($("#flight-canvas"), $("#flight-legend"));
    state.flight.setLive(agent.pos);
    const now = performance.now();
    if (!(now - (state.liveShown || 0) < 200)) {
      state.liveShown = now;
      $("#run-live").textContent = `live: agent at [${agent.pos.map((v) => v.toFixed(1)).join(", ")}]`;
    }
  };
  socket.onclose = () => { if (state.live === socket) state.live = null; };
  socket.onerror = () => {};
}

function stopLive() {
  if (state.live) {
    const socket = state.live;
    state.live = null;
    socket.onclose = null;
    socket.close();
  }
  if (state.flight) state.flight.setLive(null);
}

// ---------------------------------------------------------------- start-up

// For the browser's console (and the browser test): the page's state, read-only by convention.
window.bgenDashboard = { state };

async function main() {
  $("#run-form").addEventListener("submit", startRun);
  $("#run-form").elements.policy_file.addEventListener("change", loadPolicyFile);
  $("#run-close").addEventListener("click", closeRun);
  $("#run-terminate").addEventListener("click", () => state.runId && terminateRun(state.runId));
  $("#run-delete").addEventListener("click", () => state.runId && deleteRun(state.runId));
  $("#policy-iteration").addEventListener("change", () => { state.policyPinned = true; showPolicy(); });
  $("#diff-toggle").addEventListener("change", showPolicy);
  $("#episode-select").addEventListener("change", showEpisode);
  $("#colour-by").addEventListener("change", () => state.flight && state.flight.colourBy($("#colour-by").value));
  $("#time-slider").addEventListener("input", onSlider);
  $("#play").addEventListener("click", togglePlay);
  try {
    const health = await api("/health");
    state.wsPort = health.ws_port;
    $("#server-info").textContent = `version ${health.version}, backend ${health.backend}`;
  } catch (error) {
    $("#server-info").textContent = `server not answering: ${error.message}`;
  }
  await refreshRuns();
  setInterval(refreshRuns, RUNS_POLL_MS);
  setInterval(() => { if (state.runId && state.record && ACTIVE.has(state.record.status)) refreshRun(); }, RUN_POLL_MS);
  document.body.dataset.ready = "1";
}

main();
