/**
 * A typed processor for lull deliveries, for processor authors who want the contract handled:
 *
 * ```ts
 * import { createBatchHandler } from "lull";
 *
 * Deno.serve(createBatchHandler({
 *   secrets: Deno.env.get("LULL_PROCESSOR_SECRET")!,
 *   async handle(batch) {
 *     await myAgent.reply(batch.conversation, batch.text);
 *   },
 * }));
 * ```
 *
 * In order, it: verifies `X-Lull-Signature` (401), parses the batch (400), answers a repeated
 * `batchId` 200 without calling `handle` (dedup), answers a batch whose `fence` is lower than one
 * already handled for its conversation 409 (a stale delivery after a newer one; lull treats 409 as
 * done), then calls `handle`. `handle` returning `"supersede"` answers 425 (lull puts the batch
 * back ahead of newer messages); throwing answers 500 (lull retries). The batch is recorded in
 * the ledger only after `handle` succeeded, so a crash in between means a redelivery, never a
 * loss.
 */
import { z } from "zod";
import type { Batch } from "../core/types.ts";
import { verifyDelivery } from "./signature.ts";

/** What `handle` may answer: done (the default), or supersede (lull answers 425). */
export type BatchDecision = "done" | "supersede";

/**
 * Where the handler remembers delivered batches. The default ({@link memoryLedger}) forgets on
 * every cold start; a real processor records in its own database, ideally in the same
 * transaction as the work the batch triggers.
 */
export interface BatchLedger {
  /** Whether `batchId` was handled already. */
  has(batchId: string): Promise<boolean> | boolean;
  /** The highest fence handled for `conversation`, or null. */
  lastFence(conversation: string): Promise<number | null> | number | null;
  /** Records a handled batch (its id and fence). */
  record(batch: Batch): Promise<void> | void;
}

/** Options of {@link createBatchHandler}. */
export interface BatchHandlerOptions {
  /** LULL_PROCESSOR_SECRET: an array or a comma list; any of them verifies (rotation). */
  secrets: string | string[];
  /** The work: called once per new batch, in fence order per conversation. */
  handle: (batch: Batch, request: Request) => Promise<BatchDecision | void> | BatchDecision | void;
  /** @default memoryLedger() */
  ledger?: BatchLedger;
  /** @default Date.now */
  nowMs?: () => number;
  /** Replay window of the signature, seconds. @default 300 */
  toleranceSec?: number;
  /** Called with what `handle` threw (before the 500). @default console.error */
  onError?: (error: unknown, batch: Batch) => void;
}

const messageSchema = z.object({
  id: z.string(),
  provider: z.enum(["generic", "whatsapp", "telegram", "twilio"]),
  text: z.string(),
  sender: z.string().optional(),
  sentAt: z.string().optional(),
  receivedAt: z.string(),
  meta: z.record(z.string(), z.unknown()),
  attachments: z.array(z.record(z.string(), z.unknown())).optional(),
}).loose();

/** The delivery body lull sends (DESIGN.md, "Delivery to the processor"). */
export const batchSchema = z.object({
  batchId: z.string().min(1),
  conversation: z.string().min(1),
  fence: z.number().int(),
  attempt: z.number().int(),
  reason: z.enum([
    "quiet",
    "max_wait",
    "max_messages",
    "max_bytes",
    "manual",
    "fallback",
    "requeue",
  ]),
  degraded: z.boolean(),
  firstAt: z.string(),
  lastAt: z.string(),
  text: z.string(),
  messages: z.array(messageSchema),
}).loose();

/**
 * An in-memory {@link BatchLedger} keeping the last `limit` batch ids (and every conversation's
 * fence). Per isolate and lost on restart: for examples and tests.
 * @param limit how many batch ids are remembered @default 10000
 */
export function memoryLedger(limit = 10_000): BatchLedger {
  const seen = new Set<string>();
  const fences = new Map<string, number>();
  return {
    has: (id) => seen.has(id),
    lastFence: (c) => fences.get(c) ?? null,
    record(batch) {
      if (seen.size >= limit) seen.delete(seen.values().next().value!);
      seen.add(batch.batchId);
      fences.set(batch.conversation, Math.max(fences.get(batch.conversation) ?? 0, batch.fence));
    },
  };
}

function answer(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

function fail(status: number, code: string, message: string): Response {
  return answer(status, { error: { code, message } });
}

/** Builds a `(req) => Response` processor that enforces lull's delivery contract. */
export function createBatchHandler(
  options: BatchHandlerOptions,
): (req: Request) => Promise<Response> {
  const ledger = options.ledger ?? memoryLedger();
  const now = options.nowMs ?? (() => Date.now());
  const onError = options.onError ??
    ((e: unknown, b: Batch) => console.error(`lull batch ${b.batchId} failed:`, e));

  return async (req) => {
    if (req.method !== "POST") return fail(405, "method_not_allowed", "POST only");
    const rawBody = await req.text();
    const check = await verifyDelivery({
      headers: req.headers,
      rawBody,
      secrets: options.secrets,
      nowMs: now(),
      toleranceSec: options.toleranceSec,
    });
    if (!check.ok) return fail(401, "bad_signature", check.reason);
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawBody);
    } catch {
      return fail(400, "invalid_json", "body is not JSON");
    }
    const result = batchSchema.safeParse(parsed);
    if (!result.success) return fail(400, "invalid_batch", "not a lull batch");
    const batch = result.data as unknown as Batch;
    if (await ledger.has(batch.batchId)) {
      return answer(200, { ok: true, duplicate: true, batchId: batch.batchId });
    }
    const last = await ledger.lastFence(batch.conversation);
    if (last !== null && batch.fence < last) {
      return fail(409, "stale_fence", `fence ${batch.fence} is older than ${last}`);
    }
    let decision: BatchDecision | void;
    try {
      decision = await options.handle(batch, req);
    } catch (e) {
      onError(e, batch);
      return fail(500, "handler_failed", "the batch handler failed; lull will retry");
    }
    if (decision === "supersede") {
      return answer(425, { superseded: true, batchId: batch.batchId });
    }
    await ledger.record(batch);
    return answer(200, { ok: true, batchId: batch.batchId });
  };
}
