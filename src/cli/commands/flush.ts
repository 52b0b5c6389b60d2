/**
 * `lull flush [conversation]`: force a flush now through the admin route of a running lull
 * (the local `lull dev`, or a deployed function with --url / LULL_PUBLIC_URL).
 */
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { functionUrl, resolveConnection } from "../connect.ts";
import { postJson } from "../http.ts";
import { withProgress } from "../terminal.ts";

const help = `lull flush — flush now, without waiting for the quiet window

Usage: lull flush [conversation] [--url <lull url>] [--json]

With a conversation key, flushes that conversation's open buffer (reason "manual") or a batch
waiting for its retry backoff; without one, every conversation. Goes through
POST /lull/admin/flush with LULL_ADMIN_TOKEN, so the function delivers exactly as it does
on its own.

Options:
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
    const { values, positionals } = parseCommandArgs("flush", args, { url: { type: "string" } });
    if (positionals.length > 1) {
      throw new UsageError(`unexpected argument '${positionals[1]}'`, "flush");
    }
    const conversation = positionals[0];
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const url = functionUrl(conn, values.url);
    const token = conn.config.adminToken;
    if (!token) throw new CommandError("no_token", "LULL_ADMIN_TOKEN is not set");
    const answer = await withProgress(
      conversation ? `flushing ${conversation}` : "flushing every conversation",
      () => postJson(`${url}/admin/flush`, token, conversation ? { conversation } : {}),
    );
    if (values.json) outJson(answer);
    else out(`flushed: ${JSON.stringify(answer)}`);
    return 0;
  },
};
