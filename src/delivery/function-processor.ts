/**
 * Delivers batches to another Supabase Edge Function (LULL_PROCESSOR_FUNCTION) through
 * `@supabase/supabase-js` `functions.invoke`, with the same body, headers and answer mapping as
 * the URL processor.
 */
import { createClient, FunctionsHttpError, FunctionsRelayError } from "@supabase/supabase-js";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../core/clock.ts";
import type { Processor } from "../core/types.ts";
import { outcomeFromError, outcomeFromStatus, readCappedBody, timeoutSignal } from "./outcome.ts";
import { buildDeliveryRequest } from "./request.ts";

/** Options of {@link createFunctionProcessor}. */
export interface FunctionProcessorOptions {
  supabaseUrl: string;
  serviceRoleKey: string;
  /** The function's name (e.g. `lull-processor`). */
  name: string;
  secrets: string[];
  /** @default 10000 */
  timeoutMs?: number;
  /** Injected for tests (passed to supabase-js as `global.fetch`). */
  fetch?: typeof fetch;
  clock?: Clock;
}

/** Stands in for a WebSocket constructor lull never calls (no realtime channels). */
class UnusedWebSocket {
  constructor() {
    throw new Error("lull does not use Supabase realtime");
  }
}

/** A {@link Processor} invoking a Supabase function. */
export function createFunctionProcessor(options: FunctionProcessorOptions): Processor {
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const client = createClient(options.supabaseUrl, options.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    // Only `functions` is used. Without a transport supabase-js looks for a global WebSocket at
    // construction and throws on runtimes without one (Node 20), so give it one that is never
    // instantiated.
    realtime: { transport: UnusedWebSocket as unknown as typeof WebSocket },
    ...(options.fetch ? { global: { fetch: options.fetch } } : {}),
  });
  return async (batch, outer) => {
    const { body, headers } = await buildDeliveryRequest(batch, options.secrets, clock.now());
    const { signal, dispose } = timeoutSignal(outer, timeoutMs);
    try {
      // A string body with our own Content-Type is sent as-is, so the signed bytes are the sent
      // bytes (supabase-js would otherwise re-serialise an object).
      const { error, response } = await client.functions.invoke(options.name, {
        method: "POST",
        body,
        headers,
        signal,
      });
      if (!error) return outcomeFromStatus(response?.status ?? 200, null, clock.now());
      if (error instanceof FunctionsHttpError || error instanceof FunctionsRelayError) {
        const res = (error.context ?? response) as Response | undefined;
        if (res) {
          const responseBody = res.bodyUsed ? "" : await readCappedBody(res);
          // A relay error is the platform's, not the processor's verdict: always retry.
          if (error instanceof FunctionsRelayError) {
            return {
              kind: "retry",
              error: `supabase relay error ${res.status}`,
              ...(responseBody === "" ? {} : { responseBody }),
            };
          }
          return outcomeFromStatus(
            res.status,
            res.headers.get("retry-after"),
            clock.now(),
            responseBody,
          );
        }
      }
      return outcomeFromError(error, signal);
    } catch (err) {
      return outcomeFromError(err, signal);
    } finally {
      dispose();
    }
  };
}
