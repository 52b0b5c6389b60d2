/**
 * `GET batches?limit=`: the newest delivered batches with their texts, read from the `delivered`
 * events (one stream read per partition).
 */
import { decodeDeliveredTexts, type DeliveredText } from "../../core/delivered-texts.ts";
import { json } from "../../core/respond.ts";
import type { AppContext } from "../context.ts";
import { eventView } from "./events.ts";
import { getOnly, parseLimit } from "./request.ts";

/** `GET batches`: default and ceiling (each delivered event carries up to 4 KiB of texts). */
const DEFAULT_BATCHES = 50;
const MAX_BATCHES = 200;

/** One recently delivered batch, from its `delivered` event. */
export interface DeliveredBatchView {
  batchId: string;
  partition: number;
  /** When the processor's answer was recorded (store time). */
  at: string;
  /** The conversation as the event stream holds it (masked unless LULL_LOG_PII). */
  label: string;
  size: number;
  /** The texts, masked unless LULL_LOG_PII; empty for a batch acked without them. */
  messages: DeliveredText[];
  /** Messages the event left out (its `texts` field is capped). */
  omitted: number;
  /** Texts are `<N chars>` placeholders. */
  masked: boolean;
}

/** The newest delivered batches with their texts, newest first. */
async function recentBatches(ctx: AppContext, limit: number) {
  const { events } = await ctx.store.latestEvents({ limit, type: "delivered" });
  const batches: DeliveredBatchView[] = events.map((raw) => {
    const e = eventView(ctx, raw);
    const texts = decodeDeliveredTexts(e.fields.texts);
    return {
      batchId: e.fields.batchId ?? "",
      partition: e.partition,
      at: e.at,
      label: e.conversation,
      size: Number(e.fields.size ?? texts?.messages.length ?? 0),
      messages: texts?.messages ?? [],
      omitted: texts?.omitted ?? 0,
      masked: texts?.masked ?? !ctx.config.logPii,
    };
  });
  return { batches, count: batches.length };
}

/** `GET batches`. */
export const batchesRoute = getOnly(async ({ ctx, url }) =>
  json(200, await recentBatches(ctx, parseLimit(url, DEFAULT_BATCHES, MAX_BATCHES)))
);
