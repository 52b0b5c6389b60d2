/**
 * `.lull/dev.json`: how a running `lull dev` is found by the other CLI commands (URLs, the Redis
 * it started, the secrets it generated). Written at start-up with mode 0600, removed on exit.
 * The file lives under the working directory, like `.git`, so two checkouts never share one.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/** Secrets generated for one local run. Never reused, never meant for production. */
export const devSecretsSchema = z.object({
  ingestToken: z.string(),
  cronSecret: z.string(),
  adminToken: z.string(),
  processorSecret: z.string(),
  whatsappAppSecret: z.string(),
  whatsappVerifyToken: z.string(),
  telegramWebhookSecret: z.string(),
  twilioAuthToken: z.string(),
});

/** Secrets generated for one local run. */
export type DevSecrets = z.infer<typeof devSecretsSchema>;

/** The content of `.lull/dev.json`. */
export const devStateSchema = z.object({
  version: z.literal(1),
  /** The `lull dev` process. */
  pid: z.number().int(),
  startedAt: z.string(),
  /**
   * Which store the functions use: a redis-server dev started, a Redis the user configured,
   * Upstash, or the memory store inside the functions process.
   */
  store: z.enum(["redis-server", "redis", "upstash", "memory"]),
  /** Base of every function, e.g. http://127.0.0.1:54321/functions/v1 */
  functionsUrl: z.string(),
  /** The lull function, e.g. http://127.0.0.1:54321/functions/v1/lull */
  lullUrl: z.string(),
  /** Where batches go (null in read-only mode: nothing is flushed). */
  processorUrl: z.string().nullable(),
  /** The Redis is the user's (LULL_REDIS_URL / UPSTASH_*), not one dev started. */
  external: z.boolean().default(false),
  /**
   * Nothing is written: the user's Redis and no processor of theirs (LULL_PROCESSOR_URL); the
   * functions answer only reads and no sweep runs.
   */
  readOnly: z.boolean().default(false),
  /** TCP Redis the CLI reads directly (null with Upstash or the memory store). */
  redisUrl: z.string().nullable(),
  /** The Upstash-compatible gateway the functions use (null when none was started). */
  gatewayUrl: z.string().nullable(),
  /**
   * The outbox's Postgres: a PostgreSQL dev started, the user's LULL_DATABASE_URL /
   * SUPABASE_DB_URL, or none (the outbox is off). Optional: older state files lack it.
   */
  outbox: z.enum(["postgres", "database-url", "off"]).optional(),
  /** The outbox database (null when the outbox is off). */
  databaseUrl: z.string().nullable().optional(),
  secrets: devSecretsSchema,
  /** Environment the functions were started with (LULL_*, UPSTASH_*, provider secrets). */
  env: z.record(z.string(), z.string()),
  /** Private temp dir of this run (redis-server's dir), removed on exit. */
  tempDir: z.string().nullable(),
  /** Child processes started by dev (each leads its own process group). */
  children: z.array(z.object({ name: z.string(), pid: z.number().int() })),
});

/** The content of `.lull/dev.json`. */
export type DevState = z.infer<typeof devStateSchema>;

/** Path of the state file for a working directory. */
export function devStatePath(cwd: string = process.cwd()): string {
  return join(cwd, ".lull", "dev.json");
}

/** Writes the state file (0600: it holds secrets). */
export function writeDevState(state: DevState, cwd: string = process.cwd()): string {
  const path = devStatePath(cwd);
  mkdirSync(join(cwd, ".lull"), { recursive: true });
  writeFileSync(path, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  return path;
}

/** Removes the state file if it is ours (another `lull dev` may have replaced it). */
export function removeDevState(pid: number, cwd: string = process.cwd()): void {
  const current = readDevState(cwd);
  if (current && current.pid !== pid) return;
  rmSync(devStatePath(cwd), { force: true });
  try {
    // Leave no empty `.lull/` behind; keep it if anything else lives there.
    if (readdirSync(join(cwd, ".lull")).length === 0) rmdirSync(join(cwd, ".lull"));
  } catch {
    // already gone
  }
}

/** Whether a process id is alive (signal 0 probes without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Parses the state file, alive or not; null when there is none or it is not ours. */
function parseStateFile(cwd: string): DevState | null {
  let raw: string;
  try {
    raw = readFileSync(devStatePath(cwd), "utf8");
  } catch {
    return null;
  }
  try {
    const parsed = devStateSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * Reads the state file of a running `lull dev`; null when there is none, it is unreadable, or
 * the process that wrote it is gone (a stale file from a killed run).
 */
export function readDevState(cwd: string = process.cwd()): DevState | null {
  const state = parseStateFile(cwd);
  return state && alive(state.pid) ? state : null;
}

/**
 * After a `lull dev` was killed outright (SIGKILL: no chance to clean up), its children keep
 * running. Stops those still alive whose command line is still theirs (so a recycled pid is
 * never signalled; Linux /proc only), removes the stale file, and returns what it stopped.
 */
export function reapStaleDevState(cwd: string = process.cwd()): string[] {
  const state = parseStateFile(cwd);
  if (!state || alive(state.pid)) return [];
  const stopped: string[] = [];
  const marks: Record<string, string> = {
    "redis-server": "redis-server",
    functions: "serve-functions.ts",
    postgres: "postgres",
  };
  for (const child of state.children) {
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${child.pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    const mark = marks[child.name];
    if (!mark || !cmdline.includes(mark)) continue;
    try {
      process.kill(-child.pid, "SIGKILL");
      stopped.push(`${child.name} (pid ${child.pid})`);
    } catch {
      // already gone
    }
  }
  if (state.tempDir?.includes("lull-dev-")) rmSync(state.tempDir, { recursive: true, force: true });
  rmSync(devStatePath(cwd), { force: true });
  return stopped;
}
