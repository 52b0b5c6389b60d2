/**
 * The event stream as the admin API shows it: `GET events?cursor=` pages forward through it,
 * `GET events/latest` reads its newest entries (what the dashboard loads first).
 */
import { decodeEventCursor, encodeEventCursor } from "../../core/event-cursor.ts";
import { maskDeliveredTexts } from "../../core/delivered-texts.ts";
import { json } from "../../core/respond.ts";
import type { BufferEvent } from "../../core/types.ts";
import type { AppContext } from "../context.ts";
import { label } from "./labels.ts";
import { getOnly, parseLimit } from "./request.ts";

/** `GET events/latest`: how many events by default. */
const DEFAULT_LATEST_EVENTS = 50;

/**
 * An event as the admin API shows it. The source masked it unless LULL_LOG_PII; what was written
 * in clear while LULL_LOG_PII was on is masked here once it is off again.
 */
export function eventView(ctx: AppContext, e: BufferEvent): BufferEvent {
  if (ctx.config.logPii) return e;
  const fields = e.fields.texts === undefined
    ? e.fields
    : { ...e.fields, texts: maskDeliveredTexts(e.fields.texts) };
  return { ...e, conversation: label(ctx, e.conversation), fields };
}

/** `GET events?cursor=&limit=`: the events after `cursor` (from the start without one). */
export const eventsRoute = getOnly(async ({ ctx, url }) => {
  const raw = url.searchParams.get("cursor");
  const cursor = raw === null || raw === "" ? null : decodeEventCursor(raw);
  const limit = parseLimit(url);
  const { events, cursor: next } = await ctx.store.readEvents(cursor, { limit });
  return json(200, {
    events: events.map((e) => eventView(ctx, e)),
    cursor: encodeEventCursor(next),
  });
});

/** `GET events/latest?limit=`: the newest events, and the cursor to follow on from. */
export const latestEventsRoute = getOnly(async ({ ctx, url }) => {
  const limit = parseLimit(url, DEFAULT_LATEST_EVENTS);
  const { events, cursor } = await ctx.store.latestEvents({ limit });
  return json(200, {
    events: events.map((e) => eventView(ctx, e)),
    cursor: encodeEventCursor(cursor),
  });
});
