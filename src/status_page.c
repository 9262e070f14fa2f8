/*
 * status_page.c — see status_page.h.
 *
 * The stats document (GET /stats.json):
 *   {"time_ms": wall clock, "generation": N, "window_s": F,
 *    "client_connections": N, "access_log_dropped": N,
 *    "unrouted": {"requests": N},
 *    "totals": {"requests": N, "rps": F, "error_rate": F},
 *    "versions": [{"name": S, "split": percent, "share": 0..1, "rps": F,
 *                  "error_rate": 0..1, "p50_ms": F|null, "p99_ms": F|null,
 *                  "requests": N, "errors": N (5xx), "no_endpoint": N,
 *                  "endpoints": [{"address": S, "healthy": B, "draining": B,
 *                                 "ejected": B, "weight": N, "inflight": N,
 *                                 "conns": N, "requests": N, "errors": N,
 *                                 "connect_failures": N, "ejections": N}]}],
 *    "rollout": {...}, "guard": {...},   (the `rollout` and `guard` answers)
 *    "mirror": mirror.h's mirror_render() (settings, counts, differences)}
 * Windowed fields (share, rps, error_rate, p50/p99) cover the last
 * window_s seconds; requests/errors/... are totals since start.
 *
 * The page is fixed text (page_head + inlined stats + page_tail); its
 * script renders with textContent only, never innerHTML, so no value can
 * inject markup. The inlined JSON has "</" written "<\/" so it cannot close
 * its <script> element.
 */
#include "status_page.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "access.h"
#include "client.h"
#include "metrics.h"
#include "release.h"
#include "mirror.h"
#include "snapshot.h"
#include "util.h"

/* The page, around its inlined stats (see the design comment). */
static const char *const page_head[] = {
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>weir status</title>\n"
    "<link rel=\"icon\" href=\"data:,\">\n"
    "<style>\n"
    ":root { --bg:#f4f5f7; --fg:#1d2330; --muted:#677086; --line:#d9dde5; --head:#262f40;\n"
    "  --up:#2e9e58; --down:#d64545; --drain:#e59a1a; --eject:#a63fc4; }\n"
    "* { box-sizing: border-box; }\n"
    "body { margin:0; font:13px/1.4 -apple-system, \"Segoe UI\", Roboto, \"DejaVu Sans\", Arial, sans-serif;\n"
    "  background:var(--bg); color:var(--fg); }\n"
    "header { background:var(--head); color:#fff; padding:10px 18px; display:flex; align-items:baseline; gap:18px; flex-wrap:wrap; }\n"
    "header h1 { font-size:18px; margin:0; letter-spacing:.5px; }\n"
    "header h1 span { color:#8fb8ff; }\n"
    "header .meta { color:#c4cad6; font-size:12px; }\n"
    "#live { margin-left:auto; font-size:12px; color:#c4cad6; }\n"
    "#live i { display:inline-block; width:9px; height:9px; border-radius:50%; background:var(--up); margin-right:6px; }\n"
    "#live.stale i { background:var(--down); }\n"
    "main { padding:14px 18px; }\n"
    "section { background:#fff; border:1px solid var(--line); border-radius:6px; margin-bottom:14px; overflow-x:auto; }\n"
    "section h2 { font-size:13px; margin:0; padding:8px 12px; border-bottom:1px solid var(--line);\n"
    "  background:#eef0f4; text-transform:uppercase; letter-spacing:.6px; color:#3a4358; }\n"
    "table { border-collapse:collapse; width:100%; }\n"
    "th, td { padding:6px 8px; border-bottom:1px solid #eceef2; text-align:right; white-space:nowrap; }\n"
    "th { font-size:11px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.4px; }\n"
    "th:first-child, td:first-child, td.l, th.l { text-align:left; }\n"
    "tr:last-child td { border-bottom:none; }\n"
    "td.num { font-variant-numeric: tabular-nums; }\n"
    ".vname { font-weight:700; }\n"
    ".sw { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:7px; vertical-align:-1px; }\n"
    ".bar { position:relative; display:inline-block; width:90px; height:12px; background:#e8ebf0; border-radius:3px; vertical-align:middle; margin-left:8px; overflow:hidden; }\n"
    ".bar b { position:absolute; left:0; top:0; bottom:0; border-radius:3px; }\n"
    ".bar u { position:absolute; top:-2px; bottom:-2px; width:2px; background:#1d2330; }\n"
    ".err { color:var(--down); font-weight:600; }\n"
    ".ok { color:var(--up); }\n"
    ".st { display:inline-block; min-width:62px; text-align:center; padding:1px 7px; border-radius:10px; color:#fff; font-size:11px; font-weight:700; letter-spacing:.4px; }\n"
    ".st.up { background:var(--up); } .st.down { background:var(--down); }\n"
    ".st.drain { background:var(--drain); } .st.eject { background:var(--eject); }\n"
    ".stackrow { display:flex; align-items:center; margin:8px 12px; }\n"
    ".stackrow .sl { width:150px; color:var(--muted); font-size:11px; font-weight:600; text-transform:uppercase; letter-spacing:.4px; }\n"
    ".stack { flex:1; display:flex; height:20px; border-radius:4px; overflow:hidden; background:#e8ebf0; }\n",
    ".stack div { color:#fff; font-size:11px; font-weight:700; line-height:20px; text-align:center; overflow:hidden; white-space:nowrap; }\n"
    "#stackc div { opacity:.6; }\n"
    "canvas { display:block; width:100%; height:120px; }\n"
    "#error { display:none; background:#fde8e8; color:#8a1f1f; border:1px solid #f3b4b4; border-radius:6px; padding:8px 12px; margin-bottom:14px; }\n"
    "footer { color:var(--muted); font-size:11px; padding:0 18px 16px; }\n"
    "</style>\n"
    "</head>\n"
    "<body>\n"
    "<header>\n"
    "  <h1>weir <span>status</span></h1>\n"
    "  <div class=\"meta\" id=\"meta\">loading&hellip;</div>\n"
    "  <div id=\"live\"><i></i><span id=\"updated\">&ndash;</span></div>\n"
    "</header>\n"
    "<main>\n"
    "  <div id=\"error\"></div>\n"
    "  <section>\n"
    "    <h2>Versions</h2>\n"
    "    <div class=\"stackrow\"><span class=\"sl\">achieved (<span class=\"win\">10</span> s)</span><div class=\"stack\" id=\"stack\"></div></div>\n"
    "    <div class=\"stackrow\"><span class=\"sl\">configured split</span><div class=\"stack\" id=\"stackc\"></div></div>\n"
    "    <table>\n"
    "      <thead><tr><th class=\"l\">Version</th><th>Configured split</th><th>Achieved share</th><th>Req/s</th>\n"
    "        <th>Error rate</th><th>p50</th><th>p99</th><th>Requests</th><th>5xx</th><th>No endpoint</th><th>Up</th></tr></thead>\n"
    "      <tbody id=\"versions\"></tbody>\n"
    "    </table>\n"
    "  </section>\n"
    "  <section>\n"
    "    <h2>Rollout</h2>\n"
    "    <table>\n"
    "      <thead><tr><th class=\"l\">Version</th><th class=\"l\">State</th><th>Step</th><th>Percent</th>\n"
    "        <th>Time on step</th><th>Hold</th><th class=\"l\">Next</th><th class=\"l\">Reason</th></tr></thead>\n"
    "      <tbody id=\"rollout\"></tbody>\n"
    "    </table>\n"
    "  </section>\n"
    "  <section>\n"
    "    <h2>Guard <span id=\"guardbase\" class=\"sl\"></span></h2>\n"
    "    <table>\n"
    "      <thead><tr><th class=\"l\">Version</th><th class=\"l\">Verdict</th><th>Requests</th><th>Error rate</th>\n"
    "        <th>Latency</th><th>Trips</th><th class=\"l\">Why</th></tr></thead>\n"
    "      <tbody id=\"guard\"></tbody>\n"
    "    </table>\n"
    "  </section>\n"
    "  <section>\n"
    "    <h2>Requests/s per version (since this page was opened)</h2>\n"
    "    <canvas id=\"chart\" width=\"1160\" height=\"120\"></canvas>\n"
    "  </section>\n"
    "  <section>\n"
    "    <h2>Endpoints</h2>\n"
    "    <table>\n"
    "      <thead><tr><th class=\"l\">Version</th><th class=\"l\">Endpoint</th><th class=\"l\">State</th><th>Weight</th>\n"
    "        <th>In flight</th><th>Conns</th><th>Requests</th><th>5xx</th><th>Connect failures</th><th>Ejections</th></tr></thead>\n"
    "      <tbody id=\"endpoints\"></tbody>\n"
    "    </table>\n"
    "  </section>\n"
    "  <section>\n"
    "    <h2>Mirror (dark launch)</h2>\n"
    "    <div class=\"stackrow\" id=\"mirrorinfo\">off</div>\n"
    "    <table>\n"
    "      <thead><tr><th class=\"l\">Shadow</th><th>Match</th><th>Differ</th><th>Error</th>\n"
    "        <th>Dropped</th><th>Differ rate</th></tr></thead>\n"
    "      <tbody id=\"mirror\"></tbody>\n"
    "    </table>\n"
    "    <table>\n"
    "      <thead><tr><th class=\"l\">Last differences</th><th class=\"l\">Request</th>\n"
    "        <th class=\"l\">What differs</th><th>Status</th></tr></thead>\n"
    "      <tbody id=\"mirrordiffs\"></tbody>\n"
    "    </table>\n"
    "  </section>\n"
    "</main>\n"
    "<footer>Rates, shares, error rate and percentiles cover the last <span class=\"win\">10</span> s; totals count since weir started.\n"
    "Refreshes every 2 s from <a href=\"stats.json\">stats.json</a> &middot; <a href=\"metrics\">metrics</a> &middot; <a href=\"status\">status</a></footer>\n"
    "<script id=\"initial\" type=\"application/json\">",
};

static const char *const page_tail[] = {
    "</script>\n"
    "<script>\n"
    "\"use strict\";\n"
    "var COLORS = [\"#3b7ddd\", \"#e8702a\", \"#2e9e58\", \"#a63fc4\", \"#d64545\", \"#1ba3a3\", \"#b58a00\", \"#6b6bd6\"];\n"
    "var samples = [], lastOk = 0;\n"
    "function el(tag, cls, text) {\n"
    "  var e = document.createElement(tag);\n"
    "  if (cls) e.className = cls;\n"
    "  if (text !== undefined) e.textContent = text;\n"
    "  return e;\n"
    "}\n"
    "function td(row, text, cls) { var c = el(\"td\", cls, text); row.appendChild(c); return c; }\n"
    "function pct(x, d) { return (x * 100).toFixed(d === undefined ? 1 : d) + \" %\"; }\n"
    "function ms(x) { return x === null || x === undefined ? \"\\u2013\" : (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)) + \" ms\"; }\n"
    "function num(x) { return Number(x).toLocaleString(\"en-US\"); }\n"
    "function colorOf(i) { return COLORS[i % COLORS.length]; }\n"
    "function bar(frac, color, mark) {\n"
    "  var b = el(\"span\", \"bar\"), f = el(\"b\");\n"
    "  f.style.width = Math.max(0, Math.min(100, frac * 100)) + \"%\";\n"
    "  f.style.background = color;\n"
    "  b.appendChild(f);\n"
    "  if (mark !== undefined) { var u = el(\"u\"); u.style.left = \"calc(\" + Math.min(100, mark * 100) + \"% - 1px)\"; b.appendChild(u); }\n"
    "  return b;\n"
    "}\n"
    "function stack(id, parts) {\n"
    "  var s = document.getElementById(id);\n"
    "  s.textContent = \"\";\n"
    "  if (!parts.some(function (p) { return p.frac > 0; })) {\n"
    "    var none = el(\"div\", null, \"no requests in the window\");\n"
    "    none.style.width = \"100%\"; none.style.color = \"#677086\"; none.style.fontWeight = \"400\";\n"
    "    s.appendChild(none);\n"
    "    return;\n"
    "  }\n"
    "  parts.forEach(function (p) {\n"
    "    if (p.frac <= 0) return;\n"
    "    var d = el(\"div\", null, p.frac >= 0.06 ? p.label : \"\");\n"
    "    d.style.width = (p.frac * 100) + \"%\";\n"
    "    d.style.background = p.color;\n"
    "    d.title = p.label;\n"
    "    s.appendChild(d);\n"
    "  });\n"
    "}\n"
    "function render(d) {\n"
    "  var wins = document.querySelectorAll(\".win\");\n"
    "  for (var i = 0; i < wins.length; i++) wins[i].textContent = Math.round(d.window_s || 10);\n"
    "  document.getElementById(\"meta\").textContent = \"generation \" + d.generation + \" \\u00b7 \" +\n"
    "    num(d.client_connections) + \" client connections \\u00b7 \" + d.totals.rps.toFixed(1) + \" req/s \\u00b7 \" +\n"
    "    num(d.totals.requests) + \" requests since start\";\n"
    "  var tb = document.getElementById(\"versions\");\n"
    "  tb.textContent = \"\";\n"
    "  var top = [], bottom = [];\n"
    "  d.versions.forEach(function (v, i) {\n"
    "    var tr = el(\"tr\"), c = colorOf(i);\n"
    "    var name = td(tr, \"\", \"l vname\"), sw = el(\"span\", \"sw\");\n"
    "    sw.style.background = c; name.appendChild(sw); name.appendChild(document.createTextNode(v.name));\n"
    "    var sp = td(tr, v.split + \" %\", \"num\"); sp.appendChild(bar(v.split / 100, c));\n"
    "    var sh = td(tr, pct(v.share), \"num\"); sh.appendChild(bar(v.share, c, v.split / 100));\n"
    "    td(tr, v.rps.toFixed(1), \"num\");\n"
    "    td(tr, pct(v.error_rate, 2), \"num \" + (v.error_rate > 0 ? \"err\" : \"ok\"));\n"
    "    td(tr, ms(v.p50_ms), \"num\");\n"
    "    td(tr, ms(v.p99_ms), \"num\");\n"
    "    td(tr, num(v.requests), \"num\");\n"
    "    td(tr, num(v.errors), \"num\" + (v.errors ? \" err\" : \"\"));\n"
    "    td(tr, num(v.no_endpoint), \"num\" + (v.no_endpoint ? \" err\" : \"\"));\n",
    "    var up = v.endpoints.filter(function (e) { return e.healthy && !e.draining; }).length;\n"
    "    td(tr, up + \" / \" + v.endpoints.length, \"num\" + (up ? \"\" : \" err\"));\n"
    "    tb.appendChild(tr);\n"
    "    top.push({ frac: v.share, color: c, label: v.name + \" \" + pct(v.share) });\n"
    "    bottom.push({ frac: v.split / 100, color: c, label: v.name + \" \" + v.split + \" %\" });\n"
    "  });\n"
    "  stack(\"stack\", top);\n"
    "  stack(\"stackc\", bottom);\n"
    "  var eb = document.getElementById(\"endpoints\");\n"
    "  eb.textContent = \"\";\n"
    "  d.versions.forEach(function (v, i) {\n"
    "    v.endpoints.forEach(function (e) {\n"
    "      var tr = el(\"tr\");\n"
    "      var name = td(tr, \"\", \"l\"), sw = el(\"span\", \"sw\");\n"
    "      sw.style.background = colorOf(i); name.appendChild(sw); name.appendChild(document.createTextNode(v.name));\n"
    "      td(tr, e.address, \"l\");\n"
    "      var st = e.ejected ? [\"eject\", \"EJECTED\"] : !e.healthy ? [\"down\", \"DOWN\"] : e.draining ? [\"drain\", \"DRAIN\"] : [\"up\", \"UP\"];\n"
    "      td(tr, \"\", \"l\").appendChild(el(\"span\", \"st \" + st[0], st[1]));\n"
    "      td(tr, String(e.weight), \"num\");\n"
    "      td(tr, num(e.inflight), \"num\");\n"
    "      td(tr, num(e.conns), \"num\");\n"
    "      td(tr, num(e.requests), \"num\");\n"
    "      td(tr, num(e.errors), \"num\" + (e.errors ? \" err\" : \"\"));\n"
    "      td(tr, num(e.connect_failures), \"num\" + (e.connect_failures ? \" err\" : \"\"));\n"
    "      td(tr, num(e.ejections), \"num\");\n"
    "      eb.appendChild(tr);\n"
    "    });\n"
    "  });\n"
    "  var ro = d.rollout, rb = document.getElementById(\"rollout\");\n"
    "  rb.textContent = \"\";\n"
    "  if (ro) {\n"
    "    var tr = el(\"tr\");\n"
    "    td(tr, ro.version || \"\\u2013\", \"l\"); td(tr, ro.state, \"l\" + (ro.state === \"aborted\" ? \" err\" : \"\"));\n"
    "    td(tr, ro.state === \"none\" ? \"\\u2013\" : ro.step + \" of \" + ro.steps.length, \"num\");\n"
    "    td(tr, ro.percent + \" %\", \"num\"); td(tr, Math.round(ro.time_on_step_s) + \" s\", \"num\");\n"
    "    td(tr, ro.hold_s + \" s\", \"num\"); td(tr, ro.next, \"l\"); td(tr, ro.reason || \"\", \"l\");\n"
    "    rb.appendChild(tr);\n"
    "  }\n"
    "  var g = d.guard, gb = document.getElementById(\"guard\");\n"
    "  gb.textContent = \"\";\n"
    "  document.getElementById(\"guardbase\").textContent = !g || !g.enabled ? \"(not configured)\" : \"baseline \" + g.baseline;\n"
    "  if (g && g.enabled) Object.keys(g.versions).forEach(function (n) {\n"
    "    var v = g.versions[n], tr = el(\"tr\");\n"
    "    td(tr, n, \"l\"); td(tr, v.verdict, \"l\" + (v.verdict === \"fail\" ? \" err\" : \"\"));\n"
    "    td(tr, num(v.requests) + \" vs \" + num(v.baseline_requests), \"num\");\n"
    "    td(tr, pct(v.error_rate || 0, 2) + \" vs \" + pct(v.baseline_error_rate || 0, 2), \"num\");\n"
    "    td(tr, ms(v.latency_ms) + \" vs \" + ms(v.baseline_latency_ms), \"num\");\n"
    "    td(tr, num(v.trips), \"num\"); td(tr, v.reason, \"l\");\n"
    "    gb.appendChild(tr);\n"
    "  });\n"
    "  renderMirror(d.mirror);\n"
    "  samples.push({ t: d.time_ms, v: d.versions.map(function (v) { return { name: v.name, rps: v.rps }; }) });\n"
    "  if (samples.length > 150) samples.shift();\n"
    "  chart();\n"
    "}\n"
    "function renderMirror(m) {\n"
    "  if (!m) return;\n"
    "  document.getElementById(\"mirrorinfo\").textContent = m.enabled ?\n"
    "    m.percent + \" % of the other versions' requests copied to \" + m.version + \" \\u00b7 in flight \" + m.in_flight : \"off\";\n"
    "  var tb = document.getElementById(\"mirror\");\n"
    "  tb.textContent = \"\";\n"
    "  Object.keys(m.counts).forEach(function (name) {\n"
    "    var c = m.counts[name], r = document.createElement(\"tr\");\n"
    "    td(r, name, \"l vname\");\n"
    "    td(r, num(c.match), \"num\"); td(r, num(c.differ), \"num\" + (c.differ ? \" err\" : \"\"));\n"
    "    td(r, num(c.error), \"num\"); td(r, num(c.dropped), \"num\"); td(r, pct(c.differ_rate, 2), \"num\");\n"
    "    tb.appendChild(r);\n"
    "  });\n"
    "  var db = document.getElementById(\"mirrordiffs\");\n"
    "  db.textContent = \"\";\n"
    "  m.differences.slice(0, 10).forEach(function (x) {\n"
    "    var r = document.createElement(\"tr\");\n"
    "    td(r, x.time, \"l\"); td(r, x.method + \" \" + x.target, \"l\");\n"
    "    td(r, x.differs.join(\", \"), \"l err\");\n"
    "    td(r, x.primary.status + \" vs \" + x.shadow.status, \"num\");\n"
    "    db.appendChild(r);\n"
    "  });\n"
    "}\n"
    "function chart() {\n"
    "  var cv = document.getElementById(\"chart\"), g = cv.getContext && cv.getContext(\"2d\");\n"
    "  if (!g) return;\n"
    "  var w = cv.width = cv.clientWidth || 1160, h = cv.height = 120, pad = 20;\n"
    "  g.clearRect(0, 0, w, h);\n"
    "  var names = {}, max = 1;\n"
    "  samples.forEach(function (p) { p.v.forEach(function (v, i) { names[v.name] = i; if (v.rps > max) max = v.rps; }); });\n"
    "  var mag = Math.pow(10, Math.floor(Math.log(max) / Math.LN10)), steps = [1, 2, 2.5, 5, 10];\n"
    "  for (var si = 0; si < steps.length; si++) if (steps[si] * mag >= max) { max = steps[si] * mag; break; }\n"
    "  g.strokeStyle = \"#e3e6ec\"; g.fillStyle = \"#677086\"; g.font = \"10px sans-serif\";\n"
    "  for (var k = 0; k <= 2; k++) {\n"
    "    var y = pad / 2 + (h - pad) * k / 2;\n"
    "    g.beginPath(); g.moveTo(40, y); g.lineTo(w, y); g.stroke();\n"
    "    var lab = max * (1 - k / 2);\n"
    "    g.fillText(lab >= 10 || lab === 0 ? lab.toFixed(0) : lab.toFixed(1), 4, y + 3);\n"
    "  }\n"
    "  Object.keys(names).forEach(function (n) {\n"
    "    g.strokeStyle = colorOf(names[n]); g.lineWidth = 2; g.beginPath();\n"
    "    var started = false;\n"
    "    samples.forEach(function (p, x) {\n"
    "      var v = p.v.filter(function (q) { return q.name === n; })[0];\n"
    "      if (!v) return;\n"
    "      var px = 40 + (w - 44) * (samples.length < 2 ? 1 : x / (samples.length - 1));\n"
    "      var py = pad / 2 + (h - pad) * (1 - v.rps / max);\n"
    "      if (started) g.lineTo(px, py); else { g.moveTo(px, py); started = true; }\n",
    "      if (samples.length === 1) { g.fillStyle = colorOf(names[n]); g.fillRect(px - 3, py - 3, 6, 6); }\n"
    "    });\n"
    "    g.stroke();\n"
    "  });\n"
    "}\n"
    "function tick() {\n"
    "  var ctl = window.AbortController ? new AbortController() : null;\n"
    "  var timer = setTimeout(function () { if (ctl) ctl.abort(); }, 1900);\n"
    "  fetch(\"stats.json\", { cache: \"no-store\", signal: ctl ? ctl.signal : undefined })\n"
    "    .then(function (r) { if (!r.ok) throw new Error(\"HTTP \" + r.status); return r.json(); })\n"
    "    .then(function (d) { lastOk = Date.now(); document.getElementById(\"error\").style.display = \"none\"; render(d); updated(); })\n"
    "    .catch(function (e) { var b = document.getElementById(\"error\"); b.textContent = \"cannot refresh: \" + e.message; b.style.display = \"block\"; updated(); })\n"
    "    .then(function () { clearTimeout(timer); });\n"
    "}\n"
    "function updated() {\n"
    "  var live = document.getElementById(\"live\"), stale = Date.now() - lastOk > 5000;\n"
    "  live.className = stale ? \"stale\" : \"\";\n"
    "  document.getElementById(\"updated\").textContent = (stale ? \"stale \\u00b7 last update \" : \"live \\u00b7 updated \") +\n"
    "    (lastOk ? new Date(lastOk).toLocaleTimeString() : \"never\");\n"
    "}\n"
    "try {\n"
    "  var init = JSON.parse(document.getElementById(\"initial\").textContent);\n"
    "  lastOk = Date.now(); render(init); updated();\n"
    "} catch (e) { tick(); }\n"
    "setInterval(tick, 2000);\n"
    "</script>\n"
    "</body>\n"
    "</html>\n",
};

/* Index of vs in the metrics registry, or -1. */
static long registry_index(const struct vstats *vs)
{
    size_t n = metrics_vstats_count();
    for (size_t i = 0; vs && i < n; i++)
        if (metrics_vstats_at(i) == vs)
            return (long)i;
    return -1;
}

static void put_ms_or_null(struct json_buf *b, double us)
{
    if (us < 0)
        json_buf_puts(b, "null");
    else
        json_buf_printf(b, "%.3f", us / 1000.0);
}

static void render_endpoint(struct json_buf *b, const struct snap_endpoint *se,
                            uint64_t now_ms)
{
    const struct endpoint *ep = se->ep;
    uint64_t reqs = 0;
    for (int c = 0; c < STATUS_CLASSES; c++)
        reqs += endpoint_requests(ep, c);
    bool ejected = atomic_load_explicit(&ep->ejected_until_ms, memory_order_relaxed) > now_ms;
    json_buf_puts(b, "{\"address\":");
    json_buf_str(b, ep->address);
    json_buf_printf(b,
                    ",\"healthy\":%s,\"draining\":%s,\"ejected\":%s,\"weight\":%u,"
                    "\"inflight\":%" PRIu64 ",\"conns\":%" PRIu64 ",\"requests\":%" PRIu64
                    ",\"errors\":%" PRIu64 ",\"connect_failures\":%" PRIu64
                    ",\"ejections\":%" PRIu64 "}",
                    endpoint_is_available(ep, now_ms) ? "true" : "false",
                    se->draining ? "true" : "false", ejected ? "true" : "false",
                    se->weight, endpoint_inflight(ep), metrics_endpoint_conns(ep), reqs,
                    endpoint_requests(ep, STATUS_CLASSES - 1),
                    metrics_endpoint_connect_failures(ep),
                    (uint64_t)atomic_load_explicit(&ep->ejections, memory_order_relaxed));
}

void status_page_render_stats(struct json_buf *b)
{
    struct snapshot *s = snapshot_acquire();
    uint64_t now_ms = util_now_ms();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t wall_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;

    /* Window deltas and lifetime totals of every registered version: the
     * share's denominator counts versions no longer configured too. */
    size_t n_vs = metrics_vstats_count();
    struct metrics_vtotals *win = xcalloc(n_vs ? n_vs : 1, sizeof(*win));
    uint64_t span_ms = 0, win_all = 0, win_5xx = 0, life_all = 0;
    for (size_t i = 0; i < n_vs; i++) {
        uint64_t span;
        metrics_window_delta(i, STATUS_PAGE_WINDOW_S, now_ms, &win[i], &span);
        if (span > span_ms)
            span_ms = span;
        win_all += metrics_vtotals_count(&win[i]);
        win_5xx += win[i].requests[STATUS_CLASSES - 1];
        struct metrics_vtotals life;
        metrics_vstats_totals(metrics_vstats_at(i), &life);
        life_all += metrics_vtotals_count(&life);
    }
    uint64_t unrouted[STATUS_CLASSES], aborted, unrouted_all = 0;
    metrics_unrouted_totals(unrouted, &aborted);
    for (int c = 0; c < STATUS_CLASSES; c++)
        unrouted_all += unrouted[c];
    double span_s = span_ms ? (double)span_ms / 1000.0 : 1.0;

    json_buf_printf(b,
                    "{\"time_ms\":%" PRIu64 ",\"generation\":%" PRIu64
                    ",\"window_s\":%.1f,\"client_connections\":%u"
                    ",\"access_log_dropped\":%" PRIu64 ",\"unrouted\":{\"requests\":%" PRIu64
                    "},\"totals\":{\"requests\":%" PRIu64 ",\"rps\":%.3f,\"error_rate\":%.6f}"
                    ",\"versions\":[",
                    wall_ms, s ? s->generation : 0, span_ms ? span_s : 0.0,
                    client_open_count(),
                    access_dropped(), unrouted_all, life_all + unrouted_all,
                    (double)win_all / span_s,
                    win_all ? (double)win_5xx / (double)win_all : 0.0);
    for (size_t v = 0; s && v < s->n_versions; v++) {
        const struct snap_version *sv = &s->versions[v];
        long ri = registry_index(sv->stats);
        struct metrics_vtotals zero, life;
        memset(&zero, 0, sizeof(zero));
        const struct metrics_vtotals *d = ri >= 0 ? &win[ri] : &zero;
        if (ri >= 0)
            metrics_vstats_totals(sv->stats, &life);
        else
            life = zero;
        uint64_t n = metrics_vtotals_count(d);
        char pct[16];
        util_format_bp(sv->split_bp, pct, sizeof(pct));
        if (v)
            json_buf_puts(b, ",");
        json_buf_puts(b, "{\"name\":");
        json_buf_str(b, sv->name);
        json_buf_printf(b, ",\"split\":%s,\"share\":%.6f,\"rps\":%.3f,\"error_rate\":%.6f,"
                           "\"p50_ms\":",
                        pct, win_all ? (double)n / (double)win_all : 0.0,
                        (double)n / span_s,
                        n ? (double)d->requests[STATUS_CLASSES - 1] / (double)n : 0.0);
        put_ms_or_null(b, metrics_quantile_us(d->buckets, 0.50));
        json_buf_puts(b, ",\"p99_ms\":");
        put_ms_or_null(b, metrics_quantile_us(d->buckets, 0.99));
        json_buf_printf(b,
                        ",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                        ",\"no_endpoint\":%" PRIu64 ",\"endpoints\":[",
                        metrics_vtotals_count(&life), life.requests[STATUS_CLASSES - 1],
                        life.no_endpoint);
        for (size_t i = 0; i < sv->n_eps; i++) {
            if (i)
                json_buf_puts(b, ",");
            render_endpoint(b, &sv->eps[i], now_ms);
        }
        json_buf_puts(b, "]}");
    }
    json_buf_puts(b, "]");
    /* The rollout and the guard's verdicts: the control socket's own
     * renderers (`rollout`, `guard`), so both views say the same. */
    release_render_rollout(b);
    release_render_guard(b);
    if (s) {
        json_buf_puts(b, ",");
        mirror_render(b, s->cfg);
    }
    json_buf_puts(b, "}");
    free(win);
    snapshot_unref(s);
}

void status_page_render_html(struct json_buf *out)
{
    for (size_t i = 0; i < ARRAY_LEN(page_head); i++)
        json_buf_puts(out, page_head[i]);
    struct json_buf stats;
    json_buf_init(&stats);
    status_page_render_stats(&stats);
    /* "</" → "<\/" (the same string in JSON) so the data cannot end the
     * <script> element it sits in. */
    const char *run = stats.p;
    for (const char *p = stats.p; (p = strstr(p, "</")) != NULL; p += 2) {
        json_buf_add(out, run, (size_t)(p - run));
        json_buf_puts(out, "<\\/");
        run = p + 2;
    }
    json_buf_puts(out, run);
    json_buf_dispose(&stats);
    for (size_t i = 0; i < ARRAY_LEN(page_tail); i++)
        json_buf_puts(out, page_tail[i]);
}
