/**
 * `lull buffers`: every conversation with an open buffer or an outstanding batch.
 */
import type { ConversationState } from "../../core/types.ts";
import { maskConversation } from "../../observability/mask.ts";
import { intOption, parseCommandArgs } from "../args.ts";
import { UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { openStore, resolveConnection } from "../connect.ts";
import { formatDurationMs } from "../duration.ts";
import { palette, table, withProgress } from "../terminal.ts";

const help = `lull buffers — open buffers and outstanding batches

Usage: lull buffers [--limit <n>] [--show-pii] [--json]

One row per conversation: partition, messages and bytes buffered, age (since the first
message), due in (until it is claimable; negative = overdue, the next sweep takes it), and the
batch in flight or awaiting retry, if any.

Options:
  --limit <n>   at most n conversations per partition (default 1000)
  --show-pii    show conversation keys unmasked
  --json        the full state of each conversation as JSON (one array)
  -h, --help    this help

Exit codes: 0 ok, 1 cannot connect, 2 usage error.`;

/** `lull buffers`. */
export const buffersCommand: Command = {
  name: "buffers",
  summary: "list open buffers: size, age, due-in, partition, batch state",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("buffers", args, {
      limit: { type: "string" },
      "show-pii": { type: "boolean" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "buffers");
    }
    const limit = intOption("buffers", "limit", values.limit, 1000);
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const store = await openStore(conn);
    const showPii = values["show-pii"] === true;
    let states: ConversationState[];
    try {
      states = await withProgress("reading buffers", async () => {
        const found: ConversationState[] = [];
        for (let part = 0; part < conn.config.partitions; part++) {
          for (const c of await store.listConversations(part, limit)) {
            found.push(await store.inspect(c));
          }
        }
        return found;
      });
    } finally {
      await store.close();
    }
    const shown = states.map((s) => ({
      ...s,
      conversation: maskConversation(s.conversation, showPii),
    }));
    if (values.json) {
      outJson(
        showPii ? shown : shown.map((s) => ({
          ...s,
          buffer: s.buffer && { ...s.buffer, messages: undefined },
        })),
      );
      return 0;
    }
    const p = palette();
    if (shown.length === 0) {
      out(p.dim("no open buffers"));
      return 0;
    }
    const rows = shown.map((s) => {
      const b = s.buffer;
      const dueMs = b?.flushAtMs ?? s.dueAtMs;
      let batch = "";
      if (s.batch) {
        batch = s.batch.inFlight
          ? `in flight (fence ${s.batch.fence}, attempt ${s.batch.attempt}, ${s.batch.size} msgs)`
          : `retry ${
            s.batch.nextAttemptAtMs === null
              ? "now"
              : "in " + formatDurationMs(s.batch.nextAttemptAtMs - s.nowMs)
          } (attempt ${s.batch.attempt}, ${s.batch.size} msgs)`;
      }
      return [
        s.conversation,
        String(s.partition),
        b ? String(b.size) : "0",
        b ? String(b.bytes) : "0",
        b ? formatDurationMs(s.nowMs - Date.parse(b.firstAt)) : "-",
        dueMs === null || dueMs === undefined ? "-" : formatDurationMs(dueMs - s.nowMs),
        batch,
      ];
    });
    out(table(["CONVERSATION", "PART", "SIZE", "BYTES", "AGE", "DUE IN", "BATCH"], rows, p));
    return 0;
  },
};
