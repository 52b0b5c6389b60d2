/**
 * `lull tail`: follows the buffer event stream live (polling `readEvents`), one line per event.
 */
import type { BufferEvent, BufferEventType, EventCursor } from "../../core/types.ts";
import { maskConversation, maskText } from "../../core/mask.ts";
import { maskDeliveredTexts } from "../../core/delivered-texts.ts";
import { partitionOf } from "../../core/keys.ts";
import { intOption, parseCommandArgs } from "../args.ts";
import { UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { resolveConnection } from "../connect.ts";
import { openBackend } from "../backend.ts";
import { parseSince } from "../duration.ts";
import { type Palette, palette } from "../terminal.ts";

/** Every event type the stream carries. */
export const eventTypes: readonly BufferEventType[] = [
  "appended",
  "duplicate",
  "due",
  "claimed",
  "delivered",
  "retry_scheduled",
  "dead_lettered",
  "superseded",
  "requeued",
  "released",
  "fallback",
  "lock_lost",
  "reaped",
];

/** Fields that may carry personal data (masked unless --show-pii). */
const piiFields = new Set(["text", "sender", "from", "phone", "name"]);

/** Applies the CLI's masking to one event (the source masks too, unless LULL_LOG_PII). */
export function maskEvent(ev: BufferEvent, showPii: boolean): BufferEvent {
  if (showPii) return ev;
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(ev.fields)) {
    fields[k] = k === "text"
      ? maskText(v, false)
      : k === "texts"
      ? maskDeliveredTexts(v)
      : piiFields.has(k)
      ? maskConversation(v, false)
      : v;
  }
  return { ...ev, conversation: maskConversation(ev.conversation, false), fields };
}

const colourOf = (type: BufferEventType, p: Palette): (s: string) => string => {
  switch (type) {
    case "appended":
      return p.blue;
    case "delivered":
      return p.green;
    case "due":
    case "claimed":
    case "requeued":
      return p.cyan;
    case "duplicate":
    case "retry_scheduled":
    case "reaped":
    case "superseded":
      return p.yellow;
    case "dead_lettered":
    case "fallback":
    case "lock_lost":
      return p.red;
    default:
      return p.dim;
  }
};

/** One human line: time, type, conversation, partition, fields. */
export function formatEvent(ev: BufferEvent, p: Palette): string {
  const time = ev.at.length >= 23 ? ev.at.slice(11, 23) : ev.at;
  const fields = Object.entries(ev.fields).map(([k, v]) => `${p.dim(k + "=")}${v}`).join(" ");
  return `${p.dim(time)}  ${colourOf(ev.type, p)(ev.type.padEnd(15))} ${p.bold(ev.conversation)} ${
    p.dim(`p${ev.partition}`)
  }  ${fields}`.trimEnd();
}

const help = `lull tail — follow buffer events live

Usage: lull tail [--conversation <key>] [--event <type,...>] [--since <5m|ISO>]
                 [--show-pii] [--no-follow] [--url <lull url>] [--json]

One line per event: appended, duplicate, due, claimed, delivered, retry_scheduled,
dead_lettered, superseded, requeued, released, fallback, lock_lost, reaped.

Options:
  --conversation <key>  only this conversation (the raw key, e.g. whatsapp:966501234567)
  --event <types>       only these event types (comma-separated)
  --since <when>        start from a duration ago (30s, 5m, 2h, 1d) or an ISO time
                        (default: only new events)
  --show-pii            do not mask conversations and texts in the output. The stream is
                        masked at the source unless the functions run with LULL_LOG_PII=true,
                        so this can only show what the source kept.
  --no-follow           print the events so far and exit instead of following
  --interval <ms>       poll interval (default 500)
  --url <url>           read through the function's admin API (…/functions/v1/lull, needs
                        LULL_ADMIN_TOKEN) instead of Redis
  --json                one JSON event per line
  -h, --help            this help

Reads Redis directly (LULL_REDIS_URL or UPSTASH_* from the environment, else the running
\`lull dev\` in this directory), or the admin API with --url (also used for a \`lull dev\` on
the in-memory store, or with LULL_PUBLIC_URL + LULL_ADMIN_TOKEN and no Redis configured). Colours only on a terminal, never with NO_COLOR.

Exit codes: 0 ok (Ctrl-C ends following), 1 cannot connect, 2 usage error.`;

/** `lull tail`. */
export const tailCommand: Command = {
  name: "tail",
  summary: "follow buffer events live (masked; --json, --conversation, --event, --since)",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("tail", args, {
      conversation: { type: "string" },
      event: { type: "string" },
      since: { type: "string" },
      "show-pii": { type: "boolean" },
      "no-follow": { type: "boolean" },
      interval: { type: "string" },
      url: { type: "string" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "tail");
    }
    const interval = intOption("tail", "interval", values.interval, 500);
    let wanted: Set<string> | null = null;
    if (values.event !== undefined) {
      wanted = new Set(values.event.split(",").map((s) => s.trim()).filter((s) => s !== ""));
      const unknown = [...wanted].filter((t) => !eventTypes.includes(t as BufferEventType));
      if (unknown.length > 0) {
        throw new UsageError(
          `unknown event type(s) ${unknown.join(", ")}; known: ${eventTypes.join(", ")}`,
          "tail",
        );
      }
    }
    let sinceMs: number | null = null;
    if (values.since !== undefined) {
      sinceMs = parseSince(values.since, Date.now());
      if (sinceMs === null) {
        throw new UsageError(`--since wants a duration (30s, 5m, 2h) or an ISO time`, "tail");
      }
    }
    const showPii = values["show-pii"] === true;
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const store = openBackend(conn, values.url);
    const p = palette();
    const conversation = values.conversation;
    // The stream holds the masked key unless LULL_LOG_PII: match either form, in its partition.
    const convPartition = conversation === undefined
      ? null
      : partitionOf(conversation, conn.config.partitions);
    const convForms = conversation === undefined
      ? null
      : new Set([conversation, maskConversation(conversation, false)]);

    try {
      let cursor: EventCursor | null = null;
      if (sinceMs !== null) {
        // Stream ids are `<ms>-<seq>`: start just before `since` in every partition.
        cursor = {};
        for (let part = 0; part < conn.config.partitions; part++) {
          cursor[part] = `${Math.max(0, sinceMs - 1)}-999999999`;
        }
      } else {
        cursor = (await store.readEvents(null, 1)).cursor;
      }
      let stopped = false;
      void ctx.interrupted.then(() => {
        stopped = true;
      });
      let lastError = "";
      while (!stopped) {
        let read: Awaited<ReturnType<typeof store.readEvents>>;
        try {
          read = await store.readEvents(cursor, 500);
        } catch (e) {
          // Following survives an outage: say so once, keep polling, resume where it was.
          if (values["no-follow"]) throw e;
          const message = (e as Error).message;
          if (message !== lastError) process.stderr.write(`lull tail: ${message}; retrying\n`);
          lastError = message;
          await Promise.race([new Promise((r) => setTimeout(r, interval)), ctx.interrupted]);
          continue;
        }
        if (lastError !== "") process.stderr.write("lull tail: reading again\n");
        lastError = "";
        cursor = read.cursor;
        for (const ev of read.events) {
          if (wanted && !wanted.has(ev.type)) continue;
          if (convForms && (ev.partition !== convPartition || !convForms.has(ev.conversation))) {
            continue;
          }
          const shown = maskEvent(ev, showPii);
          if (values.json) outJson(shown);
          else out(formatEvent(shown, p));
        }
        if (read.events.length >= 500) continue; // more waiting: read on without sleeping
        if (values["no-follow"]) break;
        await Promise.race([
          new Promise((r) => setTimeout(r, interval)),
          ctx.interrupted,
        ]);
      }
    } finally {
      await store.close();
    }
    return 0;
  },
};
