/**
 * The admin dashboard's script (browser code: compiled by scripts/gen-dashboard.ts and inlined,
 * with a CSP nonce, into the page src/http/dashboard/dashboard.html).
 *
 * The page holds no data and needs no token to load. It asks for LULL_ADMIN_TOKEN, keeps it in
 * sessionStorage (gone when the tab closes) and polls the admin API next to the page every 2 s.
 * Live events start from the newest ones in the event stream (`GET events/latest`), so a reload
 * shows what happened before it; the page itself keeps nothing but the token.
 * Every value from the API is written with `textContent`, never parsed as HTML; conversations
 * and message texts are shown as the API's masked `label`/`textLabel` (raw only with
 * LULL_LOG_PII), with `dir="auto"` so right-to-left text reads right.
 *
 * Why one long file: it is the page's one browser script, compiled into one inline `<script>`
 * (one nonce); splitting it would need a bundler in scripts/gen-dashboard.ts for no reader gain.
 */

const POLL_MS = 2000;
const MAX_EVENTS = 200;
/** Events read from the stream on load (newest first), before following it live. */
const LATEST_EVENTS = 50;
const MAX_BATCHES = 50;
const TOKEN_KEY = "lull.adminToken";
/** Event fields not shown in the live list (the recent-batches view shows the texts). */
const HIDDEN_FIELDS = new Set(["texts"]);

interface BatchInfo {
  batchId: string;
  attempt: number;
  reason: string;
  size: number;
  inFlight: boolean;
  lastError: string | null;
}
interface BufferRow {
  conversation: string;
  label: string;
  size: number;
  bytes: number;
  firstAt: string | null;
  dueAt: string | null;
  batch: BatchInfo | null;
}
interface DeadLetterRow {
  batchId: string;
  conversation: string;
  label: string;
  size: number;
  attempts: number;
  lastError: string;
  deadAt: string;
}
interface MessageView {
  id: string;
  provider: string;
  text: string;
  textLabel?: string;
  sender?: string;
  receivedAt: string;
}
interface DeliveredText {
  text: string;
  truncated?: boolean;
  attachments?: string[];
}
interface DeliveredBatch {
  batchId: string;
  partition: number;
  at: string;
  label: string;
  size: number;
  messages: DeliveredText[];
  omitted: number;
  masked: boolean;
}
interface LullEvent {
  id: string;
  partition: number;
  type: string;
  at: string;
  conversation: string;
  fields: Record<string, string>;
}
interface Stats {
  openBuffers: number;
  inFlight: number;
  dlqSize: number;
  totals?: Record<string, number>;
  days?: { day: string; counters?: Record<string, number> }[];
}

// The API lives next to the page, whatever prefix (/functions/v1) it is served under.
const apiBase = location.pathname.replace(/\/+$/, "").replace(/\/dashboard$/, "");

function $(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing`);
  return node;
}
const status = $("status");
const result = $("result");
const filterInput = $("filter") as HTMLInputElement;
let timer: ReturnType<typeof setInterval> | null = null;
let ticker: ReturnType<typeof setInterval> | null = null;
let polling = false;
let cursor: string | null = null;
let clockOffsetMs = 0; // store time minus browser time, for the countdowns
let buffers: BufferRow[] = [];
let deadLetters: DeadLetterRow[] = [];
let events: LullEvent[] = [];
let batches: DeliveredBatch[] = [];
/** Re-read the recent batches at the next poll (on load, and after a `delivered` event). */
let batchesStale = true;
const selected = new Set<string>();

interface ElOptions {
  text?: unknown;
  cls?: string;
  attrs?: Record<string, string>;
}

function el(tag: string, opts: ElOptions = {}, children: Node[] = []): HTMLElement {
  const node = document.createElement(tag);
  if (opts.text !== undefined) node.textContent = String(opts.text);
  if (opts.cls) node.className = opts.cls;
  for (const [k, v] of Object.entries(opts.attrs ?? {})) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/** A table cell labelled for the narrow (stacked) layout; text cells read in their own direction. */
function cell(label: string, text: unknown, cls = "", dirAuto = false): HTMLElement {
  const attrs: Record<string, string> = { "data-label": label };
  if (dirAuto) attrs.dir = "auto";
  return el("td", { cls, text, attrs });
}

function setStatus(text: string, isError: boolean): void {
  status.textContent = text;
  status.classList.toggle("error", isError);
}

/** The visible outcome of the last action (stays until the next one). */
function showResult(text: string, isError: boolean): void {
  result.textContent = text;
  result.classList.toggle("error", isError);
  result.hidden = false;
}

function fmtDuration(ms: number | null): string {
  if (ms === null || Number.isNaN(ms)) return "—";
  if (ms <= 0 && ms > -1000) return "now";
  const neg = ms < 0;
  let s = Math.round(Math.abs(ms) / 1000);
  let out: string;
  if (s < 60) out = `${s} s`;
  else if (s < 3600) out = `${Math.floor(s / 60)} min ${s % 60} s`;
  else {
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    out = `${h} h ${Math.floor(s / 60)} min`;
  }
  return neg ? `overdue ${out}` : out;
}

function fmtTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
}

class Unauthorized extends Error {}

async function api<T>(method: string, route: string, body?: unknown): Promise<T> {
  const token = sessionStorage.getItem(TOKEN_KEY) ?? "";
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(apiBase + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data: { error?: { code: string; message: string } } | null = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.status === 401) throw new Unauthorized("token rejected");
  if (!res.ok) {
    throw new Error(
      data?.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${res.status}`,
    );
  }
  return data as T;
}

function matchesFilter(...values: (string | undefined)[]): boolean {
  const q = filterInput.value.trim().toLowerCase();
  if (q === "") return true;
  return values.some((v) => v !== undefined && v.toLowerCase().includes(q));
}

function sparkline(days: NonNullable<Stats["days"]>, counter: string): SVGElement {
  const values = days.map((d) => d.counters?.[counter] ?? 0);
  const max = Math.max(1, ...values);
  const W = 140, H = 28, gap = 2;
  const bw = values.length ? (W - gap * (values.length - 1)) / values.length : W;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", String(W));
  svg.setAttribute("height", String(H));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute(
    "aria-label",
    "last 7 days: " + days.map((d, i) => `${d.day} ${values[i]}`).join(", "),
  );
  values.forEach((v, i) => {
    const h = v === 0 ? 1 : Math.max(2, Math.round((v / max) * (H - 2)));
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * (bw + gap)));
    r.setAttribute("y", String(H - h));
    r.setAttribute("width", String(bw));
    r.setAttribute("height", String(h));
    r.setAttribute("fill", v === 0 ? "#c9ccd1" : "#0b4f8a");
    const t = document.createElementNS(ns, "title");
    t.textContent = `${days[i]!.day}: ${v}`;
    r.append(t);
    svg.append(r);
  });
  return svg;
}

function card(name: string, value: unknown, extra: Node | null, cls = ""): HTMLElement {
  return el("div", { cls: `card ${cls}`.trim() }, [
    el("div", { cls: "name", text: name }),
    el("div", { cls: "value", text: value }),
    ...(extra ? [extra] : []),
  ]);
}

function renderStats(stats: Stats): void {
  $("gauges").replaceChildren(
    card("open buffers", stats.openBuffers, null, "gauge"),
    card("batches in flight / retrying", stats.inFlight, null, "gauge"),
    card("dead letters", stats.dlqSize, null, "gauge"),
  );
  $("counters").replaceChildren(
    // The API's totals name every counter, in the store's order (COUNTER_NAMES): no second list.
    ...Object.entries(stats.totals ?? {}).map(([c, total]) =>
      card(c.replace("_", " "), total, sparkline(stats.days ?? [], c))
    ),
  );
}

function batchText(b: BatchInfo | null): string {
  if (!b) return "—";
  const state = b.inFlight
    ? "delivering"
    : b.attempt === 0
    ? `queued (${b.reason})`
    : "awaiting retry";
  return `${b.size} msg, attempt ${b.attempt}, ${state}` + (b.lastError ? ` (${b.lastError})` : "");
}

function emptyRow(colspan: number, text: string): HTMLElement {
  return el("tr", {}, [el("td", { cls: "empty", text, attrs: { colspan: String(colspan) } })]);
}

function renderBuffers(): void {
  const body = ($("buffers") as HTMLTableElement).tBodies[0]!;
  const rows = buffers.filter((b) => matchesFilter(b.label, b.conversation));
  if (rows.length === 0) {
    body.replaceChildren(emptyRow(7, buffers.length ? "No buffer matches." : "No open buffers."));
    return;
  }
  const now = Date.now() + clockOffsetMs;
  body.replaceChildren(...rows.map((b) => {
    const dueIn = b.dueAt ? Date.parse(b.dueAt) - now : null;
    const view = el("button", {
      text: "Messages",
      cls: "secondary",
      attrs: { type: "button", "aria-label": `Messages of ${b.label}` },
    });
    view.addEventListener("click", () => void showConversation(b.conversation, b.label));
    const flush = el("button", {
      text: "Flush now",
      cls: "secondary",
      attrs: { type: "button", "aria-label": `Flush ${b.label} now` },
    });
    flush.addEventListener("click", () =>
      void act(
        flush,
        () => api("POST", "/flush", { conversation: b.conversation }),
        `Flushed ${b.label}`,
      ));
    return el("tr", { attrs: { "data-conversation-label": b.label } }, [
      cell("Conversation", b.label, "mono", true),
      cell("Messages", b.size, "num"),
      cell("Bytes", b.bytes, "num"),
      cell("Age", fmtDuration(b.firstAt ? now - Date.parse(b.firstAt) : null), "num"),
      cell("Due in", fmtDuration(dueIn), "num" + (dueIn !== null && dueIn < 0 ? " overdue" : "")),
      cell("Batch", batchText(b.batch)),
      el("td", { cls: "actions" }, [view, flush]),
    ]);
  }));
}

function updateBulkButton(): void {
  const button = $("requeue-selected") as HTMLButtonElement;
  for (const id of [...selected]) {
    if (!deadLetters.some((d) => d.batchId === id)) selected.delete(id);
  }
  button.disabled = selected.size === 0;
  button.textContent = selected.size ? `Requeue selected (${selected.size})` : "Requeue selected";
}

function renderDlq(): void {
  const body = ($("dlq") as HTMLTableElement).tBodies[0]!;
  const rows = deadLetters.filter((d) => matchesFilter(d.label, d.conversation));
  updateBulkButton();
  if (rows.length === 0) {
    body.replaceChildren(
      emptyRow(
        8,
        deadLetters.length ? "No dead letter matches." : "The dead-letter queue is empty.",
      ),
    );
    return;
  }
  body.replaceChildren(...rows.map((d) => {
    const check = el("input", {
      attrs: { type: "checkbox", "aria-label": `Select batch ${d.batchId}` },
    }) as HTMLInputElement;
    check.checked = selected.has(d.batchId);
    check.addEventListener("change", () => {
      if (check.checked) selected.add(d.batchId);
      else selected.delete(d.batchId);
      updateBulkButton();
    });
    const details = el("button", {
      text: "Details",
      cls: "secondary",
      attrs: { type: "button", "aria-label": `Details of batch ${d.batchId}` },
    });
    details.addEventListener("click", () => void showDeadLetter(d.batchId));
    const requeue = el("button", {
      text: "Requeue",
      attrs: { type: "button", "aria-label": `Requeue batch ${d.batchId}` },
    });
    requeue.addEventListener("click", () =>
      void act(
        requeue,
        () => api("POST", `/dlq/${encodeURIComponent(d.batchId)}/requeue`),
        `Requeued ${d.batchId}`,
      ));
    const del = el("button", {
      text: "Delete",
      cls: "danger",
      attrs: { type: "button", "aria-label": `Delete batch ${d.batchId}` },
    });
    del.addEventListener("click", () => {
      if (!confirm(`Delete dead batch ${d.batchId} and its ${d.size} messages for good?`)) return;
      void act(
        del,
        () => api("DELETE", `/dlq/${encodeURIComponent(d.batchId)}`),
        `Deleted ${d.batchId}`,
      );
    });
    return el("tr", { attrs: { "data-batch-id": d.batchId } }, [
      el("td", {}, [check]),
      cell("Batch", d.batchId, "mono"),
      cell("Conversation", d.label, "mono", true),
      cell("Messages", d.size, "num"),
      cell("Attempts", d.attempts, "num"),
      cell("Last error", d.lastError || "—", "err", true),
      cell("Dead since", fmtTime(d.deadAt)),
      el("td", { cls: "actions" }, [details, requeue, del]),
    ]);
  }));
}

async function requeueSelected(button: HTMLButtonElement): Promise<void> {
  const ids = [...selected];
  if (ids.length === 0) return;
  if (!confirm(`Requeue ${ids.length} dead batch${ids.length === 1 ? "" : "es"}?`)) return;
  button.disabled = true;
  const failed: string[] = [];
  for (const id of ids) {
    try {
      await api("POST", `/dlq/${encodeURIComponent(id)}/requeue`);
      selected.delete(id);
    } catch (err) {
      if (err instanceof Unauthorized) return handleError(err);
      failed.push(`${id} (${(err as Error).message})`);
    }
  }
  await poll();
  const done = ids.length - failed.length;
  showResult(
    `Requeued ${done} of ${ids.length}` + (failed.length ? `; failed: ${failed.join(", ")}` : ""),
    failed.length > 0,
  );
}

function showDetail(title: string, meta: [string, unknown][], messages: MessageView[]): void {
  $("detail-title").textContent = title;
  $("detail-meta").replaceChildren(
    ...meta.flatMap(([k, v]) => [
      el("dt", { text: k }),
      el("dd", { text: v ?? "—", attrs: { dir: "auto" } }),
    ]),
  );
  $("detail-messages").replaceChildren(
    ...(messages.length ? messages : []).map((m) =>
      el("li", { attrs: { "data-message-id": m.id } }, [
        el("div", {
          cls: "from",
          text: `${m.id} · ${m.provider} · ${fmtTime(m.receivedAt)}`,
        }),
        el("p", { cls: "text", text: m.textLabel ?? m.text, attrs: { dir: "auto" } }),
      ])
    ),
  );
  if (messages.length === 0) {
    $("detail-messages").replaceChildren(el("li", { cls: "empty", text: "No messages held." }));
  }
  const section = $("detail");
  section.hidden = false;
  section.scrollIntoView({ block: "nearest" });
}

async function showDeadLetter(batchId: string): Promise<void> {
  try {
    const d = await api<
      DeadLetterRow & {
        messages: MessageView[];
        reason: string;
        fence: number;
        firstAt: string;
        responseBody?: string;
      }
    >("GET", `/dlq/${encodeURIComponent(batchId)}`);
    showDetail(`Dead batch ${d.batchId}`, [
      ["conversation", d.label],
      ["attempts", d.attempts],
      ["reason", d.reason],
      ["fence", d.fence],
      ["last error", d.lastError],
      ["processor response", d.responseBody || "(no body)"],
      ["dead since", fmtTime(d.deadAt)],
    ], d.messages);
  } catch (err) {
    handleError(err);
  }
}

async function showConversation(conversation: string, label: string): Promise<void> {
  try {
    const s = await api<{ buffer: { messages: MessageView[] } | null; batch: BatchInfo | null }>(
      "GET",
      `/conversations/${encodeURIComponent(conversation)}`,
    );
    showDetail(`Conversation ${label}`, [
      ["buffered", s.buffer ? s.buffer.messages.length : 0],
      ["batch", batchText(s.batch)],
    ], s.buffer?.messages ?? []);
  } catch (err) {
    handleError(err);
  }
}

/** One delivered message's text (masked unless LULL_LOG_PII), read in its own direction. */
function deliveredText(m: DeliveredText): HTMLElement {
  const kinds = m.attachments?.length ? `[${m.attachments.join(", ")}] ` : "";
  return el("li", {}, [
    el("p", {
      cls: "text",
      text: kinds + m.text + (m.truncated ? "…" : ""),
      attrs: { dir: "auto" },
    }),
  ]);
}

function renderBatches(): void {
  const body = ($("batches") as HTMLTableElement).tBodies[0]!;
  const rows = batches.filter((b) => matchesFilter(b.label)).slice(0, MAX_BATCHES);
  if (rows.length === 0) {
    body.replaceChildren(
      emptyRow(5, batches.length ? "No batch matches." : "No batch delivered yet."),
    );
    return;
  }
  body.replaceChildren(...rows.map((b) => {
    const texts = el("ol", { cls: "messages" }, b.messages.map(deliveredText));
    if (b.messages.length === 0) texts.append(el("li", { cls: "empty", text: "No texts kept." }));
    if (b.omitted > 0) {
      texts.append(el("li", { cls: "empty", text: `… ${b.omitted} more not kept` }));
    }
    const textCell = el("td", { attrs: { "data-label": "Texts" } }, [texts]);
    return el("tr", {
      attrs: { "data-batch-event": "delivered", "data-batch-id": b.batchId },
    }, [
      cell("Time", fmtTime(b.at)),
      cell("Batch", b.batchId, "mono"),
      cell("Conversation", b.label, "mono", true),
      cell("Messages", b.size, "num"),
      textCell,
    ]);
  }));
}

interface AuditRow {
  id: string;
  at: string;
  actor: string;
  action: string;
  target: string;
  result: string;
  detail: string;
  subject: string;
}
let auditRows: AuditRow[] = [];

function renderAudit(): void {
  const body = ($("audit") as HTMLTableElement).tBodies[0]!;
  if (auditRows.length === 0) {
    body.replaceChildren(emptyRow(6, "No admin action recorded yet."));
    return;
  }
  body.replaceChildren(
    ...auditRows.map((a) =>
      el("tr", { attrs: { "data-audit-action": a.action } }, [
        cell("Time", fmtTime(a.at)),
        cell("Who", a.actor, "mono"),
        cell("Action", a.action),
        cell("Target", a.target + (a.subject ? ` #${a.subject}` : ""), "mono", true),
        cell("Result", a.result, a.result === "ok" ? "" : "err"),
        cell("Detail", a.detail || "—", "", true),
      ])
    ),
  );
}

function renderEvents(): void {
  const list = $("events");
  const shown = events.filter((e) => matchesFilter(e.conversation));
  if (shown.length === 0) {
    list.replaceChildren(el("li", { cls: "empty", text: "Waiting for events…" }));
    return;
  }
  list.replaceChildren(...shown.map((e) => {
    const fields = Object.entries(e.fields)
      .filter(([k]) => !HIDDEN_FIELDS.has(k))
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    return el("li", { attrs: { "data-event-type": e.type, "data-event-id": eventKey(e) } }, [
      el("time", { text: fmtTime(e.at), attrs: { datetime: e.at } }),
      el("span", { cls: "type", text: e.type }),
      el("span", { cls: "mono", text: e.conversation, attrs: { dir: "auto" } }),
      el("span", { cls: "mono", text: fields, attrs: { dir: "auto" } }),
    ]);
  }));
}

/** Same-millisecond events: by partition, then the later stream id first (a total order). */
function newerInPartition(a: LullEvent, b: LullEvent): number {
  if (a.partition !== b.partition) return a.partition - b.partition;
  const [am = 0, as = 0] = a.id.split("-").map(Number);
  const [bm = 0, bs = 0] = b.id.split("-").map(Number);
  return bm - am || bs - as;
}

/** Stream ids are per partition. */
function eventKey(e: LullEvent): string {
  return `${e.partition}/${e.id}`;
}

function addEvents(fresh: LullEvent[]): void {
  const known = new Set(events.map(eventKey));
  const added = fresh.filter((e) => !known.has(eventKey(e)));
  events = [...added, ...events]
    .sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || newerInPartition(a, b))
    .slice(0, MAX_EVENTS);
  if (added.some((e) => e.type === "delivered")) batchesStale = true;
}

async function act(button: HTMLElement, run: () => Promise<unknown>, done: string): Promise<void> {
  (button as HTMLButtonElement).disabled = true;
  try {
    await run();
    await poll();
    showResult(done, false);
  } catch (err) {
    handleError(err);
    if (!(err instanceof Unauthorized)) showResult(`Failed: ${(err as Error).message}`, true);
  } finally {
    (button as HTMLButtonElement).disabled = false;
  }
}

function handleError(err: unknown): void {
  if (err instanceof Unauthorized) {
    signOut("The admin token was rejected. Enter it again.");
    return;
  }
  setStatus(`Error: ${err instanceof Error ? err.message : String(err)}`, true);
}

function renderAll(): void {
  renderBuffers();
  renderDlq();
  renderBatches();
  renderAudit();
  renderEvents();
}

async function poll(): Promise<void> {
  if (polling) return;
  polling = true;
  try {
    // The first read takes the newest events from the stream (what happened before this page
    // loaded, a reload included) and the cursor after them; later reads follow from there.
    const route = cursor === null
      ? `/events/latest?limit=${LATEST_EVENTS}`
      : `/events?cursor=${encodeURIComponent(cursor)}`;
    const [stats, buf, dlq, ev, audit] = await Promise.all([
      api<Stats>("GET", "/stats"),
      api<{ buffers: BufferRow[]; nowMs: number }>("GET", "/buffers"),
      api<{ deadLetters: DeadLetterRow[] }>("GET", "/dlq"),
      api<{ events: LullEvent[]; cursor: string }>("GET", route),
      api<{ audit: AuditRow[] }>("GET", "/audit?limit=50"),
    ]);
    auditRows = audit.audit;
    clockOffsetMs = buf.nowMs - Date.now();
    buffers = buf.buffers;
    deadLetters = dlq.deadLetters;
    addEvents(ev.events);
    cursor = ev.cursor;
    if (batchesStale) {
      batchesStale = false;
      try {
        batches = (await api<{ batches: DeliveredBatch[] }>(
          "GET",
          `/batches?limit=${MAX_BATCHES}`,
        )).batches;
      } catch (err) {
        batchesStale = true;
        throw err;
      }
    }
    renderStats(stats);
    renderAll();
    setStatus(`Updated ${new Date().toLocaleTimeString()}`, false);
  } catch (err) {
    handleError(err);
  } finally {
    polling = false;
  }
}

function start(): void {
  $("login").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  renderEvents();
  void poll();
  timer = setInterval(() => void poll(), POLL_MS);
  // Countdowns tick between polls without asking the server.
  ticker = setInterval(renderBuffers, 1000);
}

function signOut(message: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  if (timer) clearInterval(timer);
  if (ticker) clearInterval(ticker);
  timer = ticker = null;
  cursor = null;
  events = [];
  batches = [];
  batchesStale = true;
  $("app").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  setStatus(message, message !== "");
  $("token").focus();
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("token") as HTMLInputElement;
  const value = input.value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  input.value = "";
  setStatus("", false);
  start();
});
$("signout").addEventListener("click", () => signOut(""));
$("detail-close").addEventListener("click", () => {
  $("detail").hidden = true;
});
$("requeue-selected").addEventListener("click", (ev) => {
  void requeueSelected(ev.currentTarget as HTMLButtonElement);
});
($("dlq-all") as HTMLInputElement).addEventListener("change", (ev) => {
  const on = (ev.currentTarget as HTMLInputElement).checked;
  for (const d of deadLetters.filter((x) => matchesFilter(x.label, x.conversation))) {
    if (on) selected.add(d.batchId);
    else selected.delete(d.batchId);
  }
  renderDlq();
});
filterInput.addEventListener("input", renderAll);

if (sessionStorage.getItem(TOKEN_KEY)) start();
else signOut("");

export {};
