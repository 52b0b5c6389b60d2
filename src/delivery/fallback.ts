/**
 * The degraded path when Redis is down: one message delivered directly as a one-message batch.
 * Its batchId is derived from provider + conversation + provider message id, so when the
 * provider redelivers the webhook (after a 503, or on its own), the processor sees the same
 * Idempotency-Key and can drop the repeat.
 */
import { sha256Hex } from "../core/crypto.ts";
import type { Batch, InboundMessage } from "../core/types.ts";
import { decodeEntry, encodeMessage, makeEntry, toIso } from "../store/codec.ts";

/** `fb_` + the first 32 hex chars (128 bits) of SHA-256(provider \n conversation \n id). */
export async function fallbackBatchId(message: InboundMessage): Promise<string> {
  const hex = await sha256Hex(`${message.provider}\n${message.conversation}\n${message.id}`);
  return `fb_${hex.slice(0, 32)}`;
}

/**
 * The one-message batch for `message`: reason `fallback`, `degraded: true`, attempt 1, fence 0
 * (no fencing counter is reachable without Redis; 0 sorts before every real fence).
 */
export async function buildFallbackBatch(message: InboundMessage, nowMs: number): Promise<Batch> {
  const at = toIso(nowMs);
  return {
    batchId: await fallbackBatchId(message),
    conversation: message.conversation,
    fence: 0,
    attempt: 1,
    reason: "fallback",
    degraded: true,
    firstAt: at,
    lastAt: at,
    text: message.text,
    // Through the buffer codec, so a degraded message has exactly the shape of a buffered one.
    messages: [decodeEntry(makeEntry(nowMs, encodeMessage(message)))],
  };
}
