/**
 * Delivers batches to an HTTPS endpoint (LULL_PROCESSOR_URL).
 */
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import type { Processor } from "../core/types.ts";
import { outcomeFromError, outcomeFromStatus, readCappedBody, timeoutSignal } from "./outcome.ts";
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
      const ok = (res.status >= 200 && res.status < 300) || res.status === 409;
      // A failure's body (capped) goes to the dead letter; a success's is not needed, only
      // drained so the connection can be reused.
      const responseBody = ok
        ? await res.body?.cancel().catch(() => {}).then(() => "") ?? ""
        : await readCappedBody(res);
      return outcomeFromStatus(
        res.status,
        res.headers.get("retry-after"),
        clock.now(),
        responseBody,
      );
    } catch (err) {
      return outcomeFromError(err, signal);
    } finally {
      dispose();
    }
  };
}
