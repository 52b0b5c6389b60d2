/**
 * Retry timing: exponential backoff with full jitter, honouring a processor's `Retry-After`.
 * Pure functions; randomness and "now" are passed in so tests pin them.
 */
import type { Random } from "./clock.ts";

/** Inputs of {@link backoffDelayMs}. */
export interface BackoffInput {
  /** The attempt that just failed: 1 for the first delivery. Values below 1 count as 1. */
  attempt: number;
  /** Ceiling of the first retry's delay (LULL_RETRY_BASE_MS). */
  baseMs: number;
  /** Largest delay ever returned (LULL_RETRY_MAX_MS). */
  maxMs: number;
  /** Uniform random in [0, 1). */
  random: Random;
  /** What the processor asked for via `Retry-After`, if anything. */
  retryAfterMs?: number;
}

/**
 * Delay before the next attempt, in ms.
 *
 * Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a uniform pick in
 * `[0, min(maxMs, baseMs * 2^(attempt-1))]`, so a fleet of flushers that failed together does
 * not retry together. A `Retry-After` raises the floor: the delay is at least `retryAfterMs`,
 * but never above `maxMs`, so a buggy or hostile header cannot park a batch for days (the
 * batch would then also blow through LULL_RETRY_MAX_AGE_MS without a single retry).
 */
export function backoffDelayMs(input: BackoffInput): number {
  const baseMs = Math.max(0, input.baseMs);
  const maxMs = Math.max(0, input.maxMs);
  const attempt = Number.isFinite(input.attempt) ? Math.max(1, Math.floor(input.attempt)) : 1;
  // 2^(attempt-1) overflows to Infinity for huge attempts; min() keeps it finite.
  const ceilingMs = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  const r = clampUnit(input.random());
  const jitteredMs = Math.min(ceilingMs, Math.floor(r * (ceilingMs + 1)));
  const retryAfterMs = input.retryAfterMs;
  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs) || retryAfterMs <= 0) {
    return jitteredMs;
  }
  return Math.max(jitteredMs, Math.min(Math.ceil(retryAfterMs), maxMs));
}

/** A misbehaving random source must not produce negative or over-cap delays. */
function clampUnit(x: number): number {
  if (!Number.isFinite(x) || x < 0) return 0;
  return x >= 1 ? 1 - Number.EPSILON : x;
}

/**
 * Parses an HTTP `Retry-After` header (RFC 9110 §10.2.3): either delta-seconds (`"120"`) or an
 * HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`). Returns the wait in ms from `nowMs` (never
 * negative), or `undefined` when the header is absent or unparseable. Fractional seconds are
 * accepted because some servers send them, although the RFC does not.
 */
export function parseRetryAfter(
  headerValue: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (headerValue === null || headerValue === undefined) return undefined;
  const value = headerValue.trim();
  if (value === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) {
    const ms = Math.ceil(Number(value) * 1000);
    return Number.isFinite(ms) ? ms : undefined;
  }
  // Only date-looking values go to Date.parse, which would otherwise accept odd inputs like "1".
  if (!/[A-Za-z]/.test(value)) return undefined;
  const atMs = Date.parse(value);
  if (Number.isNaN(atMs)) return undefined;
  return Math.max(0, atMs - nowMs);
}
