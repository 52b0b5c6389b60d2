/**
 * Delivers batches to an HTTPS endpoint (LULL_PROCESSOR_URL).
 */
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import type { Processor } from "../core/types.ts";
import { outcomeFromError, outcomeFromStatus, timeoutSignal } from "./outcome.ts";
import { buildDeliveryRequest } from "./request.ts";

/** Options of {@link createHttpProcessor}. */
export interface HttpProcessorOptions {
  url: string;
  /** Signing secrets; the first signs. */
  secrets: string[];
  /** Per-delivery timeout (LULL_DELIVERY_TIMEOUT_MS). @default 10000 */
  timeoutMs?: number;
  /** Injected for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
  clock?: Clock;
}

/**
 * A {@link Processor} that POSTs the batch as JSON with `Idempotency-Key`, `X-Lull-Fence` and
 * `X-Lull-Signature`, and maps the answer per DESIGN.md. Redirects are not followed: a
 * redirected POST would be replayed as GET by some stacks and lose the body.
 */
export function createHttpProcessor(options: HttpProcessorOptions): Processor {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? 10_000;
  return async (batch, outer) => {
    const { body, headers } = await buildDeliveryRequest(batch, options.secrets, clock.now());
    const { signal, dispose } = timeoutSignal(outer, timeoutMs);
    try {
      const res = await doFetch(options.url, {
        method: "POST",
        headers,
        body,
        signal,
        redirect: "manual",
      });
      // Drain the body so the connection can be reused; its content is not needed.
      await res.body?.cancel().catch(() => {});
      return outcomeFromStatus(res.status, res.headers.get("retry-after"), clock.now());
    } catch (err) {
      return outcomeFromError(err, signal);
    } finally {
      dispose();
    }
  };
}
