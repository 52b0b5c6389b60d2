/**
 * `GET buffers?limit=`: every conversation with an open buffer or an outstanding batch, soonest
 * due first — the rows `lull buffers` prints (src/core/views.ts builds them for both).
 */
import { json } from "../../core/respond.ts";
import { listBufferViews } from "../../core/views.ts";
import { label } from "./labels.ts";
import { getOnly, parseLimit } from "./request.ts";

/** `GET buffers`: up to `limit` conversations in all (`truncated` says when there were more). */
export const buffersRoute = getOnly(async ({ ctx, url }) => {
  const limit = parseLimit(url);
  const listing = await listBufferViews(ctx.store, {
    partitions: ctx.config.partitions,
    limitPerPartition: limit,
    maxRows: limit,
    label: (c) => label(ctx, c),
  });
  const nowMs = listing.nowMs ?? await ctx.store.now();
  return json(200, {
    buffers: listing.rows,
    count: listing.rows.length,
    truncated: listing.truncated,
    nowMs,
    now: new Date(nowMs).toISOString(),
  });
});
