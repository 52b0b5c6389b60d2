/**
 * The example processor (`lull-processor`): what a real processor does first, and nothing
 * more. It verifies the signature with verifyDelivery (LULL_PROCESSOR_SECRET), drops repeats
 * of a batchId, and logs the batch as one JSON line (`{"msg":"batch",...}`) on stdout, which
 * `lull dev` prints readably. Replace the log with a call to your agent.
 */
import type { Batch } from "../../../src/core/types.ts";
import { verifyDelivery } from "../../../src/delivery/signature.ts";
import { readEnv } from "../../../src/runtime/env.ts";

/** Options of {@link createProcessorHandler}. */
export interface ExampleProcessorOptions {
  /** LULL_PROCESSOR_SECRET (comma list: any verifies). Unset: signatures are not checked. */
  secrets?: string;
  /** Where the batch line goes. @default console.log */
  log?: (line: string) => void;
  /** @default Date.now */
  now?: () => number;
}

/** How many batchIds are remembered for dedup. */
const SEEN_LIMIT = 10_000;

/** The example processor's request handler. */
export function createProcessorHandler(
  options: ExampleProcessorOptions = {},
): (req: Request) => Promise<Response> {
  const secrets = options.secrets ?? readEnv().LULL_PROCESSOR_SECRET ?? "";
  const log = options.log ?? ((line: string) => console.log(line));
  const now = options.now ?? (() => Date.now());
  // In-memory dedup: good enough for an example and for `lull dev`, but it forgets on every
  // cold start and is per isolate. A real processor records batchIds in its own database, in
  // the same transaction as the work the batch triggers.
  const seen = new Set<string>();

  return async (req) => {
    if (req.method !== "POST") {
      return Response.json({ error: { code: "method_not_allowed", message: "POST only" } }, {
        status: 405,
        headers: { allow: "POST" },
      });
    }
    const rawBody = await req.text();
    if (secrets.trim() !== "") {
      const check = await verifyDelivery({
        headers: req.headers,
        rawBody,
        secrets,
        nowMs: now(),
      });
      if (!check.ok) {
        return Response.json({ error: { code: "bad_signature", message: check.reason } }, {
          status: 401,
        });
      }
    }
    let batch: Batch;
    try {
      batch = JSON.parse(rawBody) as Batch;
    } catch {
      return Response.json({ error: { code: "invalid_json", message: "body is not JSON" } }, {
        status: 400,
      });
    }
    if (typeof batch?.batchId !== "string" || !Array.isArray(batch.messages)) {
      return Response.json({ error: { code: "invalid_batch", message: "not a lull batch" } }, {
        status: 400,
      });
    }
    if (seen.has(batch.batchId)) {
      return Response.json({ ok: true, duplicate: true });
    }
    if (seen.size >= SEEN_LIMIT) seen.delete(seen.values().next().value!);
    seen.add(batch.batchId);
    const firstMs = Date.parse(batch.firstAt);
    log(JSON.stringify({
      msg: "batch",
      at: new Date(now()).toISOString(),
      batchId: batch.batchId,
      conversation: batch.conversation,
      reason: batch.reason,
      attempt: batch.attempt,
      fence: batch.fence,
      degraded: batch.degraded,
      size: batch.messages.length,
      waitMs: Number.isFinite(firstMs) ? Math.max(0, now() - firstMs) : null,
      firstAt: batch.firstAt,
      lastAt: batch.lastAt,
      text: batch.text,
      messages: batch.messages.map((m) => ({ id: m.id, text: m.text })),
    }));
    return Response.json({ ok: true });
  };
}
