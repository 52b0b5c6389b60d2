/**
 * `lull audit`: the audit log of admin actions (requeue, delete, purge, force flush), newest
 * first, from the store or through the admin API.
 */
import { AUDIT_MAX_ENTRIES, AUDIT_RETENTION_MS } from "../../core/types.ts";
import { intOption, parseCommandArgs } from "../args.ts";
import { UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { resolveConnection } from "../connect.ts";
import { openBackend } from "../backend.ts";
import { palette, table, withProgress } from "../terminal.ts";

const help = `lull audit — who changed what, and when

Usage: lull audit [--limit <n>] [--url <url>] [--json]

Every admin action (dlq requeue/delete, purge, force flush, sweep) from the dashboard, the CLI
or the admin API, newest first: when, who (token:<first 8 hex of SHA-256 of the admin token
used>, or cli:<os user> for a command that went to Redis directly; never a secret), what, on
what (a batch id, or a masked conversation and its fingerprint), and the result.
Kept ${AUDIT_RETENTION_MS / 86_400_000} days, at most ${AUDIT_MAX_ENTRIES} records.

Options:
  --limit <n>   how many records (default 50)
  --url <url>   read through the function's admin API (needs LULL_ADMIN_TOKEN)
  --json        JSON output
  -h, --help    this help

Exit codes: 0 ok, 1 cannot connect, 2 usage error.`;

/** `lull audit`. */
export const auditCommand: Command = {
  name: "audit",
  summary: "the audit log of admin actions (who, what, when, result)",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("audit", args, {
      limit: { type: "string" },
      url: { type: "string" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "audit");
    }
    const limit = intOption("audit", "limit", values.limit, 50);
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const backend = openBackend(conn, values.url);
    try {
      const records = await withProgress("reading the audit log", () => backend.audit(limit));
      if (values.json) {
        outJson(records);
        return 0;
      }
      const p = palette();
      if (records.length === 0) {
        out(p.dim("the audit log is empty"));
        return 0;
      }
      out(table(
        ["AT", "ACTOR", "ACTION", "TARGET", "RESULT", "DETAIL"],
        records.map((r) => [
          r.at,
          r.actor,
          r.action,
          r.target + (r.subject ? ` #${r.subject}` : ""),
          r.result,
          r.detail.replace(/\s+/g, " ").slice(0, 60),
        ]),
        p,
      ));
      return 0;
    } finally {
      await backend.close();
    }
  },
};
