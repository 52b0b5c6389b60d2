/**
 * `lull flush [conversation]`: force a flush now through the admin route of a running lull
 * (the local `lull dev`, or a deployed function with --url / LULL_PUBLIC_URL).
 */
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { functionUrl, resolveConnection } from "../connect.ts";
import { getJson, postJson } from "../http.ts";
import { withProgress } from "../terminal.ts";

/** One line for the flusher's outcome (passed through by the admin route). */
function describeOutcome(outcome: unknown): string {
  if (typeof outcome !== "object" || outcome === null) return JSON.stringify(outcome);
  const o = outcome as Record<string, unknown>;
  switch (o.status) {
    case "delivered":
      return `delivered ${o.size} message(s) as batch ${o.batchId} (attempt ${o.attempt})`;
    case "retry":
      return `delivery failed (${o.error}); batch ${o.batchId} will be retried`;
    case "dead":
      return `dead-lettered batch ${o.batchId}: ${o.error}`;
    case "superseded":
      return `processor asked to wait for newer messages (batch ${o.batchId} merged back)`;
    case "empty":
      return "nothing buffered";
    case "locked":
      return "another flusher holds the lock; it is being delivered now";
    default:
      return JSON.stringify(outcome);
  }
}

const help = `lull flush — flush now, without waiting for the quiet window

Usage: lull flush [conversation] [--due] [--url <lull url>] [--json]

With a conversation key, flushes that conversation now: its open buffer (reason "manual"), or
a batch waiting for its retry backoff. Without one, every conversation with an open buffer or
a waiting batch (listed with GET /lull/admin/buffers). Goes through POST /lull/admin/flush with
LULL_ADMIN_TOKEN, so the function delivers exactly as it does on its own.

Options:
  --due         only run one durable sweep (what Cron does): flush what is due, reap expired
                leases, retry batches whose backoff has elapsed
  --url <url>   the lull function (…/functions/v1/lull); default: the running \`lull dev\`,
                else LULL_PUBLIC_URL
  --json        print the route's JSON answer
  -h, --help    this help

Exit codes: 0 ok, 1 the route failed or cannot be reached, 2 usage error.`;

/** `lull flush`. */
export const flushCommand: Command = {
  name: "flush",
  summary: "flush one conversation (or all) now, via the admin route",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("flush", args, {
      url: { type: "string" },
      due: { type: "boolean" },
    });
    if (positionals.length > 1) {
      throw new UsageError(`unexpected argument '${positionals[1]}'`, "flush");
    }
    const conversation = positionals[0];
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const url = functionUrl(conn, values.url);
    const token = conn.config.adminToken;
    if (!token) throw new CommandError("no_token", "LULL_ADMIN_TOKEN is not set");
    if (conversation !== undefined && values.due) {
      throw new UsageError("--due flushes what is due everywhere; drop the conversation", "flush");
    }
    if (values.due) {
      const answer = await withProgress(
        "sweeping",
        () => postJson(`${url}/admin/flush`, token, {}),
      );
      if (values.json) outJson(answer);
      else out(`sweep: ${JSON.stringify((answer as { sweep?: unknown }).sweep ?? answer)}`);
      return 0;
    }
    const targets = conversation !== undefined ? [conversation] : await withProgress(
      "listing buffers",
      async () => {
        const listed = await getJson(`${url}/admin/buffers?limit=1000`, token) as {
          buffers: { conversation: string }[];
        };
        return listed.buffers.map((b) => b.conversation);
      },
    );
    const results: { conversation: string; outcome: unknown }[] = [];
    await withProgress(`flushing ${targets.length} conversation(s)`, async () => {
      for (const c of targets) {
        const answer = await postJson(`${url}/admin/flush`, token, { conversation: c }) as {
          outcome?: unknown;
        };
        results.push({ conversation: c, outcome: answer.outcome ?? answer });
      }
    });
    if (values.json) {
      outJson(conversation !== undefined ? results[0] : { flushed: results });
      return 0;
    }
    if (results.length === 0) out("nothing buffered: nothing to flush");
    for (const r of results) out(`${r.conversation}: ${describeOutcome(r.outcome)}`);
    return 0;
  },
};
