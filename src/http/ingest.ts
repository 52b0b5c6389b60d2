/**
 * Buffers a validated request's messages, one `store.append` (one script, one round trip)
 * each. The order of last resorts when Redis cannot take a message:
 *
 * 1. Redis: appended / duplicate, durably buffered (or already was).
 * 2. The durable outbox (Postgres), when one is configured: any append failure other than a
 *    validation error (unavailable, breaker open, timeout or another ambiguous answer) writes
 *    the message there, insert-or-ignore by (provider, conversation, id), and it is answered
 *    2xx once the insert committed, with `flushAt: null`. The replay appends it later through
 *    the same `store.append`, so a message whose timed-out append did commit is buffered once.
 * 3. No database configured: direct one-message delivery (`degraded: true`) for a proven "not
 *    sent" (unavailable, breaker open). It may duplicate: a provider redelivery after Redis
 *    returns is buffered and delivered again under another batchId. An ambiguous answer
 *    (timeout) is 503 instead, since delivering it directly could deliver it twice.
 * 4. Otherwise 503, so the provider retries. Redis and the outbox both down: 503, nothing
 *    written.
 *
 * Order: while a conversation has rows in the outbox, a new message for it must not overtake
 * them. So when an outbox is configured every append first asks it whether the conversation has
 * rows (an index lookup; the checks of concurrent requests share one statement, each answered
 * by a statement sent after it asked); if so the message is written behind them and the
 * conversation is replayed at once, the new message last. An outbox that cannot answer counts as "no rows":
 * Postgres down alone does not change the normal path.
 */
import {
  CircuitOpenError,
  LullError,
  RedisTimeoutError,
  RedisUnavailableError,
  ValidationError,
} from "../core/errors.ts";
import type { AppendResult, InboundMessage, Provider } from "../core/types.ts";
import { buildFallbackBatch } from "../delivery/fallback.ts";
import { maskConversation } from "../core/mask.ts";
import type { ConversationReplay, OutboxReplayer } from "../outbox/replay.ts";
import type { ServiceContext } from "./context.ts";

/** One conversation's buffer after the request, as the 202 answer lists it. */
export interface BufferSummary {
  conversation: string;
  size: number;
  /** ISO time the buffer becomes claimable; null when nothing is buffered (fallback). */
  flushAt: string | null;
}

/** What a request's messages came to. */
export type IngestResult =
  | {
    ok: true;
    accepted: number;
    duplicates: number;
    /** Of `accepted`, how many were delivered directly because Redis was down. */
    fallbacks: number;
    /** Of `accepted`, how many wait in the durable outbox (Redis down or ambiguous). */
    outboxed: number;
    buffers: BufferSummary[];
  }
  | {
    ok: false;
    /** Why the request gets 503 (429 for `quota_exceeded`). */
    code: "redis_timeout" | "fallback_failed" | "outbox_failed" | "quota_exceeded";
    message: string;
    retryAfterSec: number;
  };

/** Buffers `messages` in order; see the module comment for the failure rules. */
export async function ingestMessages(
  ctx: ServiceContext,
  provider: Provider,
  messages: InboundMessage[],
): Promise<IngestResult> {
  let accepted = 0;
  let duplicates = 0;
  let fallbacks = 0;
  let outboxed = 0;
  const buffers = new Map<string, BufferSummary>();
  const timers: [string, AppendResult][] = [];
  let failure: IngestResult | null = null;
  const replayer = ctx.outbox;

  // With the Redis breaker open, and after one failed append in this request, messages skip
  // Redis (and the outbox's "rows pending?" check): no request waits on a dead Redis, and
  // none pays for a replay attempt that cannot succeed.
  let redisDown = !ctx.breakers.redis.allowsCall;
  for (const message of messages) {
    const conversation = message.conversation;
    let result: AppendResult | null = null;
    // Rows of this conversation still wait in the outbox: the message queues behind them.
    let queueBehind = false;
    if (!redisDown) {
      queueBehind = replayer ? await hasPendingRows(ctx, replayer, conversation) : false;
      if (!queueBehind) {
        try {
          result = await ctx.store.append(message);
        } catch (err) {
          if (err instanceof ValidationError) throw err;
          if (replayer) {
            // Unavailable, or an answer we cannot read (it may have committed): either way the
            // outbox takes it, and the replay's dedup makes "it was in Redis after all" harmless.
            ctx.logger.warn("append failed; writing the message to the outbox", {
              conversation: maskConversation(conversation, ctx.config.logPii),
              error: err instanceof LullError ? err.code : String(err),
            });
          } else if (err instanceof RedisTimeoutError) {
            ctx.logger.warn("append timed out; answering 503 so the provider retries", {
              conversation: maskConversation(conversation, ctx.config.logPii),
            });
            failure = {
              ok: false,
              code: "redis_timeout",
              message: "the buffer did not confirm in time; retry",
              retryAfterSec: 1,
            };
            break;
          } else if (!(err instanceof RedisUnavailableError || err instanceof CircuitOpenError)) {
            throw err;
          }
          redisDown = true;
        }
      }
    }

    if (result === null && replayer) {
      let status: "written" | "duplicate" | null = null;
      try {
        status = (await replayer.outbox.write(message)).status;
        ctx.metrics.inc("lull_outbox_writes_total", { result: status });
        // The durable trigger must come back to replay it (the sweep replays the outbox).
        if (ctx.wakeup) ctx.waitUntil(ctx.wakeup.lower(ctx.clock.now()).catch(() => {}));
      } catch (err) {
        ctx.metrics.inc("lull_outbox_writes_total", { result: "failed" });
        if (queueBehind) {
          // The outbox went away between the check and the write. Postgres down alone must
          // not stop the normal path: buffer directly (the rows it holds replay later).
          try {
            result = await ctx.store.append(message);
          } catch (appendErr) {
            if (appendErr instanceof ValidationError) throw appendErr;
            redisDown = true;
          }
        }
        if (result === null) {
          ctx.logger.error("redis and the outbox are both unavailable: answering 503", {
            conversation: maskConversation(conversation, ctx.config.logPii),
            error: err instanceof LullError ? err.code : String(err),
          });
          void ctx.alerter.alert(
            "outbox_failed",
            "Redis and the outbox (Postgres) are both unavailable; webhooks get 503",
            { error: err instanceof Error ? err.message.slice(0, 200) : String(err) },
          );
          failure = {
            ok: false,
            code: "outbox_failed",
            message: "the buffer and the outbox are unavailable; retry",
            retryAfterSec: 5,
          };
          break;
        }
      }
      if (status !== null) {
        if (status === "duplicate") duplicates++;
        else {
          accepted++;
          outboxed++;
        }
        let summary: BufferSummary = {
          conversation,
          size: buffers.get(conversation)?.size ?? 0,
          flushAt: null,
        };
        if (!redisDown) {
          // Redis answers: replay the conversation now, the new message last.
          const replay = await replayNow(ctx, replayer, conversation);
          if (replay?.status === "replayed") {
            if (replay.redisDown) redisDown = true;
            if (replay.last && !replay.remaining) {
              summary = bufferSummary(conversation, replay.last);
            }
          }
          if (replay?.status !== "replayed" || replay.remaining) replayer.markUsed();
        } else {
          replayer.markUsed();
        }
        buffers.set(conversation, summary);
        continue;
      }
    }

    if (result === null) {
      const delivered = await deliverFallback(ctx, message);
      if (!delivered) {
        failure = {
          ok: false,
          code: "fallback_failed",
          message: "the buffer is unavailable and direct delivery failed; retry",
          retryAfterSec: 5,
        };
        break;
      }
      accepted++;
      fallbacks++;
      if (!buffers.has(conversation)) {
        buffers.set(conversation, { conversation, size: 0, flushAt: null });
      }
      continue;
    }
    if (result.status === "refused") {
      // Over a quota: refused before it was acknowledged (429, Retry-After: the window's end).
      // Messages of this request buffered before it are duplicates on the provider's retry.
      const scope = result.refused?.scope ?? "conversation";
      ctx.metrics.inc("lull_messages_refused_total", { provider, reason: `quota_${scope}` });
      ctx.logger.warn("message over its quota: answered 429", {
        conversation: maskConversation(conversation, ctx.config.logPii),
        scope,
      });
      failure = {
        ok: false,
        code: "quota_exceeded",
        message: scope === "provider"
          ? `too many ${provider} messages this minute (LULL_PROVIDER_QUOTAS); retry later`
          : "too many messages from this conversation this minute " +
            "(LULL_MAX_MESSAGES_PER_MINUTE); retry later",
        retryAfterSec: Math.max(1, Math.ceil((result.refused?.retryAfterMs ?? 60_000) / 1000)),
      };
      break;
    }
    if (result.status === "duplicate") duplicates++;
    else accepted++;
    buffers.set(conversation, bufferSummary(conversation, result));
    if (result.armTimer) timers.push([conversation, result]);
    // The first healthy append after this isolate used the outbox drains it in the background.
    if (replayer?.takeUsed()) {
      ctx.metrics.inc("lull_outbox_replays_total", { trigger: "append" });
      ctx.waitUntil(replayer.replayBatch({ now: () => ctx.clock.now() }));
    }
  }

  // Timers for messages already buffered are armed even when a later message failed: those
  // messages are in Redis and their burst must still flush.
  for (const [conversation, result] of timers) {
    ctx.metrics.inc("lull_flush_runs_total", { trigger: "timer" });
    ctx.waitUntil(ctx.flusher.runTimer(conversation, result));
  }
  // A 503 answers the whole request: its messages are not "accepted" (the provider will
  // redeliver them, and the buffered ones then count as duplicates).
  if (failure) return failure;
  if (accepted > 0) ctx.metrics.inc("lull_messages_accepted_total", { provider }, accepted);
  if (duplicates > 0) ctx.metrics.inc("lull_messages_duplicate_total", { provider }, duplicates);
  return { ok: true, accepted, duplicates, fallbacks, outboxed, buffers: [...buffers.values()] };
}

function bufferSummary(conversation: string, result: AppendResult): BufferSummary {
  return {
    conversation,
    size: result.size,
    flushAt: result.flushAtMs === null ? null : new Date(result.flushAtMs).toISOString(),
  };
}

/**
 * Whether the conversation has rows in the outbox. An outbox that cannot answer counts as
 * "no": Postgres down alone must not change the normal path (its rows, if any, replay later).
 */
async function hasPendingRows(
  ctx: ServiceContext,
  replayer: OutboxReplayer,
  conversation: string,
): Promise<boolean> {
  try {
    return await replayer.outbox.hasPending(conversation);
  } catch (err) {
    ctx.logger.debug("outbox check failed; buffering directly", {
      error: err instanceof LullError ? err.code : String(err),
    });
    return false;
  }
}

/** How long a request waits for another replayer holding its conversation. */
const REPLAY_WAIT_MS = 2000;

/** Replays one conversation for the request that queued behind its rows; null on failure. */
async function replayNow(
  ctx: ServiceContext,
  replayer: OutboxReplayer,
  conversation: string,
): Promise<ConversationReplay | null> {
  ctx.metrics.inc("lull_outbox_replays_total", { trigger: "conversation" });
  try {
    return await replayer.replayConversation(conversation, { waitMs: REPLAY_WAIT_MS });
  } catch (err) {
    ctx.logger.warn("outbox replay of the conversation failed; the sweep retries it", {
      conversation: maskConversation(conversation, ctx.config.logPii),
      error: err instanceof LullError ? err.code : String(err),
    });
    return null;
  }
}

/**
 * Delivers one message directly (degraded). Goes through the processor breaker like the
 * flusher does, so a down processor is not hammered by every webhook. True when delivered.
 */
async function deliverFallback(ctx: ServiceContext, message: InboundMessage): Promise<boolean> {
  const conversation = maskConversation(message.conversation, ctx.config.logPii);
  const batch = await buildFallbackBatch(message, ctx.clock.now());
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error("delivery timed out")),
    ctx.config.deliveryTimeoutMs,
  );
  let outcome: string;
  let error: string | undefined;
  try {
    const result = await ctx.breakers.processor.run(
      () => ctx.processor(batch, controller.signal),
      (o) => o.kind === "retry",
    );
    outcome = result.kind;
    if (result.kind === "retry" || result.kind === "permanent") error = result.error;
  } catch (err) {
    outcome = err instanceof CircuitOpenError ? "breaker_open" : "error";
    error = err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
  const delivered = outcome === "delivered";
  ctx.metrics.inc("lull_fallback_total", { result: delivered ? "delivered" : "failed" });
  if (delivered) {
    ctx.logger.warn("redis unavailable: message delivered directly (degraded)", {
      conversation,
      batchId: batch.batchId,
    });
  } else {
    // A permanent answer cannot go to the DLQ (Redis is down), and a 425 has nothing to merge
    // with: both are answered 503 so the provider keeps the message and retries later.
    ctx.logger.error("redis unavailable and direct delivery failed: answering 503", {
      conversation,
      batchId: batch.batchId,
      outcome,
      error,
    });
    void ctx.alerter.alert(
      "fallback_failed",
      "Redis is unavailable and direct delivery to the processor failed; webhooks get 503",
      { conversation, outcome, error: (error ?? "").slice(0, 200) },
    );
  }
  return delivered;
}
