/**
 * Where a CLI command finds lull: the environment (LULL_REDIS_URL or UPSTASH_*, like the
 * deployed functions), or else the `.lull/dev.json` of a running `lull dev` in this directory.
 */
import { type Config, type Env, parseConfig } from "../core/config.ts";
import { type DevState, readDevState } from "../dev/dev-state.ts";
import { CommandError } from "./cli-errors.ts";

/** Resolved configuration plus the running local stack, if that is where it came from. */
export interface Connection {
  config: Config;
  /** The running `lull dev`, when the config came from `.lull/dev.json`. */
  stack: DevState | null;
  source: "env" | "dev";
}

const redisVariables = ["LULL_REDIS_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"];

/** Whether the environment names a Redis of its own. */
export function envHasRedis(env: Env): boolean {
  return redisVariables.some((v) => (env[v] ?? "").trim() !== "");
}

/** Whether the environment's Redis is the one the running stack uses (same URL). */
function sameRedis(env: Env, stack: DevState): boolean {
  const tcp = env.LULL_REDIS_URL?.trim();
  if (tcp) return tcp === stack.redisUrl;
  const rest = env.UPSTASH_REDIS_REST_URL?.trim();
  return stack.store === "upstash" && !!rest && rest === stack.env.UPSTASH_REDIS_REST_URL;
}

/**
 * Resolves the configuration (throws ConfigError on invalid env). The running `lull dev` in
 * `cwd` is used when the environment names no Redis, or names the same Redis as the stack (the
 * shell that started `LULL_REDIS_URL=... lull dev`); a different Redis in the environment wins.
 */
export function resolveConnection(env: Env = process.env, cwd = process.cwd()): Connection {
  const candidate = readDevState(cwd);
  const stack = candidate && (!envHasRedis(env) || sameRedis(env, candidate)) ? candidate : null;
  if (!stack) return { config: parseConfig(env), stack: null, source: "env" };
  const merged: Env = { ...env, ...stack.env };
  if (stack.redisUrl) {
    // The CLI runs in Node next to the Redis: talk TCP to it directly, not via the gateway.
    merged.LULL_REDIS_URL = stack.redisUrl;
    delete merged.UPSTASH_REDIS_REST_URL;
    delete merged.UPSTASH_REDIS_REST_TOKEN;
  }
  // The stack's Postgres (outbox, durable wake-up): a purge clears its outbox rows, and a
  // requeue from here lowers its wake-up, as the function would.
  if (stack.databaseUrl && !merged.LULL_DATABASE_URL) merged.LULL_DATABASE_URL = stack.databaseUrl;
  return { config: parseConfig(merged), stack, source: "dev" };
}

/**
 * Base URL of the lull function (…/functions/v1/lull) for commands that go through HTTP:
 * `--url`, else the running `lull dev`, else LULL_PUBLIC_URL.
 */
export function functionUrl(conn: Connection, flag: string | undefined): string {
  const url = flag ?? conn.stack?.lullUrl ?? conn.config.publicUrl;
  if (!url) {
    throw new CommandError(
      "no_url",
      "no lull URL: pass --url https://<project>.supabase.co/functions/v1/lull, set " +
        "LULL_PUBLIC_URL, or start `lull dev` in this directory.",
    );
  }
  return url.replace(/\/+$/, "");
}
