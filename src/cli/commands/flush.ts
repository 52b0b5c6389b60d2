/**
 * `lull flush [conversation]`: force a flush now through the admin route of a running lull
 * (the local `lull dev`, or a deployed function with --url / LULL_PUBLIC_URL).
 */
import {
  conversationFingerprint,
  flushAuditResult,
  runAudited,
  splitTokens,
} from "../../core/audit.ts";
import { maskConversation } from "../../core/mask.ts";
import { cliActor } from "../cli-actor.ts";
import { parseCommandArgs } from "../args.ts";
import { CommandError, UsageError } from "../cli-errors.ts";
import { type Command, err, out, outJson } from "../command.ts";
import { functionUrl, resolveConnection } from "../connect.ts";
import { getJson, postJson } from "../http.ts";
import { Flusher } from "../../core/flusher.ts";
import { createHttpProcessor } from "../../delivery/http-processor.ts";
import type { Processor } from "../../core/types.ts";
import { type Config, processorConfigured } from "../../core/config.ts";
import { openCliStore } from "../open-store.ts";
import { storeBackend } from "../backend.ts";
import type { Connection } from "../connect.ts";
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

Usage: lull flush [conversation] [--due] [--url <lull url> | --direct] [--json]

With a conversation key, flushes that conversation now: its open buffer (reason "manual"), or
a batch waiting for its retry backoff. Without one, every conversation with an open buffer or
a waiting batch. Goes through POST /lull/admin/flush with LULL_ADMIN_TOKEN, so the function
delivers exactly as it does on its own; or, with --direct (or when no function URL is known but
Redis and the processor are configured), claims and delivers from this process with the same
flusher the function uses (LULL_PROCESSOR_URL/_FUNCTION and LULL_PROCESSOR_SECRET needed).

Options:
  --due         only run one durable sweep (what Cron does): flush what is due, reap expired
                leases, retry batches whose backoff has elapsed
  --url <url>   the lull function (…/functions/v1/lull); default: the running \`lull dev\`,
                else LULL_PUBLIC_URL
  --direct      flush from this process against Redis, without the function
  --json        print the route's JSON answer
  -h, --help    this help

Exit codes: 0 ok, 1 the route failed or cannot be reached or a batch was dead-lettered,
2 usage error.`;

/** Where flushes are executed: the function's admin route, or a flusher in this process. */
interface FlushTarget {
  sweep(): Promise<unknown>;
  buffered(): Promise<string[]>;
  flushOne(conversation: string): Promise<unknown>;
  close(): Promise<void>;
}

function adminTarget(url: string, token: string): FlushTarget {
  return {
    sweep: async () => {
      const answer = await postJson(`${url}/admin/flush`, token, {}) as { sweep?: unknown };
      return answer.sweep ?? answer;
    },
    buffered: async () => {
      const listed = await getJson(`${url}/admin/buffers?limit=1000`, token) as {
        buffers: { conversation: string }[];
      };
      return listed.buffers.map((b) => b.conversation);
    },
    flushOne: async (conversation) => {
      const answer = await postJson(`${url}/admin/flush`, token, { conversation }) as {
        outcome?: unknown;
      };
      return answer.outcome ?? answer;
    },
    close: () => Promise.resolve(),
  };
}

/**
 * The processor for a direct flush. supabase-js (needed only for LULL_PROCESSOR_FUNCTION) is
 * loaded on demand: importing it prints a deprecation banner on Node 20, which every other
 * command would otherwise show.
 */
async function directProcessor(config: Config): Promise<Processor> {
  if (config.processorUrl) {
    return createHttpProcessor({
      url: config.processorUrl,
      secrets: config.processorSecrets,
      timeoutMs: config.deliveryTimeoutMs,
    });
  }
  const { createProcessor } = await import("../../delivery/create-processor.ts");
  return createProcessor(config);
}

async function directTarget(conn: Connection): Promise<FlushTarget> {
  const { config } = conn;
  if (config.redis.kind === "none") {
    throw new CommandError("no_redis", "--direct needs LULL_REDIS_URL or UPSTASH_* (or lull dev)");
  }
  if (!processorConfigured(config)) {
    throw new CommandError(
      "no_processor",
      "--direct delivers from here: set LULL_PROCESSOR_URL (or LULL_PROCESSOR_FUNCTION)",
    );
  }
  const store = openCliStore(config);
  const flusher = new Flusher({ store, processor: await directProcessor(config), config });
  // No admin API sees a direct flush: audit it here, as the OS user.
  const actor = cliActor();
  const onAuditError = (e: unknown) =>
    err(`warning: could not write the audit record: ${e instanceof Error ? e.message : e}`);
  return {
    sweep: () =>
      runAudited(
        store,
        { actor, action: "sweep", target: "" },
        () => flusher.flushDue(),
        (r) => ({ result: "ok", detail: JSON.stringify(r).slice(0, 500) }),
        onAuditError,
      ),
    buffered: async () =>
      (await storeBackend(store, config).buffers(1000)).map((b) => b.conversation),
    flushOne: async (conversation) =>
      runAudited(
        store,
        {
          actor,
          action: "flush",
          target: maskConversation(conversation, config.logPii),
          subject: await conversationFingerprint(conversation),
        },
        () => flusher.flushConversation(conversation, { force: true }),
        flushAuditResult,
        onAuditError,
      ),
    close: () => store.close(),
  };
}

/** `--direct`, `--url`, the running stack, LULL_PUBLIC_URL, else direct if it can work. */
async function chooseTarget(
  conn: Connection,
  url: string | undefined,
  direct: boolean,
): Promise<FlushTarget> {
  if (direct) return await directTarget(conn);
  const base = url ?? conn.stack?.lullUrl ?? conn.config.publicUrl;
  if (base === undefined && conn.config.redis.kind !== "none" && processorConfigured(conn.config)) {
    return await directTarget(conn);
  }
  if (base === undefined) {
    throw new CommandError(
      "no_target",
      "nothing to flush through: start `lull dev` in this directory, or pass --url " +
        "https://<project-ref>.supabase.co/functions/v1/lull with LULL_ADMIN_TOKEN set, or " +
        "flush from here with --direct (needs LULL_REDIS_URL or UPSTASH_*, and " +
        "LULL_PROCESSOR_URL).",
    );
  }
  const token = splitTokens(conn.config.adminToken)[0];
  if (!token) {
    throw new CommandError(
      "no_token",
      `LULL_ADMIN_TOKEN is not set: flushing through ${base} needs that deployment's admin ` +
        "token (supabase secrets list shows its name; the value is the one you set).",
    );
  }
  return adminTarget(functionUrl(conn, url), token);
}

/** `lull flush`. */
export const flushCommand: Command = {
  name: "flush",
  summary: "flush one conversation (or all) now, via the admin route or directly",
  help,
  async run(args, ctx) {
    const { values, positionals } = parseCommandArgs("flush", args, {
      url: { type: "string" },
      due: { type: "boolean" },
      direct: { type: "boolean" },
    });
    if (positionals.length > 1) {
      throw new UsageError(`unexpected argument '${positionals[1]}'`, "flush");
    }
    const conversation = positionals[0];
    if (conversation !== undefined && values.due) {
      throw new UsageError("--due flushes what is due everywhere; drop the conversation", "flush");
    }
    if (values.direct && values.url !== undefined) {
      throw new UsageError("--direct and --url exclude each other", "flush");
    }
    const conn = resolveConnection(ctx.env, ctx.cwd);
    const target = await chooseTarget(conn, values.url, values.direct === true);
    try {
      if (values.due) {
        const counts = await withProgress("sweeping", () => target.sweep());
        if (values.json) outJson({ sweep: counts });
        else out(`sweep: ${JSON.stringify(counts)}`);
        return 0;
      }
      const targets = conversation !== undefined
        ? [conversation]
        : await withProgress("listing buffers", () => target.buffered());
      const results: { conversation: string; outcome: unknown }[] = [];
      await withProgress(`flushing ${targets.length} conversation(s)`, async () => {
        for (const c of targets) {
          results.push({ conversation: c, outcome: await target.flushOne(c) });
        }
      });
      // A batch that went to the DLQ is a failure the caller (a script, CI) must notice.
      const dead = results.filter((r) =>
        (r.outcome as { status?: string } | null)?.status === "dead"
      );
      if (values.json) {
        outJson(conversation !== undefined ? results[0] : { flushed: results });
        return dead.length > 0 ? 1 : 0;
      }
      if (results.length === 0) out("nothing buffered: nothing to flush");
      for (const r of results) out(`${r.conversation}: ${describeOutcome(r.outcome)}`);
      if (dead.length > 0) {
        err(
          `${dead.length} batch(es) dead-lettered: see \`lull dlq list\`, fix the processor, ` +
            "then `lull dlq requeue <batchId>`.",
        );
      }
      return dead.length > 0 ? 1 : 0;
    } finally {
      await target.close();
    }
  },
};
