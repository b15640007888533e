// The dashboard is just another REST client: token in sessionStorage, data via /api/v2.
// All data is inserted with textContent, never as HTML (query text is arbitrary SQL).
"use strict";
const $ = (id) => document.getElementById(id);
const KEY = "pganalytics.token";

async function api(path) {
  const resp = await fetch(path, { headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) } });
  const body = await resp.json().catch(() => ({ error: resp.statusText }));
  if (resp.status === 401) { forget(); }
  if (!resp.ok) { throw new Error(body.error || resp.statusText); }
  return body;
}

function show(connected) {
  $("token-form").hidden = connected;
  $("forget").hidden = !connected;
  $("main").hidden = !connected;
}

function forget() { sessionStorage.removeItem(KEY); show(false); }

const when = (iso) => new Date(iso).toLocaleString();
const fmt = (x) => (typeof x === "number" && !Number.isInteger(x) ? x.toFixed(2) : String(x ?? ""));

async function loadQueries() {
  const name = $("instance").value;
  const body = $("queries");
  body.replaceChildren();
  if (!name) { return; }
  const win = $("window");
  const params = new URLSearchParams({ instance: name, limit: $("limit").value, window: win.value });
  const rows = await api("/api/v2/queries?" + params);
  for (const r of rows) {
    const tr = body.insertRow();
    for (const v of [r.query, r.calls, r.total_exec_ms, r.mean_exec_ms, r.stddev_exec_ms, r.time_share_pct, r.rows, r.last_collected_at]) {
      tr.insertCell().textContent = fmt(v);
    }
  }
  // the window the store used (every row carries it); ranked by time spent in it
  const label = win.options[win.selectedIndex].text;
  $("window-shown").textContent = rows.length
    ? `Ranked by execution time from ${when(rows[0].window_from)} to ${when(rows[0].window_to)} (the last ${label}).`
    : "";
  $("status").textContent = rows.length ? "" : `No query ran on this instance in the last ${label}.`;
}

async function loadInstances() {
  const select = $("instance");
  select.replaceChildren(...(await api("/api/v2/instances")).map((i) => new Option(i.name, i.name)));
  show(true);
  await loadQueries();
}

function run(promise) { promise.catch((e) => { $("status").textContent = e.message; }); }

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("token").value.trim());
  $("token").value = "";
  $("status").textContent = "";
  run(loadInstances());
});
$("forget").addEventListener("click", forget);
$("instance").addEventListener("change", () => run(loadQueries()));
$("limit").addEventListener("change", () => run(loadQueries()));
$("window").addEventListener("change", () => run(loadQueries()));

if (sessionStorage.getItem(KEY)) { run(loadInstances()); } else { show(false); }
