/**
 * `lull buffers`: every conversation with an open buffer or an outstanding batch.
 */
import { maskConversation } from "../../core/mask.ts";
import { intOption, parseCommandArgs } from "../args.ts";
import { type BufferRow, openBackend } from "../backend.ts";
import { UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { resolveConnection } from "../connect.ts";
import { formatDurationMs } from "../duration.ts";
import { palette, table, withProgress } from "../terminal.ts";

const help = `lull buffers — open buffers and outstanding batches

Usage: lull buffers [--limit <n>] [--show-pii] [--url <lull url>] [--json]

One row per conversation, soonest due first: partition, messages and bytes buffered, age (since
the first message), due in (until it is claimable; negative = overdue, the next sweep takes
it), and the batch in flight or awaiting retry, if any.

Options:
  --limit <n>   at most n conversations per partition (default 1000)
  --show-pii    show conversation keys unmasked
  --url <url>   read through the function's admin API (needs LULL_ADMIN_TOKEN)
  --json        the rows as one JSON array
  -h, --help    this help

Exit codes: 0 ok, 1 cannot connect, 2 usage error.`;

/** The BATCH column: in flight, or waiting for its retry. */
function batchCell(row: BufferRow, nowMs: number): string {
  const b = row.batch;
  if (!b) return "";
  if (b.inFlight) return `in flight (fence ${b.fence}, attempt ${b.attempt}, ${b.size} msgs)`;
  const next = b.nextAttemptAt === null ? null : Date.parse(b.nextAttemptAt) - nowMs;
  return `retry ${next === null || next <= 0 ? "now" : "in " + formatDurationMs(next)} ` +
    `(attempt ${b.attempt}, ${b.size} msgs${b.lastError ? `, ${b.lastError.slice(0, 40)}` : ""})`;
}

/** `lull buffers`. */
export const buffersCommand: Command = {
  name: "buffers",
  summary: "list open buffers: size, age, due-in, partition, batch state",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("buffers", args, {
      limit: { type: "string" },
      "show-pii": { type: "boolean" },
      url: { type: "string" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "buffers");
    }
    const limit = intOption("buffers", "limit", values.limit, 1000);
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const backend = openBackend(conn, values.url);
    const showPii = values["show-pii"] === true;
    let rows: BufferRow[];
    try {
      rows = await withProgress("reading buffers", () => backend.buffers(limit));
    } finally {
      await backend.close();
    }
    const shown = rows.map((r) => ({
      ...r,
      conversation: maskConversation(r.conversation, showPii),
    }));
    if (values.json) {
      outJson(shown);
      return 0;
    }
    const p = palette();
    if (shown.length === 0) {
      out(p.dim("no open buffers"));
      return 0;
    }
    const now = Date.now();
    out(table(
      ["CONVERSATION", "PART", "SIZE", "BYTES", "AGE", "DUE IN", "BATCH"],
      shown.map((r) => [
        r.conversation,
        String(r.partition),
        String(r.size),
        String(r.bytes),
        r.ageMs === null ? "-" : formatDurationMs(r.ageMs),
        r.dueInMs === null ? "-" : formatDurationMs(r.dueInMs),
        batchCell(r, now),
      ]),
      p,
    ));
    return 0;
  },
};
