/**
 * One place maps a processor's HTTP answer to a {@link DeliveryOutcome} (DESIGN.md "Delivery"),
 * shared by the URL and the Supabase-function processors so both behave identically.
 */
import { parseRetryAfter } from "../core/backoff.ts";
import type { DeliveryOutcome } from "../core/types.ts";

/** Statuses that will never succeed on retry: the batch goes straight to the DLQ. */
export const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 422]);

/**
 * Maps a processor status to an outcome.
 * - 2xx and 409 (already have it): delivered.
 * - 425 (Too Early): supersede; the processor saw newer messages pending.
 * - 400/401/403/404/422: permanent.
 * - 408, 429, 5xx and anything else: retry, honouring `Retry-After`. Unlisted statuses retry
 *   rather than dead-letter because a retry is bounded (MAX_ATTEMPTS / MAX_AGE) while a wrong
 *   DLQ verdict needs an operator.
 */
export function outcomeFromStatus(
  status: number,
  retryAfter: string | null | undefined,
  nowMs: number,
): DeliveryOutcome {
  if ((status >= 200 && status < 300) || status === 409) return { kind: "delivered" };
  if (status === 425) return { kind: "supersede" };
  if (PERMANENT_STATUSES.has(status)) {
    return { kind: "permanent", error: `processor answered ${status}` };
  }
  const retryAfterMs = parseRetryAfter(retryAfter, nowMs);
  const out: DeliveryOutcome = { kind: "retry", error: `processor answered ${status}` };
  if (retryAfterMs !== undefined) out.retryAfterMs = retryAfterMs;
  return out;
}

/** Maps a thrown fetch error (network failure, abort/timeout) to a retry outcome. */
export function outcomeFromError(err: unknown, signal: AbortSignal): DeliveryOutcome {
  if (signal.aborted) return { kind: "retry", error: "processor timed out" };
  const message = err instanceof Error ? err.message : String(err);
  return { kind: "retry", error: `processor unreachable: ${message.slice(0, 200)}` };
}

/**
 * A signal aborted by either `outer` or after `timeoutMs`. `dispose` clears the timer. Written out
 * rather than `AbortSignal.any` so older runtimes behave the same.
 */
export function timeoutSignal(
  outer: AbortSignal | undefined,
  timeoutMs: number,
): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort(outer?.reason ?? new Error("delivery timed out"));
  if (outer?.aborted) abort();
  outer?.addEventListener("abort", abort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error("delivery timed out")), timeoutMs);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", abort);
    },
  };
}
