/**
 * One place maps a processor's HTTP answer to a {@link DeliveryOutcome} (DESIGN.md "Delivery"),
 * shared by the URL and the Supabase-function processors so both behave identically.
 */
import { parseRetryAfter } from "../core/backoff.ts";
import { type DeliveryOutcome, RESPONSE_BODY_MAX_BYTES } from "../core/types.ts";

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
  responseBody = "",
): DeliveryOutcome {
  if ((status >= 200 && status < 300) || status === 409) return { kind: "delivered" };
  if (status === 425) return { kind: "supersede" };
  const body = responseBody === "" ? {} : { responseBody };
  if (PERMANENT_STATUSES.has(status)) {
    return { kind: "permanent", error: `processor answered ${status}`, ...body };
  }
  const retryAfterMs = parseRetryAfter(retryAfter, nowMs);
  const out: DeliveryOutcome = { kind: "retry", error: `processor answered ${status}`, ...body };
  if (retryAfterMs !== undefined) out.retryAfterMs = retryAfterMs;
  return out;
}

/**
 * Reads at most `maxBytes` of a response body as text and drops the rest (so the connection
 * can be reused and a huge error page costs nothing). A body that cannot be read counts as
 * empty: it is diagnostics, never a reason to change the outcome.
 * @param maxBytes @default RESPONSE_BODY_MAX_BYTES
 */
export async function readCappedBody(
  res: Response,
  maxBytes: number = RESPONSE_BODY_MAX_BYTES,
): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    return "";
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(size, maxBytes));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.byteLength;
    if (at >= bytes.length) break;
  }
  // Non-fatal decoding: a multi-byte character cut at the cap becomes U+FFFD, not an error.
  return new TextDecoder().decode(bytes);
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
