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

/** Resolves the configuration (throws ConfigError on invalid env). */
export function resolveConnection(env: Env = process.env, cwd = process.cwd()): Connection {
  if (envHasRedis(env)) return { config: parseConfig(env), stack: null, source: "env" };
  const stack = readDevState(cwd);
  if (!stack) return { config: parseConfig(env), stack: null, source: "env" };
  const merged: Env = { ...env, ...stack.env };
  if (stack.redisUrl) {
    // The CLI runs in Node next to the redis-server: talk TCP to it directly, not via the gateway.
    merged.LULL_REDIS_URL = stack.redisUrl;
    delete merged.UPSTASH_REDIS_REST_URL;
    delete merged.UPSTASH_REDIS_REST_TOKEN;
  }
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
