/**
 * `lull send`: posts one test message to a running lull's generic route.
 */
import { randomBytes } from "node:crypto";
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, err, out, outJson } from "../command.ts";
import { functionUrl, resolveConnection } from "../connect.ts";
import { postJson } from "../http.ts";
import { redisDownMessage } from "../redis-down.ts";

const help = `lull send — post a test message to a running lull

Usage: lull send --conversation <key> [--id <id>] [--sender <s>] [--url <lull url>] <text...>

Example: lull send --conversation support:42 "hello"

Posts {conversation, id, text, sender?} to POST /lull/messages with the first LULL_INGEST_TOKEN.
Send a few within the quiet window and they arrive at the processor as one batch.

Options:
  --conversation <key>  conversation key (required)
  --id <id>             message id, the dedup key (default: a fresh random id; reuse one to
                        see a duplicate answered 202 and buffered once)
  --sender <s>          sender id
  --url <url>           the lull function (…/functions/v1/lull); default: the running
                        \`lull dev\`, else LULL_PUBLIC_URL
  --json                print the route's JSON answer
  -h, --help            this help

Exit codes: 0 accepted, 1 rejected or unreachable, 2 usage error.`;

/** The route's 202 body (DESIGN.md). */
interface AcceptedBody {
  accepted: number;
  duplicates: number;
  buffers?: { conversation: string; size: number; flushAt: string | null }[];
  /** Messages delivered directly because Redis was down. */
  degraded?: number;
  /** Messages waiting in the durable outbox (Postgres) because Redis was down. */
  outboxed?: number;
}

/** `lull send`. */
export const sendCommand: Command = {
  name: "send",
  summary: "post a test message to a running stack's generic route",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("send", args, {
      conversation: { type: "string", short: "c" },
      id: { type: "string" },
      sender: { type: "string" },
      url: { type: "string" },
    });
    if (!values.conversation) throw new UsageError("--conversation is required", "send");
    if (positionals.length === 0) throw new UsageError("the message text is required", "send");
    const text = positionals.join(" ");
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const url = functionUrl(conn, values.url);
    const token = conn.config.ingestTokens[0];
    if (!token) throw new CommandError("no_token", "LULL_INGEST_TOKEN is not set");
    const message = {
      conversation: values.conversation,
      id: values.id ?? `cli-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`,
      text,
      ...(values.sender ? { sender: values.sender } : {}),
    };
    let answer: AcceptedBody;
    try {
      answer = await postJson(`${url}/messages`, token, message) as AcceptedBody;
    } catch (e) {
      // "Did not confirm in time" and friends: check Redis from here and say what is wrong.
      if (e instanceof CommandError && e.status === 503) {
        const down = await redisDownMessage(conn);
        if (down) {
          throw new CommandError(
            "redis_down",
            `${down}\nThe message was not stored; send it again.`,
          );
        }
      }
      throw e;
    }
    if (values.json) {
      outJson(answer);
      return 0;
    }
    if ((answer.degraded ?? 0) > 0) {
      const down = await redisDownMessage(conn);
      err(
        `warning: ${down ?? "Redis did not answer"}; the message was delivered directly ` +
          "(degraded: a batch of one), not buffered.",
      );
    }
    if ((answer.outboxed ?? 0) > 0) {
      const down = await redisDownMessage(conn);
      err(
        `warning: ${down ?? "Redis did not answer"}; the message is safe in the durable ` +
          "outbox and is buffered, in order, as soon as Redis answers again.",
      );
      out(`accepted into the outbox: id ${message.id}`);
      return 0;
    }
    const buffer = answer.buffers?.[0];
    const status = answer.duplicates > 0 ? "duplicate (already buffered)" : "accepted";
    out(
      `${status}: id ${message.id}` +
        (buffer
          ? `; ${buffer.conversation} has ${buffer.size} buffered` +
            (buffer.flushAt ? `, flushes at ${buffer.flushAt}` : "")
          : ""),
    );
    return 0;
  },
};
