/**
 * `lull repair`: the on-demand orphan scan. lull's scripts keep every live buffer and batch
 * reachable from the due index or the leases, so the sweep never needs to SCAN. Only data loss
 * outside lull (a key deleted by hand, a failover that lost writes) can leave one unreachable;
 * this finds and re-indexes it, SCANning the key space in small steps.
 */
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, out, outJson } from "../command.ts";
import { resolveConnection } from "../connect.ts";
import { openCliStore } from "../open-store.ts";

const help = `lull repair — find buffers and batches the sweep cannot reach, and re-index them

Usage: lull repair [--count <n>] [--json]

Scans the Redis key space (SCAN, --count keys per step, default 500) for conversations with an
open buffer or an outstanding batch that are in neither the due index nor the leases, and puts
them back on the due index so the next sweep delivers them. Safe to run at any time, from any
number of places: a conversation that is reachable is left as it is. Needs a Redis
(LULL_REDIS_URL, UPSTASH_*, or a running lull dev). On Redis Cluster, run it against each node.

Options:
  --count <n>   keys per SCAN step (default 500)
  --json        one JSON object: examined, repaired
  -h, --help    this help

Exit codes: 0 ok (whether or not anything was repaired), 1 cannot connect, 2 usage error.`;

/** `lull repair`. */
export const repairCommand: Command = {
  name: "repair",
  summary: "find and re-index buffers and batches the sweep cannot reach (after data loss)",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("repair", args, {
      count: { type: "string" },
    });
    if (positionals.length > 0) {
      throw new UsageError(`unexpected argument '${positionals[0]}'`, "repair");
    }
    const count = values.count === undefined ? 500 : Number(values.count);
    if (!Number.isInteger(count) || count < 1) {
      throw new UsageError("--count must be a whole number >= 1", "repair");
    }
    const conn = resolveConnection(ctx.env, ctx.cwd);
    if (conn.config.redis.kind === "none" && conn.stack?.store !== "memory") {
      throw new CommandError(
        "no_redis",
        "lull repair needs a Redis: set LULL_REDIS_URL (or UPSTASH_REDIS_REST_URL and " +
          "UPSTASH_REDIS_REST_TOKEN), or run it where `lull dev` runs.",
      );
    }
    if (conn.config.redis.kind === "none") {
      out("the embedded in-memory store cannot lose index entries: nothing to repair");
      return 0;
    }
    const store = openCliStore(conn.config);
    let examined = 0;
    const repaired: { conversation: string; what: string }[] = [];
    try {
      let cursor = "0";
      do {
        const step = await store.repairStep(cursor, count);
        examined += step.examined;
        repaired.push(...step.repaired);
        cursor = step.cursor;
      } while (cursor !== "0");
    } finally {
      await store.close();
    }
    if (values.json) {
      outJson({ examined, repaired });
      return 0;
    }
    out(`examined ${examined} conversations; re-indexed ${repaired.length}`);
    for (const r of repaired) out(`  ${r.what.padEnd(6)} ${r.conversation}`);
    return 0;
  },
};
