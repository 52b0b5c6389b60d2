/**
 * A lull processor: verifies the delivery signature, drops repeated deliveries of a batch, and
 * hands the whole burst to your agent as one turn. Web-standard (Request/Response), so it runs
 * as a Supabase function, on Deno, Bun, Node >= 20 or a Worker.
 *
 *   LULL_PROCESSOR_SECRET=... deno run --allow-net --allow-env examples/processor.ts
 */
import type { Batch } from "../src/core/types.ts";
import { verifyDelivery } from "../src/delivery/signature.ts";

/** What the processor needs from you. */
export interface ProcessorOptions {
  /** LULL_PROCESSOR_SECRET: one secret or a comma list (any verifies, for rotation). */
  secrets: string;
  /** Your work: one call per burst, messages in arrival order. Throw to have lull retry. */
  handleBurst: (batch: Batch) => Promise<void>;
  /**
   * Remembers batchIds already handled. Delivery is at-least-once: after a crash or timeout
   * the same batch can come again. Use your database in production, in the same transaction
   * as the work; the default Set forgets on restart.
   */
  seen?: { has(id: string): boolean | Promise<boolean>; add(id: string): unknown };
}

/** Builds the request handler. */
export function createProcessor(options: ProcessorOptions): (req: Request) => Promise<Response> {
  const seen = options.seen ?? new Set<string>();
  return async (req) => {
    // Verify the exact bytes that were signed: read the body once, as text, before parsing.
    const rawBody = await req.text();
    const check = await verifyDelivery({ headers: req.headers, rawBody, secrets: options.secrets });
    // 401 is permanent for lull: the batch goes to the DLQ, visibly, instead of retrying forever.
    if (!check.ok) return Response.json({ error: check.reason }, { status: 401 });

    const batch = JSON.parse(rawBody) as Batch;
    // Idempotency-Key == batchId. 2xx (or 409) tells lull "done": do not do the work twice.
    if (await seen.has(batch.batchId)) return Response.json({ ok: true, duplicate: true });

    try {
      await options.handleBurst(batch);
    } catch (err) {
      // 5xx (or 408/429) makes lull retry with backoff; Retry-After is honoured.
      console.error("burst failed, lull will retry", batch.batchId, err);
      return Response.json({ error: "try again" }, {
        status: 503,
        headers: { "retry-after": "5" },
      });
    }
    await seen.add(batch.batchId);
    return Response.json({ ok: true });
  };
}

// Run directly with Deno: serve on HOST:PORT (default 127.0.0.1:8787).
const deno = (globalThis as {
  Deno?: {
    env: { get(name: string): string | undefined };
    serve(
      options: { port: number; hostname: string },
      handler: (req: Request) => Promise<Response>,
    ): unknown;
  };
}).Deno;
if (deno && (import.meta as { main?: boolean }).main) {
  deno.serve(
    { port: Number(deno.env.get("PORT") ?? "8787"), hostname: deno.env.get("HOST") ?? "127.0.0.1" },
    createProcessor({
      secrets: deno.env.get("LULL_PROCESSOR_SECRET") ?? "",
      handleBurst: async (batch) => {
        // One agent turn for the whole burst: batch.text is the messages joined with "\n".
        console.log(`${batch.conversation} (${batch.reason}): ${batch.text}`);
      },
    }),
  );
}
