/**
 * The admin dashboard: one self-contained page (HTML, CSS and vanilla JS inline, no external
 * fonts, scripts or images), served at `GET /lull/admin` and `/lull/admin/dashboard`.
 *
 * The page itself holds no data and needs no token. It asks the operator for LULL_ADMIN_TOKEN,
 * keeps it in sessionStorage (gone when the tab closes), and polls the admin API every 2 s.
 * Every value from the API is written with `textContent`, never parsed as HTML, and the page
 * shows the masked `label` of a conversation, not its raw key.
 *
 * Hosted Supabase rewrites `text/html` answers of GET requests to `text/plain`, so there the
 * page only renders when served through `lull dev` or a custom domain; the API it calls works
 * everywhere.
 */

/** Placeholder replaced by the per-response CSP nonce. */
export const DASHBOARD_NONCE_PLACEHOLDER = "__LULL_CSP_NONCE__";

/** The dashboard page, with {@link DASHBOARD_NONCE_PLACEHOLDER} where the CSP nonce goes. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>lull admin</title>
<style nonce="__LULL_CSP_NONCE__">
  :root { --fg:#1a1a1a; --muted:#4a4a4a; --bg:#ffffff; --panel:#f4f5f7; --line:#c9ccd1;
          --accent:#0b4f8a; --danger:#a4161a; --ok:#1b5e20; --warn:#7a4a00; }
  * { box-sizing: border-box; }
  body { margin:0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color:var(--fg); background:var(--bg); }
  header { display:flex; align-items:center; gap:1rem; padding:.75rem 1.25rem;
           border-bottom:1px solid var(--line); background:var(--panel); }
  header h1 { font-size:1.15rem; margin:0; }
  header .spacer { flex:1; }
  main { padding:1rem 1.25rem 2rem; max-width:1200px; margin:0 auto; }
  h2 { font-size:1.05rem; margin:1.5rem 0 .5rem; }
  button { font:inherit; padding:.3rem .7rem; border-radius:4px; border:1px solid var(--accent);
           background:var(--accent); color:#fff; cursor:pointer; }
  button.secondary { background:#fff; color:var(--accent); }
  button.danger { background:#fff; color:var(--danger); border-color:var(--danger); }
  button:focus-visible, input:focus-visible { outline:3px solid #f2a900; outline-offset:2px; }
  button[disabled] { opacity:.6; cursor:wait; }
  form.login { max-width:26rem; margin:3rem auto; padding:1.25rem; border:1px solid var(--line);
               border-radius:6px; background:var(--panel); }
  form.login label { display:block; font-weight:600; margin-bottom:.35rem; }
  form.login input { width:100%; font:inherit; padding:.4rem .5rem; margin-bottom:.75rem;
                     border:1px solid var(--muted); border-radius:4px; }
  .hint { color:var(--muted); font-size:.9rem; }
  .cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(10.5rem, 1fr)); gap:.6rem; }
  .card { border:1px solid var(--line); border-radius:6px; padding:.5rem .65rem; background:#fff; }
  .card .name { color:var(--muted); font-size:.85rem; }
  .card .value { font-size:1.35rem; font-weight:650; font-variant-numeric:tabular-nums; }
  .card svg { display:block; margin-top:.25rem; }
  .card.gauge { background:var(--panel); }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  caption { text-align:left; color:var(--muted); font-size:.9rem; padding-bottom:.3rem; }
  th, td { text-align:left; padding:.35rem .5rem; border-bottom:1px solid var(--line);
           vertical-align:top; }
  th { background:var(--panel); font-weight:600; }
  td.num, th.num { text-align:right; }
  td.err { color:var(--danger); max-width:22rem; overflow-wrap:anywhere; }
  td.actions { white-space:nowrap; }
  td.actions button { margin-right:.3rem; }
  .overdue { color:var(--warn); font-weight:600; }
  .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:.88rem; }
  .empty { color:var(--muted); font-style:italic; }
  #status { font-size:.9rem; color:var(--muted); }
  #status.error { color:var(--danger); font-weight:600; }
  ol.events { list-style:none; margin:0; padding:0; max-height:22rem; overflow:auto;
              border:1px solid var(--line); border-radius:6px; }
  ol.events li { padding:.3rem .6rem; border-bottom:1px solid var(--line); display:flex; gap:.75rem; }
  ol.events .type { font-weight:600; min-width:8.5rem; }
  ol.events time { color:var(--muted); min-width:6.5rem; }
  [hidden] { display:none !important; }
</style>
</head>
<body>
<header>
  <h1>lull admin</h1>
  <span class="spacer"></span>
  <span id="status" role="status" aria-live="polite"></span>
  <button id="signout" class="secondary" type="button" hidden>Sign out</button>
</header>

<form id="login" class="login" hidden>
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required
         aria-describedby="token-hint">
  <p id="token-hint" class="hint">The value of LULL_ADMIN_TOKEN. Kept in this tab only
    (sessionStorage) and sent as a bearer token to the admin API.</p>
  <button type="submit">Open dashboard</button>
</form>

<main id="app" hidden>
  <section aria-labelledby="h-stats">
    <h2 id="h-stats">Now and the last 7 days</h2>
    <div class="cards" id="gauges"></div>
    <div class="cards" id="counters"></div>
  </section>

  <section aria-labelledby="h-buffers">
    <h2 id="h-buffers">Open buffers</h2>
    <table id="buffers">
      <caption>Conversations with messages waiting or a batch outstanding, soonest first.</caption>
      <thead><tr>
        <th scope="col">Conversation</th><th scope="col" class="num">Partition</th>
        <th scope="col" class="num">Messages</th><th scope="col" class="num">Bytes</th>
        <th scope="col" class="num">Age</th><th scope="col" class="num">Due in</th>
        <th scope="col">Batch</th><th scope="col">Actions</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section aria-labelledby="h-dlq">
    <h2 id="h-dlq">Dead-letter queue</h2>
    <table id="dlq">
      <caption>Batches that could not be delivered, newest first.</caption>
      <thead><tr>
        <th scope="col">Batch</th><th scope="col">Conversation</th>
        <th scope="col" class="num">Messages</th><th scope="col" class="num">Attempts</th>
        <th scope="col">Last error</th><th scope="col">Dead since</th><th scope="col">Actions</th>
      </tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section aria-labelledby="h-events">
    <h2 id="h-events">Live events</h2>
    <p class="hint">Events from the moment this page opened, newest first.</p>
    <ol class="events" id="events" aria-live="off"></ol>
  </section>
</main>

<script nonce="__LULL_CSP_NONCE__">
"use strict";
(() => {
  const POLL_MS = 2000;
  const MAX_EVENTS = 200;
  const TOKEN_KEY = "lull.adminToken";
  const COUNTERS = ["ingested", "duplicates", "batches", "batch_messages", "retries", "dead",
    "superseded", "reaped", "fallbacks"];
  // The API lives next to the page, whatever prefix (/functions/v1) it is served under.
  const path = location.pathname.replace(/\\/+$/, "");
  const apiBase = path.replace(/\\/dashboard$/, "");

  const $ = (id) => document.getElementById(id);
  const status = $("status");
  let timer = null;
  let ticker = null;
  let polling = false;
  let cursor = null;
  let clockOffsetMs = 0; // store time minus browser time, for the countdowns
  let buffers = [];

  function el(tag, opts, children) {
    const node = document.createElement(tag);
    if (opts) {
      if (opts.text !== undefined) node.textContent = String(opts.text);
      if (opts.cls) node.className = opts.cls;
      if (opts.attrs) for (const k in opts.attrs) node.setAttribute(k, opts.attrs[k]);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms <= 0 && ms > -1000) return "now";
    const neg = ms < 0;
    let s = Math.round(Math.abs(ms) / 1000);
    let out;
    if (s < 60) out = s + " s";
    else if (s < 3600) out = Math.floor(s / 60) + " min " + (s % 60) + " s";
    else { const h = Math.floor(s / 3600); s -= h * 3600; out = h + " h " + Math.floor(s / 60) + " min"; }
    return neg ? "overdue " + out : out;
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
  }

  class Unauthorized extends Error {}

  async function api(method, route, body) {
    const token = sessionStorage.getItem(TOKEN_KEY) || "";
    const headers = { authorization: "Bearer " + token };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(apiBase + route, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (res.status === 401) throw new Unauthorized("token rejected");
    if (!res.ok) {
      const msg = data && data.error ? data.error.code + ": " + data.error.message : "HTTP " + res.status;
      throw new Error(msg);
    }
    return data;
  }

  function sparkline(days, counter) {
    const values = days.map((d) => (d.counters && d.counters[counter]) || 0);
    const max = Math.max(1, ...values);
    const W = 140, H = 28, gap = 2;
    const bw = values.length ? (W - gap * (values.length - 1)) / values.length : W;
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", String(W));
    svg.setAttribute("height", String(H));
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "last 7 days: " +
      days.map((d, i) => d.day + " " + values[i]).join(", "));
    values.forEach((v, i) => {
      const h = v === 0 ? 1 : Math.max(2, Math.round((v / max) * (H - 2)));
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", String(i * (bw + gap)));
      r.setAttribute("y", String(H - h));
      r.setAttribute("width", String(bw));
      r.setAttribute("height", String(h));
      r.setAttribute("fill", v === 0 ? "#c9ccd1" : "#0b4f8a");
      const t = document.createElementNS(ns, "title");
      t.textContent = days[i].day + ": " + v;
      r.append(t);
      svg.append(r);
    });
    return svg;
  }

  function card(name, value, extra, cls) {
    return el("div", { cls: "card" + (cls ? " " + cls : "") }, [
      el("div", { cls: "name", text: name }),
      el("div", { cls: "value", text: value }),
      ...(extra ? [extra] : []),
    ]);
  }

  function renderStats(stats) {
    $("gauges").replaceChildren(
      card("open buffers", stats.openBuffers, null, "gauge"),
      card("batches in flight / retrying", stats.inFlight, null, "gauge"),
      card("dead letters", stats.dlqSize, null, "gauge"),
    );
    $("counters").replaceChildren(...COUNTERS.map((c) =>
      card(c.replace("_", " "), (stats.totals && stats.totals[c]) || 0, sparkline(stats.days || [], c))
    ));
  }

  function batchText(b) {
    if (!b) return "—";
    const state = b.inFlight ? "delivering" : b.attempt === 0 ? "queued (" + b.reason + ")"
      : "awaiting retry";
    return b.size + " msg, attempt " + b.attempt + ", " + state +
      (b.lastError ? " (" + b.lastError + ")" : "");
  }

  function renderBuffers() {
    const body = $("buffers").tBodies[0];
    if (buffers.length === 0) {
      body.replaceChildren(el("tr", {}, [el("td", { cls: "empty", text: "No open buffers.",
        attrs: { colspan: "8" } })]));
      return;
    }
    const now = Date.now() + clockOffsetMs;
    body.replaceChildren(...buffers.map((b) => {
      const dueIn = b.dueAt ? Date.parse(b.dueAt) - now : null;
      const flushBtn = el("button", { text: "Flush now", cls: "secondary",
        attrs: { type: "button", "aria-label": "Flush " + b.label + " now" } });
      flushBtn.addEventListener("click", () => act(flushBtn, "POST", "/flush",
        { conversation: b.conversation }, "flushed " + b.label));
      return el("tr", { attrs: { "data-conversation-label": b.label } }, [
        el("td", { cls: "mono", text: b.label }),
        el("td", { cls: "num", text: b.partition }),
        el("td", { cls: "num", text: b.size }),
        el("td", { cls: "num", text: b.bytes }),
        el("td", { cls: "num", text: fmtDuration(b.firstAt ? now - Date.parse(b.firstAt) : null) }),
        el("td", { cls: "num" + (dueIn !== null && dueIn < 0 ? " overdue" : ""),
          text: fmtDuration(dueIn) }),
        el("td", { text: batchText(b.batch) }),
        el("td", { cls: "actions" }, [flushBtn]),
      ]);
    }));
  }

  function renderDlq(list) {
    const body = $("dlq").tBodies[0];
    if (list.length === 0) {
      body.replaceChildren(el("tr", {}, [el("td", { cls: "empty", text: "The dead-letter queue is empty.",
        attrs: { colspan: "7" } })]));
      return;
    }
    body.replaceChildren(...list.map((d) => {
      const requeue = el("button", { text: "Requeue",
        attrs: { type: "button", "aria-label": "Requeue batch " + d.batchId } });
      requeue.addEventListener("click", () =>
        act(requeue, "POST", "/dlq/" + encodeURIComponent(d.batchId) + "/requeue", undefined,
          "requeued " + d.batchId));
      const del = el("button", { text: "Delete", cls: "danger",
        attrs: { type: "button", "aria-label": "Delete batch " + d.batchId } });
      del.addEventListener("click", () => {
        if (!confirm("Delete dead batch " + d.batchId + " and its " + d.size + " messages for good?")) return;
        act(del, "DELETE", "/dlq/" + encodeURIComponent(d.batchId), undefined, "deleted " + d.batchId);
      });
      return el("tr", { attrs: { "data-batch-id": d.batchId } }, [
        el("td", { cls: "mono", text: d.batchId }),
        el("td", { cls: "mono", text: d.label }),
        el("td", { cls: "num", text: d.size }),
        el("td", { cls: "num", text: d.attempts }),
        el("td", { cls: "err", text: d.lastError || "—" }),
        el("td", { text: fmtTime(d.deadAt) }),
        el("td", { cls: "actions" }, [requeue, del]),
      ]);
    }));
  }

  function addEvents(events) {
    const list = $("events");
    if (list.children.length === 0 && events.length === 0) {
      list.replaceChildren(el("li", { cls: "empty", text: "Waiting for events…" }));
      return;
    }
    const placeholder = list.querySelector(".empty");
    if (placeholder && events.length > 0) placeholder.remove();
    const sorted = events.slice().sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    for (const e of sorted) {
      const fields = Object.keys(e.fields || {}).map((k) => k + "=" + e.fields[k]).join(" ");
      list.prepend(el("li", {}, [
        el("time", { text: fmtTime(e.at), attrs: { datetime: e.at } }),
        el("span", { cls: "type", text: e.type }),
        el("span", { cls: "mono", text: e.conversation }),
        el("span", { cls: "mono", text: fields }),
      ]));
    }
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  }

  async function act(button, method, route, body, done) {
    button.disabled = true;
    try {
      await api(method, route, body);
      await poll();
      setStatus(done.charAt(0).toUpperCase() + done.slice(1), false);
    } catch (err) {
      handleError(err);
    } finally {
      button.disabled = false;
    }
  }

  function handleError(err) {
    if (err instanceof Unauthorized) {
      signOut("The admin token was rejected. Enter it again.");
      return;
    }
    setStatus("Error: " + (err && err.message ? err.message : String(err)), true);
  }

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const q = cursor ? "?cursor=" + encodeURIComponent(cursor) : "";
      const [stats, buf, dlq, ev] = await Promise.all([
        api("GET", "/stats"), api("GET", "/buffers"), api("GET", "/dlq"), api("GET", "/events" + q),
      ]);
      clockOffsetMs = buf.nowMs - Date.now();
      buffers = buf.buffers;
      renderStats(stats);
      renderBuffers();
      renderDlq(dlq.deadLetters);
      if (cursor !== null) addEvents(ev.events);
      else addEvents([]);
      cursor = ev.cursor;
      setStatus("Updated " + new Date().toLocaleTimeString(), false);
    } catch (err) {
      handleError(err);
    } finally {
      polling = false;
    }
  }

  function start() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    poll();
    timer = setInterval(poll, POLL_MS);
    // Countdowns tick between polls without asking the server.
    ticker = setInterval(renderBuffers, 1000);
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(timer);
    clearInterval(ticker);
    timer = ticker = null;
    cursor = null;
    $("app").hidden = true;
    $("signout").hidden = true;
    $("login").hidden = false;
    setStatus(message || "", !!message);
    $("token").focus();
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    setStatus("", false);
    start();
  });
  $("signout").addEventListener("click", () => signOut(""));

  if (sessionStorage.getItem(TOKEN_KEY)) start();
  else signOut("");
})();
</script>
</body>
</html>
`;

/** The dashboard page with `nonce` set on its inline script and style (for the CSP header). */
export function renderDashboardHtml(nonce: string): string {
  return DASHBOARD_HTML.replaceAll(DASHBOARD_NONCE_PLACEHOLDER, nonce);
}
