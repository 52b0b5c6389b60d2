/**
 * Admin routes (`/lull/admin/...`) and the Prometheus scrape (`GET /lull/metrics`).
 *
 * Everything here needs `Authorization: Bearer <LULL_ADMIN_TOKEN>`, except the dashboard page
 * itself, which holds no data: its API calls carry the token the operator types in. When
 * LULL_ADMIN_TOKEN is unset the whole surface answers 404, so an unconfigured deployment does
 * not even reveal that it exists.
 *
 * Conversation keys are PII (phone numbers, chat ids). Responses carry the raw key in
 * `conversation`, because an operator needs it to act (inspect, force-flush), and a masked
 * `label` (raw only with LULL_LOG_PII) that the dashboard displays, so a screen share or
 * screenshot does not leak numbers.
 */
import { type Outbox, type OutboxDepth, OutboxUnavailableError } from "../outbox/outbox.ts";
import { z } from "zod";
import {
  BatchNotFoundError,
  CircuitOpenError,
  ConversationBusyError,
  DeadLetterNotFoundError,
  LockLostError,
  LullError,
  RedisTimeoutError,
  RedisUnavailableError,
  ValidationError,
} from "../core/errors.ts";
import type { AuditEntry, BufferEvent, ConversationState, StatsSnapshot } from "../core/types.ts";
import { decodeEventCursor, encodeEventCursor } from "../core/event-cursor.ts";
import { timingSafeEqual as timingSafeEqualStrings } from "../core/crypto.ts";
import {
  conversationFingerprint,
  flushAuditResult,
  runAudited,
  splitTokens,
  tokenActor,
} from "../core/audit.ts";
import { maskConversation, maskText } from "../core/mask.ts";
import { type BufferView, bufferView, deadLetterSummary } from "../core/views.ts";
import type { Metrics } from "../observability/metrics.ts";
import { createMetrics } from "../observability/metrics.ts";
import type { AppContext } from "./context.ts";
import { dashboardCsp, renderDashboardHtml } from "./dashboard/render.ts";
import { json, jsonError } from "../core/respond.ts";
import { purgeConversationEverywhere, purgeDetail } from "./purge.ts";
import {
  decodeDeliveredTexts,
  type DeliveredText,
  maskDeliveredTexts,
} from "../core/delivered-texts.ts";

/**
 * What the admin routes need from the flusher (`src/core/flusher.ts`'s `Flusher` satisfies it).
 * Results are passed through to the JSON answer as they are.
 */
export interface AdminFlusher {
  /** Flush one conversation now; `force` claims a buffer that is not due yet. */
  flushConversation(conversation: string, options?: { force?: boolean }): Promise<unknown>;
  /** One durable sweep over every partition. */
  flushDue(): Promise<unknown>;
}

/** Context of the admin routes: the shared services plus the flusher. */
export type AdminContext = AppContext & {
  flusher: AdminFlusher;
  /**
   * Circuit breakers by name (ServiceContext's `CircuitBreaker`s fit), read for the metrics
   * state gauge. Optional: omitted means no breaker series.
   */
  breakers?: Record<string, { readonly state: string }>;
  /** The durable outbox, read for the depth gauges. Optional: omitted means no outbox series. */
  outbox?: { outbox: Pick<Outbox, "depth"> & Partial<Pick<Outbox, "purgeConversation">> };
};

/** Default and ceiling for `?limit=` on list routes. */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** `GET events/latest`: how many events by default. */
const DEFAULT_LATEST_EVENTS = 50;
/** `GET batches`: default and ceiling (each delivered event carries up to 4 KiB of texts). */
const DEFAULT_BATCHES = 50;
const MAX_BATCHES = 200;
/** How many `inspect` calls the buffers listing runs at once (bounded to spare Redis). */
const INSPECT_CONCURRENCY = 16;

const PREFIX = "/lull/admin";

const flushBodySchema = z.object({
  conversation: z.string().min(1, "must not be empty").max(1024, "is too long").optional(),
});

/** A route matched to its handler; the handler answers 405 itself for methods it lacks. */
interface Route {
  run: (method: string) => Promise<Response>;
}

/**
 * `{ actor }` when authorised (the audit name of the token presented, see tokenActor), else
 * `{ denied }`, the response to send. LULL_ADMIN_TOKEN may be a comma list (rotation): any
 * listed token is accepted; every one is compared, so timing does not tell which matched.
 */
async function authorise(
  req: Request,
  ctx: AppContext,
): Promise<{ denied: Response; actor?: undefined } | { denied?: undefined; actor: string }> {
  const expected = splitTokens(ctx.config.adminToken);
  if (expected.length === 0) return { denied: jsonError(404, "not_found", "not found") };
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  const presented = match?.[1]?.trim() ?? "";
  const matches = await Promise.all(expected.map((t) => timingSafeEqualStrings(presented, t)));
  const matched = expected.find((_, i) => matches[i]);
  if (presented === "" || matched === undefined) {
    return {
      denied: jsonError(401, "unauthorized", "a valid admin bearer token is required", undefined, {
        "www-authenticate": 'Bearer realm="lull-admin"',
      }),
    };
  }
  return { actor: await tokenActor(matched) };
}

/** Runs an admin action and audits it (see runAudited); a failed audit write is logged. */
function audited<T>(
  ctx: AppContext,
  entry: Omit<AuditEntry, "result">,
  run: () => Promise<T>,
  resultOf?: (value: T) => { result: string; detail?: string } | null,
): Promise<T> {
  return runAudited(
    ctx.store,
    entry,
    run,
    resultOf,
    (err) =>
      ctx.logger.error("could not write the audit record", {
        action: entry.action,
        actor: entry.actor,
        error: err instanceof Error ? err.message : String(err),
      }),
  );
}

function methodNotAllowed(allow: string[]): Response {
  return jsonError(405, "method_not_allowed", `use ${allow.join(", ")}`, undefined, {
    allow: allow.join(", "),
  });
}

/** Parses `?limit=`: a whole number 1..`max` (DEFAULT_LIMIT and MAX_LIMIT unless told). */
function parseLimit(url: URL, fallback = DEFAULT_LIMIT, max = MAX_LIMIT): number {
  const raw = url.searchParams.get("limit");
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new ValidationError(`limit must be a whole number from 1 to ${max}`, [
      { path: ["limit"], message: `must be a whole number from 1 to ${max}` },
    ]);
  }
  return n;
}

function label(ctx: AppContext, conversation: string): string {
  return maskConversation(conversation, ctx.config.logPii);
}

/**
 * An event as the admin API shows it. The source masked it unless LULL_LOG_PII; what was written
 * in clear while LULL_LOG_PII was on is masked here once it is off again.
 */
function eventView(ctx: AppContext, e: BufferEvent): BufferEvent {
  if (ctx.config.logPii) return e;
  const fields = e.fields.texts === undefined
    ? e.fields
    : { ...e.fields, texts: maskDeliveredTexts(e.fields.texts) };
  return { ...e, conversation: label(ctx, e.conversation), fields };
}

/** One recently delivered batch, from its `delivered` event. */
export interface DeliveredBatchView {
  batchId: string;
  partition: number;
  /** When the processor's answer was recorded (store time). */
  at: string;
  /** The conversation as the event stream holds it (masked unless LULL_LOG_PII). */
  label: string;
  size: number;
  /** The texts, masked unless LULL_LOG_PII; empty for a batch acked without them. */
  messages: DeliveredText[];
  /** Messages the event left out (its `texts` field is capped). */
  omitted: number;
  /** Texts are `<N chars>` placeholders. */
  masked: boolean;
}

/** The newest delivered batches with their texts, newest first (one stream read per partition). */
async function recentBatches(ctx: AppContext, limit: number) {
  const { events } = await ctx.store.latestEvents({ limit, type: "delivered" });
  const batches: DeliveredBatchView[] = events.map((raw) => {
    const e = eventView(ctx, raw);
    const texts = decodeDeliveredTexts(e.fields.texts);
    return {
      batchId: e.fields.batchId ?? "",
      partition: e.partition,
      at: e.at,
      label: e.conversation,
      size: Number(e.fields.size ?? texts?.messages.length ?? 0),
      messages: texts?.messages ?? [],
      omitted: texts?.omitted ?? 0,
      masked: texts?.masked ?? !ctx.config.logPii,
    };
  });
  return { batches, count: batches.length };
}

/**
 * Messages with a `textLabel` beside `text`: what the dashboard shows (masked unless
 * LULL_LOG_PII), like `label` beside `conversation`.
 */
function labelledMessages<M extends { text: string }>(ctx: AppContext, messages: M[]) {
  return messages.map((m) => ({ ...m, textLabel: maskText(m.text, ctx.config.logPii) }));
}

/** One row of the buffers listing. */
function bufferRow(ctx: AppContext, s: ConversationState): BufferView {
  return bufferView(s, label(ctx, s.conversation));
}

async function listBuffers(ctx: AppContext, limit: number) {
  const partitions = Array.from({ length: ctx.config.partitions }, (_, p) => p);
  const perPartition = await Promise.all(
    partitions.map((p) => ctx.store.listConversations(p, limit)),
  );
  const all = perPartition.flat();
  const truncated = all.length > limit;
  const chosen = all.slice(0, limit);
  const states: ConversationState[] = [];
  for (let i = 0; i < chosen.length; i += INSPECT_CONCURRENCY) {
    const chunk = chosen.slice(i, i + INSPECT_CONCURRENCY);
    states.push(...await Promise.all(chunk.map((c) => ctx.store.inspect(c))));
  }
  const rows = states
    .filter((s) => s.buffer !== null || s.batch !== null)
    .map((s) => bufferRow(ctx, s))
    // Soonest action first; rows with nothing scheduled last.
    .sort((a, b) => (a.dueInMs ?? Infinity) - (b.dueInMs ?? Infinity));
  const nowMs = states[0]?.nowMs ?? await ctx.store.now();
  return {
    buffers: rows,
    count: rows.length,
    truncated,
    nowMs,
    now: new Date(nowMs).toISOString(),
  };
}

async function readJsonBody(req: Request, maxBytes: number): Promise<unknown> {
  const text = await req.text();
  if (new TextEncoder().encode(text).length > maxBytes) {
    throw new LullError("payload_too_large", `body exceeds ${maxBytes} bytes`);
  }
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError("body is not valid JSON");
  }
}

/** Maps thrown errors to the JSON error shape. */
function errorResponse(ctx: AppContext, err: unknown): Response {
  if (err instanceof ValidationError) {
    return jsonError(400, err.code, err.message, err.issues.length ? err.issues : undefined);
  }
  if (err instanceof DeadLetterNotFoundError) return jsonError(404, err.code, err.message);
  if (err instanceof ConversationBusyError) return jsonError(409, err.code, err.message);
  if (err instanceof LockLostError || err instanceof BatchNotFoundError) {
    return jsonError(409, err.code, err.message);
  }
  if (
    err instanceof RedisUnavailableError || err instanceof RedisTimeoutError ||
    err instanceof CircuitOpenError || err instanceof OutboxUnavailableError
  ) {
    return jsonError(503, err.code, err.message, undefined, { "retry-after": "5" });
  }
  if (err instanceof LullError && err.code === "payload_too_large") {
    return jsonError(413, err.code, err.message);
  }
  ctx.logger.error("admin route failed", {
    error: err instanceof Error ? err.message : String(err),
    code: err instanceof LullError ? err.code : undefined,
  });
  return jsonError(500, "internal_error", "the admin request failed; see the function logs");
}

function dashboardResponse(): Response {
  const nonce = crypto.randomUUID().replace(/-/g, "");
  return new Response(renderDashboardHtml(nonce), {
    status: 200,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      "content-security-policy": dashboardCsp(nonce),
    },
  });
}

/** The outbox a purge must clear, or undefined when no database is configured. */
function purgeOutbox(ctx: AdminContext): Pick<Outbox, "purgeConversation"> | undefined {
  const outbox = ctx.outbox?.outbox;
  if (!outbox) return undefined;
  if (!outbox.purgeConversation) {
    throw new LullError("outbox_unsupported", "the configured outbox cannot purge");
  }
  return { purgeConversation: (c) => outbox.purgeConversation!(c) };
}

/** Finds the route for `sub` (the path after `/lull/admin`), or null. */
function route(req: Request, sub: string, ctx: AdminContext, actor: string): Route | null {
  const url = new URL(req.url);
  const segs = sub.split("/").filter((s) => s !== "");
  const get = (run: () => Promise<Response>): Route => ({
    run: (m) =>
      m === "GET" || m === "HEAD" ? run() : Promise.resolve(methodNotAllowed(["GET", "HEAD"])),
  });
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new ValidationError("path segment is not valid percent-encoding");
    }
  };

  if (segs.length === 1 && segs[0] === "buffers") {
    return get(async () => json(200, await listBuffers(ctx, parseLimit(url))));
  }
  if (segs.length === 2 && segs[0] === "conversations" && req.method.toUpperCase() === "DELETE") {
    const conversation = decode(segs[1]!);
    return {
      run: async () => {
        const purged = await audited(
          ctx,
          {
            actor,
            action: "purge_conversation",
            target: label(ctx, conversation),
            subject: await conversationFingerprint(conversation),
          },
          () => purgeConversationEverywhere(ctx.store, purgeOutbox(ctx), conversation),
          (p) => ({ result: "ok", detail: purgeDetail(p) }),
        );
        ctx.logger.info("conversation purged by admin", {
          conversation: label(ctx, conversation),
        });
        return json(200, { purged: true, ...purged, label: label(ctx, conversation) });
      },
    };
  }
  if (segs.length === 2 && segs[0] === "conversations") {
    return get(async () => {
      const state = await ctx.store.inspect(decode(segs[1]!));
      const buffer = state.buffer
        ? { ...state.buffer, messages: labelledMessages(ctx, state.buffer.messages) }
        : null;
      return json(200, { ...state, buffer, label: label(ctx, state.conversation) });
    });
  }
  if (segs.length === 1 && segs[0] === "dlq") {
    return get(async () => {
      const list = await ctx.store.dlqList({ limit: parseLimit(url) });
      return json(200, {
        deadLetters: list.map((d) => deadLetterSummary(d, label(ctx, d.conversation))),
        count: list.length,
      });
    });
  }
  if (segs.length === 2 && segs[0] === "dlq") {
    const batchId = decode(segs[1]!);
    return {
      run: async (m) => {
        if (m === "GET" || m === "HEAD") {
          const d = await ctx.store.dlqGet(batchId);
          if (!d) throw new DeadLetterNotFoundError(batchId);
          return json(200, {
            ...d,
            messages: labelledMessages(ctx, d.messages),
            label: label(ctx, d.conversation),
          });
        }
        if (m === "DELETE") {
          await audited(ctx, { actor, action: "dlq_delete", target: batchId }, async () => {
            if (!(await ctx.store.dlqDelete(batchId))) throw new DeadLetterNotFoundError(batchId);
          });
          ctx.logger.info("dead letter deleted by admin", { batchId });
          return json(200, { deleted: true, batchId });
        }
        return methodNotAllowed(["GET", "HEAD", "DELETE"]);
      },
    };
  }
  if (segs.length === 3 && segs[0] === "dlq" && segs[2] === "requeue") {
    const batchId = decode(segs[1]!);
    return {
      run: async (m) => {
        if (m !== "POST") return methodNotAllowed(["POST"]);
        const { conversation } = await audited(
          ctx,
          { actor, action: "dlq_requeue", target: batchId },
          () => ctx.store.dlqRequeue(batchId),
          (r) => ({ result: "ok", detail: `conversation ${label(ctx, r.conversation)}` }),
        );
        ctx.logger.info("dead letter requeued by admin", {
          batchId,
          conversation: label(ctx, conversation),
        });
        return json(200, {
          requeued: true,
          batchId,
          conversation,
          label: label(ctx, conversation),
        });
      },
    };
  }
  if (segs.length === 1 && segs[0] === "flush") {
    return {
      run: async (m) => {
        if (m !== "POST") return methodNotAllowed(["POST"]);
        const raw = await readJsonBody(req, ctx.config.maxBodyBytes);
        const parsed = flushBodySchema.safeParse(raw ?? {});
        if (!parsed.success) {
          throw new ValidationError(
            'body must be empty or { "conversation": "..." }',
            parsed.error.issues.map((i) => ({
              path: i.path.filter((p): p is string | number => typeof p !== "symbol"),
              message: i.message,
            })),
          );
        }
        const conversation = parsed.data.conversation;
        if (conversation !== undefined) {
          const outcome = await audited(
            ctx,
            {
              actor,
              action: "flush",
              target: label(ctx, conversation),
              subject: await conversationFingerprint(conversation),
            },
            () => ctx.flusher.flushConversation(conversation, { force: true }),
            (o) => flushAuditResult(o),
          );
          return json(200, { conversation, label: label(ctx, conversation), outcome });
        }
        const sweep = await audited(
          ctx,
          { actor, action: "sweep", target: "" },
          () => ctx.flusher.flushDue(),
          (r) => ({ result: "ok", detail: JSON.stringify(r).slice(0, 500) }),
        );
        return json(200, { sweep });
      },
    };
  }
  if (segs.length === 1 && segs[0] === "audit") {
    return get(async () => {
      const records = await ctx.store.readAudit({ limit: parseLimit(url) });
      return json(200, { audit: records, count: records.length });
    });
  }
  if (segs.length === 1 && segs[0] === "stats") {
    return get(async () => json(200, await ctx.store.stats()));
  }
  if (segs.length === 1 && segs[0] === "events") {
    return get(async () => {
      const raw = url.searchParams.get("cursor");
      const cursor = raw === null || raw === "" ? null : decodeEventCursor(raw);
      const limit = parseLimit(url);
      const { events, cursor: next } = await ctx.store.readEvents(cursor, { limit });
      return json(200, {
        events: events.map((e) => eventView(ctx, e)),
        cursor: encodeEventCursor(next),
      });
    });
  }
  if (segs.length === 2 && segs[0] === "events" && segs[1] === "latest") {
    return get(async () => {
      const limit = parseLimit(url, DEFAULT_LATEST_EVENTS);
      const { events, cursor } = await ctx.store.latestEvents({ limit });
      return json(200, {
        events: events.map((e) => eventView(ctx, e)),
        cursor: encodeEventCursor(cursor),
      });
    });
  }
  if (segs.length === 1 && segs[0] === "batches") {
    return get(async () =>
      json(200, await recentBatches(ctx, parseLimit(url, DEFAULT_BATCHES, MAX_BATCHES)))
    );
  }
  return null;
}

/**
 * Handles a request under `/lull/admin` (`path` without any `/functions/v1` prefix, e.g.
 * `/lull/admin/dlq`). See DESIGN.md and the route list in this file.
 */
export async function handleAdmin(
  req: Request,
  path: string,
  ctx: AdminContext,
): Promise<Response> {
  const method = req.method.toUpperCase();
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (trimmed !== PREFIX && !trimmed.startsWith(PREFIX + "/")) {
    return jsonError(404, "not_found", "not found");
  }
  const sub = trimmed.slice(PREFIX.length);

  if (sub === "" || sub === "/dashboard") {
    // Not exposed at all without a token: same 404 as the API.
    if (!ctx.config.adminToken) return jsonError(404, "not_found", "not found");
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed(["GET", "HEAD"]);
    return dashboardResponse();
  }

  const auth = await authorise(req, ctx);
  if (auth.denied) return auth.denied;

  try {
    const r = route(req, sub, ctx, auth.actor);
    if (!r) return jsonError(404, "not_found", `no admin route ${trimmed}`);
    return await r.run(method);
  } catch (err) {
    return errorResponse(ctx, err);
  }
}

function isRenderable(m: AppContext["metrics"]): m is Metrics {
  return typeof (m as Partial<Metrics>).render === "function";
}

/**
 * `GET /lull/metrics`: this isolate's metrics plus the store's deployment-wide gauges, as
 * Prometheus text. A store outage does not fail the scrape: the store gauges are left out and
 * `lull_store_up` reads 0, which is itself the signal to alert on.
 */
export async function handleMetrics(req: Request, ctx: AdminContext): Promise<Response> {
  const { denied } = await authorise(req, ctx);
  if (denied) return denied;
  const method = req.method.toUpperCase();
  if (method !== "GET" && method !== "HEAD") return methodNotAllowed(["GET", "HEAD"]);

  let stats: StatsSnapshot | undefined;
  try {
    stats = await ctx.store.stats();
  } catch (err) {
    ctx.logger.warn("metrics: store stats unavailable", {
      error: err instanceof Error ? err.message : String(err),
    });
  }
  const breakers: Record<string, string> = {};
  for (const [name, breaker] of Object.entries(ctx.breakers ?? {})) {
    if (breaker) breakers[name] = breaker.state;
  }
  let outbox: OutboxDepth | undefined;
  if (ctx.outbox) {
    try {
      outbox = await ctx.outbox.outbox.depth();
    } catch (err) {
      ctx.logger.warn("metrics: outbox depth unavailable", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  // A context built with a plain sink still gets the store gauges.
  const metrics = isRenderable(ctx.metrics) ? ctx.metrics : createMetrics();
  return new Response(metrics.render({ stats, breakers, ...(outbox ? { outbox } : {}) }), {
    status: 200,
    headers: {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}
