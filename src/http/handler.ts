/**
 * The `lull` function's HTTP handler: Web APIs only (Request, Response, URL, Headers), so the
 * same code serves Supabase Edge Runtime, plain Deno and in-process tests on Node.
 *
 * Order of checks on ingest routes, cheapest and least revealing first: route (404), method
 * (405), secret configured (404), content type (415), body under the cap while streaming
 * (413), caller (401), payload (400, nothing buffered), then buffering (202/200, or 503).
 * Every failure is JSON `{ error: { code, message, issues? } }`; nothing ever answers with a
 * stack trace.
 */
import { splitTokens } from "../core/audit.ts";
import type { CircuitBreaker } from "../core/breaker.ts";
import { ConfigError, LullError, ValidationError } from "../core/errors.ts";
import { assertIdentities } from "../core/identity.ts";
import type { Provider, StoreFitness } from "../core/types.ts";
import { providers } from "../providers/index.ts";
import type { ProviderRequest } from "../providers/types.ts";
import { handleAdmin, handleMetrics } from "./admin.ts";
import { bearerMatches } from "../core/bearer.ts";
import { readBodyCapped } from "./body.ts";
import type { ServiceContext } from "./context.ts";
import { httpStatusOf } from "./errors.ts";
import { ingestMessages } from "./ingest.ts";
import type { OutboxReplayer, ReplayCounts } from "../outbox/replay.ts";
import { HEARTBEAT_MS, settledWakeAt, type Wakeup, type WakeupStatus } from "../wakeup/wakeup.ts";
import { json, jsonError } from "../core/respond.ts";
import { matchRoute, type RouteMatch, type RouteName } from "./routes.ts";

/** A request handler, as `Deno.serve` takes it. */
export type Handler = (req: Request) => Promise<Response>;

const PROVIDER_ROUTES: Partial<Record<RouteName, Provider>> = {
  messages: "generic",
  webhook_whatsapp: "whatsapp",
  webhook_telegram: "telegram",
  webhook_twilio: "twilio",
};

/** The media type each provider posts (Twilio posts forms, the others JSON). */
const MEDIA_TYPES: Record<Provider, string> = {
  generic: "application/json",
  whatsapp: "application/json",
  telegram: "application/json",
  twilio: "application/x-www-form-urlencoded",
};

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

/** Builds the handler over a fully wired context (see src/http/app.ts). */
export function createHandler(ctx: ServiceContext): Handler {
  return async (req) => {
    let route: RouteName = "not_found";
    let res: Response;
    try {
      const url = new URL(req.url);
      const match = matchRoute(url.pathname);
      if (match) route = match.name;
      res = await dispatch(ctx, req, url, match);
    } catch (err) {
      res = errorResponse(ctx, err, route);
    }
    ctx.metrics.inc("lull_http_requests_total", { route, status: String(res.status) });
    return res;
  };
}

async function dispatch(
  ctx: ServiceContext,
  req: Request,
  url: URL,
  match: RouteMatch | null,
): Promise<Response> {
  if (!match) return notFound();
  const method = req.method.toUpperCase();
  if (match.name === "admin") return await handleAdmin(req, match.path, ctx);

  const provider = PROVIDER_ROUTES[match.name];
  let account: string | undefined;
  if (provider && match.param !== undefined) {
    try {
      account = decodeURIComponent(match.param);
    } catch {
      return notFound();
    }
  }
  // A provider whose secret is unset (or a bot route naming no configured bot) is not exposed
  // at all: 404 whatever the method.
  if (provider && !providers[provider].enabled(ctx.config, undefined, account)) return notFound();
  if (match.methods.length > 0 && !match.methods.includes(method)) {
    return jsonError(405, "method_not_allowed", `use ${match.methods.join(" or ")}`, undefined, {
      allow: match.methods.join(", "),
    });
  }
  if (provider) return await providerRoute(ctx, req, url, provider, method, account);
  switch (match.name) {
    case "flush":
      return await flushRoute(ctx, req);
    case "conversation":
      return await conversationRoute(ctx, req, match.param ?? "");
    case "health":
      return await healthRoute(ctx);
    case "metrics":
      return await handleMetrics(req, ctx);
    default:
      return notFound();
  }
}

function notFound(): Response {
  return jsonError(404, "not_found", "no such route");
}

/** Lower-cased media type without parameters, or "" when absent. */
function mediaType(headers: Headers): string {
  return (headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

async function providerRoute(
  ctx: ServiceContext,
  req: Request,
  url: URL,
  provider: Provider,
  method: string,
  account: string | undefined,
): Promise<Response> {
  const adapter = providers[provider];
  if (!adapter.enabled(ctx.config, method, account)) return notFound();
  const nowMs = ctx.clock.now();
  let rawBody: Uint8Array = new Uint8Array(0);
  if (method === "POST") {
    const wanted = MEDIA_TYPES[provider];
    const got = mediaType(req.headers);
    if (got !== wanted) {
      await req.body?.cancel().catch(() => {});
      return jsonError(415, "unsupported_media_type", `Content-Type must be ${wanted}`);
    }
    rawBody = await readBodyCapped(req, ctx.config.maxBodyBytes, ctx.config.bodyTimeoutMs);
  }
  const preq: ProviderRequest = {
    method,
    url,
    headers: req.headers,
    rawBody,
    nowMs,
    ...(account !== undefined ? { account } : {}),
  };
  if (!(await adapter.authenticate(preq, ctx.config))) {
    return jsonError(401, "unauthorized", "caller could not be authenticated");
  }
  // parse validates the whole request before anything is buffered. A multi-message payload
  // (WhatsApp) names the messages it cannot use in `rejected`; the others are still buffered.
  const parsed = await adapter.parse(preq, ctx.config);
  if (parsed.kind === "response") return parsed.response;
  const invalid = parsed.rejected.filter((r) => r.reason === "invalid");
  const stale = parsed.rejected.length - invalid.length;
  // Nothing usable and something malformed: the payload is bad, say so (nothing is buffered).
  if (parsed.messages.length === 0 && invalid.length > 0) {
    throw new ValidationError(
      `invalid ${provider} webhook payload`,
      invalid.flatMap((r) => r.issues),
    );
  }
  if (parsed.rejected.length > 0) reportRejected(ctx, provider, invalid.length, stale);
  assertIdentities(parsed.messages, parsed.messages.length > 1 ? ["messages"] : []);
  const result = await ingestMessages(ctx, provider, parsed.messages);
  if (!result.ok) {
    return jsonError(
      result.code === "quota_exceeded" ? 429 : 503,
      result.code,
      result.message,
      undefined,
      {
        "retry-after": String(result.retryAfterSec),
      },
    );
  }
  switch (provider) {
    case "generic":
      return json(202, {
        accepted: result.accepted,
        duplicates: result.duplicates,
        ...(result.fallbacks > 0 ? { degraded: result.fallbacks } : {}),
        ...(result.outboxed > 0 ? { outboxed: result.outboxed } : {}),
        buffers: result.buffers,
      });
    case "twilio":
      // Twilio renders whatever TwiML we answer; an empty <Response/> sends no reply message.
      return new Response(EMPTY_TWIML, {
        status: 200,
        headers: { "content-type": "text/xml; charset=utf-8" },
      });
    default:
      // WhatsApp and Telegram only look at the status; the body helps humans debugging. A
      // rejected message is answered 200 too: both providers redeliver anything else (Meta for
      // days), and neither a malformed message nor a replay becomes buffer-able by retrying.
      return json(200, {
        ok: true,
        accepted: result.accepted,
        duplicates: result.duplicates,
        ...(result.outboxed > 0 ? { outboxed: result.outboxed } : {}),
        ignored: parsed.ignored,
        ...(invalid.length > 0
          ? { rejected: invalid.length, issues: invalid.flatMap((r) => r.issues) }
          : {}),
        ...(stale > 0 ? { stale } : {}),
      });
  }
}

/** Logs and counts messages a webhook carried that were not buffered (answered 200). */
function reportRejected(ctx: ServiceContext, provider: Provider, invalid: number, stale: number) {
  if (invalid > 0) {
    ctx.metrics.inc("lull_messages_refused_total", { provider, reason: "invalid" }, invalid);
  }
  if (stale > 0) {
    ctx.metrics.inc("lull_messages_refused_total", { provider, reason: "stale" }, stale);
  }
  ctx.logger.warn("webhook messages refused (answered 200, not buffered)", {
    provider,
    invalid,
    stale,
  });
}

async function flushRoute(ctx: ServiceContext, req: Request): Promise<Response> {
  const secret = ctx.config.cronSecret;
  if (!secret) return notFound();
  if (!bearerMatches(req.headers, [secret])) {
    return jsonError(401, "unauthorized", "bearer LULL_CRON_SECRET required");
  }
  await req.body?.cancel().catch(() => {});
  ctx.metrics.inc("lull_flush_runs_total", { trigger: "sweep" });
  // The outbox first: its rows are older than anything buffered since, and replayed bursts
  // then flush with the rest (by the timers the replay armed, or a later sweep).
  const version = ctx.wakeup ? await wakeupVersion(ctx, ctx.wakeup) : null;
  const outbox = ctx.outbox ? await sweepOutbox(ctx, ctx.outbox) : undefined;
  const counts = await ctx.flusher.flushDue();
  if (ctx.wakeup && version !== null) {
    // Rows left in the outbox need the trigger back soon, whatever Redis says.
    const outboxLeft = outbox !== undefined && (Boolean(outbox.stopped) || (outbox.depth ?? 0) > 0);
    const next = settledWakeAt(
      counts.nextWakeAtMs,
      outboxLeft,
      ctx.clock.now(),
      ctx.config.sweepIntervalMs,
    );
    await ctx.wakeup.settle(version, next).catch((error) =>
      ctx.logger.warn("could not settle the durable wake-up; the heartbeat covers it", {
        error: error instanceof Error ? error.message : String(error),
      })
    );
  }
  return json(200, outbox ? { ...counts, outbox } : counts);
}

/**
 * The durable trigger (pg_cron reading lull.wakeup): when it last called the sweep. It calls at
 * least once a heartbeat; silence for three heartbeats, or work due for as long with no call
 * since, means Cron stopped ("no sweep seen": health degraded, one alert).
 */
async function triggerHealth(
  ctx: ServiceContext,
  wakeup: Wakeup,
): Promise<
  {
    dueAt: string | null;
    firedAt: string | null;
    sweptAt: string | null;
    problem?: string;
  } | null
> {
  let status: WakeupStatus;
  try {
    status = await wakeup.status();
  } catch {
    return null; // the outbox check already reports an unreachable database
  }
  const iso = (v: number | null) => (v === null ? null : new Date(v).toISOString());
  const stale = 3 * HEARTBEAT_MS;
  let problem: string | undefined;
  if (status.firedAtMs !== null && status.nowMs - status.firedAtMs > stale) {
    problem = `no sweep seen: the durable trigger (Cron) last fired ${
      Math.round((status.nowMs - status.firedAtMs) / 1000)
    } s ago`;
  } else if (
    status.dueAtMs !== null && status.nowMs - status.dueAtMs > stale &&
    (status.firedAtMs === null || status.firedAtMs < status.dueAtMs)
  ) {
    problem = "no sweep seen: work has been due for minutes and the durable trigger (Cron) " +
      "has not called the sweep; check the lull-flush Cron job";
  }
  if (problem) void ctx.alerter.alert("no_sweep", problem, {});
  // Not a silent trigger, but every wake-up falls back to Redis's index (and its commands).
  if (!problem && status.missingMigration) {
    problem = `the migration ${status.missingMigration} is not applied (supabase db push): ` +
      "wake-ups fall back to the Redis wake index";
  }
  return {
    dueAt: iso(status.dueAtMs),
    firedAt: iso(status.firedAtMs),
    sweptAt: iso(status.sweptAtMs),
    ...(problem ? { problem } : {}),
  };
}

/** The wake-up's version before the sweep, or null when Postgres does not answer. */
async function wakeupVersion(ctx: ServiceContext, wakeup: Wakeup): Promise<string | null> {
  try {
    return await wakeup.version();
  } catch (error) {
    ctx.logger.warn("could not read the durable wake-up; the heartbeat covers it", {
      error: error instanceof Error ? error.message : String(error),
    });
    return null;
  }
}

/** The sweep's outbox pass: a bounded replay, then the depth (and the stuck alert). */
async function sweepOutbox(
  ctx: ServiceContext,
  replayer: OutboxReplayer,
): Promise<ReplayCounts & { depth?: number; oldestAgeMs?: number | null }> {
  ctx.metrics.inc("lull_outbox_replays_total", { trigger: "sweep" });
  const counts = await replayer.replayBatch({ now: () => ctx.clock.now() });
  // Nothing was there (the common case): no depth query.
  if (
    counts.appended + counts.duplicates + counts.locked + counts.errors === 0 && !counts.stopped
  ) {
    return counts;
  }
  const depth = await outboxDepth(ctx, replayer);
  return depth.ok ? { ...counts, depth: depth.depth, oldestAgeMs: depth.oldestAgeMs } : counts;
}

type OutboxHealth =
  | { ok: true; depth: number; oldestAgeMs: number | null; stuck: boolean }
  | { ok: false; error: string };

/**
 * Reads the outbox depth; rows older than `outboxStuckMs` make it stuck, which alerts (rate
 * limited per kind) like any other stuck delivery path.
 */
async function outboxDepth(ctx: ServiceContext, replayer: OutboxReplayer): Promise<OutboxHealth> {
  try {
    const { depth, oldestAgeMs } = await replayer.outbox.depth();
    const stuck = oldestAgeMs !== null && oldestAgeMs > ctx.outboxStuckMs;
    if (stuck) {
      ctx.logger.warn("outbox is stuck: rows are not being replayed", { depth, oldestAgeMs });
      void ctx.alerter.alert(
        "outbox_stuck",
        `the outbox holds ${depth} message(s), the oldest waiting ${
          Math.round(oldestAgeMs / 1000)
        } s; check Redis and the sweep (POST /lull/flush)`,
        { depth, oldestAgeMs },
      );
    }
    return { ok: true, depth, oldestAgeMs, stuck };
  } catch (err) {
    return { ok: false, error: err instanceof LullError ? err.code : "outbox_error" };
  }
}

async function conversationRoute(
  ctx: ServiceContext,
  req: Request,
  param: string,
): Promise<Response> {
  const accepted = [
    ...splitTokens(ctx.config.adminToken),
    ...ctx.config.processorSecrets,
  ];
  if (accepted.length === 0) return notFound();
  if (!bearerMatches(req.headers, accepted)) {
    return jsonError(401, "unauthorized", "bearer LULL_ADMIN_TOKEN or a processor secret required");
  }
  let conversation: string;
  try {
    conversation = decodeURIComponent(param);
  } catch {
    throw new ValidationError("conversation key is not valid percent-encoding", [
      { path: ["conversation"], message: "invalid percent-encoding" },
    ]);
  }
  if (conversation.length === 0 || conversation.length > 512) {
    throw new ValidationError("conversation key must be 1-512 characters", [
      { path: ["conversation"], message: "must be 1-512 characters" },
    ]);
  }
  assertIdentities([{ conversation, id: "-" }]);
  return json(200, await ctx.store.inspect(conversation));
}

function breakerView(b: CircuitBreaker): { state: string; failures: number } {
  return { state: b.state, failures: b.failures };
}

async function healthRoute(ctx: ServiceContext): Promise<Response> {
  const started = ctx.clock.now();
  let storeOk = true;
  let storeError: string | undefined;
  let fitness: StoreFitness | null = null;
  const reasons: string[] = [];
  try {
    await ctx.store.ping();
    fitness = await ctx.store.fitness();
  } catch (err) {
    storeOk = false;
    storeError = err instanceof LullError ? err.code : "store_error";
    // A misconfiguration is not a secret and tells the operator what to fix.
    if (err instanceof ConfigError) reasons.push(...err.issues.map((i) => i.message));
  }
  const processorConfigured = ctx.processorKind !== "none";
  if (!processorConfigured) reasons.push("no processor configured");
  reasons.push(...(fitness?.problems ?? []));
  const outbox = ctx.outbox ? await outboxDepth(ctx, ctx.outbox) : null;
  // An outbox that is unreachable or stuck leaves ingest working but degraded.
  if (outbox !== null && !outbox.ok) reasons.push("the outbox database is unreachable");
  if (outbox !== null && outbox.ok && outbox.stuck) reasons.push("the outbox is stuck");
  const trigger = ctx.wakeup ? await triggerHealth(ctx, ctx.wakeup) : null;
  if (trigger?.problem) reasons.push(trigger.problem);
  const body = {
    status: storeOk ? (reasons.length === 0 ? "ok" : "degraded") : "down",
    ...(reasons.length > 0 ? { reasons } : {}),
    store: {
      kind: ctx.storeKind,
      ok: storeOk,
      latencyMs: ctx.clock.now() - started,
      ...(storeError ? { error: storeError } : {}),
      ...(fitness
        ? {
          evictionPolicy: fitness.evictionPolicy,
          appendOnly: fitness.appendOnly,
          ...(fitness.notes.length > 0 ? { notes: fitness.notes } : {}),
        }
        : {}),
    },
    breakers: {
      redis: breakerView(ctx.breakers.redis),
      processor: breakerView(ctx.breakers.processor),
      ...(ctx.breakers.postgres ? { postgres: breakerView(ctx.breakers.postgres) } : {}),
    },
    processor: { configured: processorConfigured, kind: ctx.processorKind },
    outbox: outbox === null ? { configured: false } : { configured: true, ...outbox },
    trigger: trigger === null ? { configured: false } : { configured: true, ...trigger },
    checkedAt: new Date(ctx.clock.now()).toISOString(),
  };
  return json(storeOk ? 200 : 503, body, { "cache-control": "no-store" });
}

/** Maps anything thrown by a route to a JSON answer; unknown errors become a coded 500. */
function errorResponse(ctx: ServiceContext, err: unknown, route: RouteName): Response {
  const mapped = httpStatusOf(err);
  if (!mapped) {
    ctx.logger.error("unhandled error", {
      route,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      code: err instanceof LullError ? err.code : undefined,
    });
    return jsonError(500, "internal_error", "internal error");
  }
  const e = err as LullError;
  if (err instanceof ConfigError) {
    // Nothing was buffered; the provider retries once the operator fixes the configuration.
    ctx.logger.error("refusing to run: invalid configuration", { route, error: err.message });
  }
  // Only reached for a store error when nothing was buffered or delivered (ingest handles its
  // own fallback): the message says what to do, not which part failed.
  const message = mapped.status === 503 && !(err instanceof ConfigError)
    ? "the buffer is unavailable; retry"
    : e.message;
  const issues = err instanceof ValidationError ? err.issues : undefined;
  return jsonError(mapped.status, e.code, message, issues, mapped.headers);
}
