"""The jobs dashboard: one static page and a small script, served by the API (no CDN, works offline).

The page holds no data: its script calls the same ``/v1`` endpoints as any client, with
the API key the user typed (kept in the tab's ``sessionStorage``; a ``#key=...`` URL
fragment, which browsers never send to the server, is accepted too). So the dashboard
shows exactly what the key's tenant may see, and nothing else.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>verticals · jobs</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/dashboard/app.css"></head>
<body data-auth="__AUTH__">
<header><a href="/dashboard" class="brand">verticals</a><span id="who"></span>
<button id="logout" hidden>forget key</button></header>
<main>
<form id="login" hidden><label>API key <input id="key" type="password" autocomplete="off"
 placeholder="vk_..."></label> <button>open</button><p class="hint">Create one with
 <code>verticals keys create --tenant TENANT --name NAME</code>. It stays in this tab only.</p></form>
<p id="error" class="error" hidden></p>
<section id="jobs" hidden><h1>Jobs</h1><p id="usage-today"></p>
<table><thead><tr><th>job</th><th>task</th><th>status</th>
<th>progress</th><th>items</th><th>created</th></tr></thead><tbody></tbody></table>
<p class="empty" hidden>No jobs yet. Submit one with POST /v1/jobs.</p>
<div id="fleet" hidden><h2>Workers</h2><p id="fleet-line"></p><table><thead><tr><th>worker</th><th>queues</th>
<th>running</th><th>models</th><th>heard</th></tr></thead><tbody></tbody></table></div></section>
<section id="job" hidden><p><a href="/dashboard">← all jobs</a></p><h1 id="job-title"></h1>
<div class="bar big"><div></div></div><p id="job-line"></p>
<p><button id="cancel">cancel</button> <button id="retry">retry failed</button></p>
<dl id="job-facts"></dl>
<h2>Results preview</h2><table id="preview"><thead><tr><th>#</th><th>status</th><th>output</th>
<th class="why" hidden>why (explanation)</th></tr></thead>
<tbody></tbody></table>
<h2>Failed items</h2><table id="failed"><thead><tr><th>#</th><th>error</th></tr></thead><tbody></tbody></table>
<p id="no-failed" class="empty" hidden>No failed items.</p></section>
</main><script src="/dashboard/app.js"></script></body></html>
"""

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{display:flex;gap:1em;align-items:center;padding:.7em 1.5em;background:#1d2330;color:#fff}
header .brand{color:#fff;font-weight:700;text-decoration:none;font-size:16px}
header #who{opacity:.8;flex:1}
main{max-width:1100px;margin:1.5em auto;padding:0 1.5em}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0001}
th,td{text-align:left;padding:.45em .7em;border-bottom:1px solid #e6e8ee;vertical-align:top}
th{font-weight:600;background:#eef0f4}
td code,td.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;word-break:break-all}
.bar{width:160px;height:10px;background:#e3e6ec;border-radius:5px;overflow:hidden;display:inline-block}
.bar.big{width:100%;height:16px;border-radius:8px}
.bar div{height:100%;background:#3b7ddd;transition:width .4s}
.status{padding:.1em .5em;border-radius:4px;font-size:12px;font-weight:600}
.s-succeeded{background:#dcf3e3;color:#17693a}.s-running{background:#dde9fb;color:#1f4f99}
.s-queued{background:#eceef2;color:#555}.s-partial{background:#fdf0d3;color:#8a5a00}
.s-failed{background:#fbe0e0;color:#9b1c1c}.s-cancelled{background:#eceef2;color:#777}.s-interrupted{background:#fdf0d3;color:#8a5a00}
.s-pending{background:#eceef2;color:#555}
.error{color:#9b1c1c;background:#fbe0e0;padding:.6em 1em;border-radius:4px}
.empty,.hint{color:#667}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{color:#667}dd{margin:0}
button{cursor:pointer}
mark{background:#ffc400;padding:0 .1em;border-radius:2px}.quote{margin:.3em 0 0;color:#445}
"""

SCRIPT = r"""
(function () {
  "use strict";
  const auth = document.body.dataset.auth === "true";
  const $ = (sel) => document.querySelector(sel);
  const params = new URLSearchParams(location.search);
  if (location.hash.startsWith("#key=")) {
    sessionStorage.setItem("verticals-key", decodeURIComponent(location.hash.slice(5)));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const key = () => sessionStorage.getItem("verticals-key");

  async function api(path, options) {
    const headers = {"Accept": "application/json"};
    if (auth && key()) headers["Authorization"] = "Bearer " + key();
    const response = await fetch(path, Object.assign({headers: headers}, options || {}));
    const body = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
    if (!response.ok) {
      const error = new Error((body && body.detail) || ("HTTP " + response.status));
      error.status = response.status;
      throw error;
    }
    return body;
  }
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function badge(status) { return el("span", status, "status s-" + status); }
  function bar(progress, big) {
    const outer = el("div", null, big ? "bar big" : "bar");
    const inner = el("div");
    inner.style.width = Math.round(progress * 1000) / 10 + "%";
    outer.appendChild(inner);
    return outer;
  }
  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value < 90) return value.toFixed(1) + " s";
    if (value < 5400) return (value / 60).toFixed(1) + " min";
    return (value / 3600).toFixed(1) + " h";
  }
  function rate(itemsPerS) {  // as the CLI: long items (tests, hints) read as the time one takes, not 0.0 items/s
    if (!itemsPerS) return "– items/s";
    if (itemsPerS >= 0.1) return itemsPerS.toFixed(1) + " items/s";
    return seconds(1 / itemsPerS) + "/item";
  }
  function showError(error) {
    const box = $("#error");
    if (!error) { box.hidden = true; return; }
    box.textContent = error.message;
    box.hidden = false;
    if (error.status === 401) { sessionStorage.removeItem("verticals-key"); showLogin(); }
  }
  function showLogin() {
    $("#login").hidden = false; $("#jobs").hidden = true; $("#job").hidden = true;
  }
  const active = (s) => s === "queued" || s === "running";
  // what the running items report of themselves (RunContext.progress): share done and the task's note
  function runningLine(running) {
    if (!running) return "";
    const share = running.items ? " · running " + running.items + " item(s), "
      + Math.round(running.done / running.items * 100) + "% done" : "";
    return share + (running.note ? " · " + running.note : "");
  }

  // <segments> (tests/test_explain.py runs this function in node)
  // The text cut into [piece, weight] segments, weight null outside the evidence: the 5 strongest evidence
  // items with a positive weight and a span in `field`, overlaps dropped (the stronger kept), in text order.
  function evidenceSegments(text, evidence, field) {
    const spans = (evidence || []).filter((e) => Number.isInteger(e.start) && Number.isInteger(e.end)
      && e.weight > 0 && (!e.field || e.field === field) && e.end <= text.length && e.start < e.end)
      .sort((a, b) => b.weight - a.weight);
    const chosen = [];
    for (const e of spans) {
      if (chosen.length >= 5) break;
      if (chosen.every((c) => e.end <= c.start || c.end <= e.start)) chosen.push(e);
    }
    chosen.sort((a, b) => a.start - b.start);
    const out = [];
    let at = 0;
    for (const e of chosen) {
      if (e.start > at) out.push([text.slice(at, e.start), null]);
      out.push([text.slice(e.start, e.end), e.weight]);
      at = e.end;
    }
    if (at < text.length) out.push([text.slice(at), null]);
    return out;
  }
  // </segments>
  function whyCell(item, textField) {
    const td = el("td", null, "why");
    if (!item.explanation) return td;
    td.appendChild(el("div", item.explanation.summary));
    const text = textField && item.input ? item.input[textField] : null;
    if (typeof text === "string") {
      const quote = el("p", null, "quote");
      const segments = evidenceSegments(text, item.explanation.evidence, textField);
      const strongest = Math.max(...segments.map(([, weight]) => weight || 0));
      for (const [piece, weight] of segments) {
        if (weight === null) { quote.appendChild(document.createTextNode(piece)); continue; }
        const mark = el("mark", piece);
        mark.title = "weight " + Number(weight.toPrecision(3));
        // the stronger the evidence, the deeper its colour (the strongest in full), so the marks rank
        mark.style.backgroundColor = "rgba(255, 196, 0, " + (0.2 + 0.8 * weight / strongest).toFixed(2) + ")";
        quote.appendChild(mark);
      }
      td.appendChild(quote);
    }
    return td;
  }

  async function renderJobs() {
    const data = await api("/v1/jobs?limit=50");
    const body = $("#jobs tbody");
    body.replaceChildren();
    for (const job of data.jobs) {
      const row = el("tr");
      row.dataset.job = job.id;
      const link = el("a", job.id.slice(0, 12));
      link.href = "/dashboard?job=" + encodeURIComponent(job.id);
      const first = el("td", null, "mono"); first.appendChild(link); row.appendChild(first);
      row.appendChild(el("td", job.task));
      const status = el("td"); status.appendChild(badge(job.status)); row.appendChild(status);
      const progress = el("td"); progress.appendChild(bar(job.progress));
      progress.appendChild(el("span", " " + Math.round(job.progress * 100) + "%")); row.appendChild(progress);
      if (job.item_progress && job.item_progress.note) progress.title = job.item_progress.note;
      row.appendChild(el("td", job.done + " / " + job.total));
      row.appendChild(el("td", (job.created_at || "").slice(0, 19).replace("T", " ")));
      body.appendChild(row);
    }
    $("#jobs .empty").hidden = data.jobs.length > 0;
    const usage = await api("/v1/usage?since=0d").catch(() => null);  // what this tenant's jobs used today (UTC)
    $("#usage-today").textContent = usage ? "Today (UTC): " + usageLine(usage.total, usage.currency) : "";
    await renderFleet();
    $("#jobs").hidden = false;
    return data.jobs.some((job) => active(job.status));
  }

  function fillTable(selector, rows, cells) {
    const body = $(selector + " tbody");
    body.replaceChildren();
    for (const item of rows) {
      const row = el("tr");
      for (const cell of cells(item)) row.appendChild(cell);
      body.appendChild(row);
    }
  }

  // "3,000 items · 41.0 s model time on cpu · 96,412 tokens · 0.0308 USD" (the CLI's summary line)
  // <usage-line>
  function usageLine(usage, currency) {
    if (!usage) return "–";
    const secs = (s) => s >= 10 ? s.toFixed(1) : s.toFixed(2);
    const devices = [...new Set((usage.models || []).map((m) => m.device))].sort();
    let line = usage.items.toLocaleString("en") + " item" + (usage.items === 1 ? "" : "s");
    line += devices.length ? " · " + secs(usage.model_s) + " s model time on " + devices.join(", ")
      : " · no model time";
    if (devices.length && usage.tokens) line += " · " + usage.tokens.toLocaleString("en") + " tokens";
    const unit = currency || usage.currency;
    if (usage.cost !== null && usage.cost !== undefined) {
      line += " · " + usage.cost.toFixed(4) + (unit ? " " + unit : "");
    }
    return line;
  }
  // </usage-line>

  // the workers (Celery): queues, models, busy or idle; the chunk shown only when it is one of your jobs
  async function renderFleet() {
    const fleet = await api("/v1/workers").catch(() => null);
    $("#fleet").hidden = !fleet || fleet.executor !== "celery";
    if ($("#fleet").hidden) return;
    const waiting = Object.entries(fleet.queues).map(([q, n]) => q + " " + (n === null ? "?" : n)).join(", ");
    const busy = fleet.workers.filter((w) => w.busy).length;
    $("#fleet-line").textContent = fleet.workers.length + " worker process(es), " + busy + " busy · waiting in "
      + "the queues: " + (waiting || "–");
    const body = $("#fleet tbody");
    body.replaceChildren();
    for (const w of fleet.workers) {
      const row = el("tr");
      row.appendChild(el("td", "#" + w.worker));
      row.appendChild(el("td", w.queues.join(", ") || "–"));
      const running = el("td");
      if (w.chunk) {
        const link = el("a", w.chunk.job_id.slice(0, 12));
        link.href = "/dashboard?job=" + encodeURIComponent(w.chunk.job_id);
        running.appendChild(link);
        running.appendChild(el("span", " items " + w.chunk.start + "–" + (w.chunk.end - 1) + " for "
          + Math.round(w.chunk.running_s) + " s"));
      } else {
        running.textContent = w.busy ? "busy (another tenant's job)" : "idle";
      }
      row.appendChild(running);
      row.appendChild(el("td", w.models.map((m) => m.model + " on " + m.device).join(", ") || "none loaded"));
      row.appendChild(el("td", w.heard_s.toFixed(1) + " s ago"));
      body.appendChild(row);
    }
  }

  async function renderJob(id) {
    const job = await api("/v1/jobs/" + encodeURIComponent(id));
    $("#job-title").replaceChildren(el("span", job.task + " · "), el("code", job.id), el("span", " "),
      badge(job.status));
    $("#job .bar.big div").style.width = Math.round(job.progress * 1000) / 10 + "%";
    $("#job-line").textContent = job.done + " of " + job.total + " items done (" + Math.round(job.progress * 100)
      + "%) · " + rate(job.items_per_s)
      + (active(job.status) ? " · ETA " + seconds(job.eta_s) : " · took " + seconds(job.elapsed_s))
      + runningLine(job.item_progress);
    const facts = $("#job-facts");
    facts.replaceChildren();
    const counts = Object.entries(job.counts).map(([k, v]) => k + ": " + v).join(", ") || "–";
    for (const [name, value] of [["counts", counts], ["usage", usageLine(job.usage, null)],
        ["params", JSON.stringify(job.params)],
        ["created", job.created_at], ["started", job.started_at], ["finished", job.finished_at],
        ["plugin", (job.plugin || "") + " " + (job.plugin_version || "")]]) {
      facts.appendChild(el("dt", name)); facts.appendChild(el("dd", value || "–"));
    }
    $("#cancel").hidden = !active(job.status);
    $("#retry").hidden = active(job.status) || !(job.counts.failed > 0);
    // a job with explanations: a "why" column, with the text and its evidence marked (never a sensitive task's)
    const explained = Boolean(job.options && job.options.explain);
    let textField = null;
    if (explained) {
      const task = await api("/v1/tasks/" + encodeURIComponent(job.task)).catch(() => null);
      textField = task && !task.sensitive ? task.text_field : null;
    }
    const preview = await api("/v1/jobs/" + encodeURIComponent(id) + "/results?limit=20"
      + (textField ? "&include_inputs=true" : ""));
    $("#preview th.why").hidden = !explained;
    fillTable("#preview", preview.items, (item) => [el("td", item.seq), (() => {
      const td = el("td"); td.appendChild(badge(item.status)); return td; })(),
      el("td", item.output ? JSON.stringify(item.output).slice(0, 300) : (item.error || ""), "mono"),
      ...(explained ? [whyCell(item, textField)] : [])]);
    const failed = await api("/v1/jobs/" + encodeURIComponent(id) + "/results?status=failed&limit=100");
    fillTable("#failed", failed.items, (item) => [el("td", item.seq), el("td", item.error)]);
    $("#failed").hidden = failed.items.length === 0;
    $("#no-failed").hidden = failed.items.length > 0;
    $("#job").hidden = false;
    return active(job.status);
  }

  async function tick() {
    let again = true;
    try {
      again = params.get("job") ? await renderJob(params.get("job")) : await renderJobs();
      showError(null);
    } catch (error) {
      showError(error);
      if (error.status === 401) return;
    }
    setTimeout(tick, again ? 1000 : 4000);
  }

  async function start() {
    if (auth && !key()) { showLogin(); return; }
    $("#login").hidden = true;
    try {
      const me = await api("/v1/me");
      $("#who").textContent = "tenant " + me.tenant + (me.auth ? "" : " (authentication disabled)");
      $("#logout").hidden = !me.auth;
    } catch (error) { showError(error); if (error.status === 401) return; }
    tick();
  }

  $("#login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("verticals-key", $("#key").value.trim());
    start();
  });
  $("#logout").addEventListener("click", () => { sessionStorage.removeItem("verticals-key"); location.reload(); });
  const jobPath = () => "/v1/jobs/" + encodeURIComponent(params.get("job"));
  $("#cancel").addEventListener("click", () => api(jobPath() + "/cancel", {method: "POST"}).catch(showError));
  $("#retry").addEventListener("click", () => api(jobPath() + "/retry", {method: "POST"}).then(() => tick())
    .catch(showError));
  start();
})();
"""


def add_dashboard(app: FastAPI, auth: bool) -> None:
    page = PAGE.replace("__AUTH__", "true" if auth else "false")
    security = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

    @app.get("/dashboard", include_in_schema=False, response_class=HTMLResponse)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(page, headers=security)

    @app.get("/dashboard/app.js", include_in_schema=False)
    def dashboard_js() -> Response:
        return Response(SCRIPT, media_type="text/javascript", headers=security)

    @app.get("/dashboard/app.css", include_in_schema=False)
    def dashboard_css() -> Response:
        return Response(CSS, media_type="text/css", headers=security)
