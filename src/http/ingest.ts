/**
 * Buffers a validated request's messages, one `store.append` (one script, one round trip)
 * each, and falls back to direct delivery when Redis is unavailable.
 *
 * Outcomes per message:
 * - appended / duplicate: durably buffered (or already was).
 * - RedisUnavailableError or CircuitOpenError: nothing was written, so the message is delivered
 *   directly as a degraded one-message batch; if that delivery fails too, the request is 503.
 * - RedisTimeoutError: the append script may have committed. Delivering it directly as well
 *   could deliver it twice (once degraded, once in its batch) under two different batchIds, so
 *   the answer is 503: the provider redelivers, and the dedup set (`seen`) makes the retry a
 *   duplicate if the first append did commit. Exactly-once beats availability here.
 */
import { CircuitOpenError, RedisTimeoutError, RedisUnavailableError } from "../core/errors.ts";
import type { AppendResult, InboundMessage, Provider } from "../core/types.ts";
import { buildFallbackBatch } from "../delivery/fallback.ts";
import { maskConversation } from "../observability/mask.ts";
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
    buffers: BufferSummary[];
  }
  | {
    ok: false;
    /** Why the request gets 503. */
    code: "redis_timeout" | "fallback_failed";
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
  const buffers = new Map<string, BufferSummary>();
  const timers: [string, AppendResult][] = [];
  let failure: IngestResult | null = null;

  // After one "unavailable" in this request, later messages go straight to the fallback: no
  // request waits on a dead Redis more than once.
  let redisDown = false;
  for (const message of messages) {
    let result: AppendResult | null = null;
    if (!redisDown) {
      try {
        result = await ctx.store.append(message);
      } catch (err) {
        if (err instanceof RedisTimeoutError) {
          ctx.logger.warn("append timed out; answering 503 so the provider retries", {
            conversation: maskConversation(message.conversation, ctx.config.logPii),
          });
          failure = {
            ok: false,
            code: "redis_timeout",
            message: "the buffer did not confirm in time; retry",
            retryAfterSec: 1,
          };
          break;
        }
        if (!(err instanceof RedisUnavailableError || err instanceof CircuitOpenError)) throw err;
        redisDown = true;
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
      if (!buffers.has(message.conversation)) {
        buffers.set(message.conversation, {
          conversation: message.conversation,
          size: 0,
          flushAt: null,
        });
      }
      continue;
    }
    if (result.status === "duplicate") duplicates++;
    else accepted++;
    buffers.set(message.conversation, {
      conversation: message.conversation,
      size: result.size,
      flushAt: result.flushAtMs === null ? null : new Date(result.flushAtMs).toISOString(),
    });
    if (result.armTimer) timers.push([message.conversation, result]);
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
  return { ok: true, accepted, duplicates, fallbacks, buffers: [...buffers.values()] };
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
