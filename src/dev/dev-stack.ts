/**
 * `lull dev`: the whole product on one machine, wired as it is deployed.
 *
 * - Redis: LULL_REDIS_URL or UPSTASH_* when set; else a private redis-server on a free port;
 *   else (no redis-server installed) the memory store inside the functions process.
 * - The Upstash-compatible REST gateway in front of TCP Redis, so the functions reach Redis
 *   through UPSTASH_REDIS_REST_URL exactly as in the cloud.
 * - Both functions served by Deno at http://127.0.0.1:<port>/functions/v1/<name>.
 * - The example processor (`lull-processor`) receives the batches, unless LULL_PROCESSOR_URL
 *   or LULL_PROCESSOR_FUNCTION points elsewhere.
 * - Supabase Cron, played locally as the migration's job plays it: every LULL_SWEEP_INTERVAL_MS
 *   lull.take_wakeup() decides whether POST /lull/flush is due (something due, or the heartbeat).
 * - The outbox's Postgres: LULL_DATABASE_URL (or SUPABASE_DB_URL) when set; else (unless the
 *   memory store is used) a private
 *   PostgreSQL (initdb + postgres, found on PATH or in /usr/lib/postgresql/<version>/bin) on a
 *   free port; else none, and the outbox is off (said loudly). The outbox migration is applied.
 *
 * Every child leads its own process group and is stopped with it; the temp dir and
 * `.lull/dev.json` are removed on stop.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Config, type Env, parseConfig } from "../core/config.ts";
import { eachLine, type ManagedChild, spawnChild, stopChild } from "./child-processes.ts";
import { devSecrets, secretEnv } from "./dev-secrets.ts";
import { type DevState, removeDevState, writeDevState } from "./dev-state.ts";
import { findRedisServer, type LaunchedRedis, launchRedis } from "./redis-launcher.ts";
import {
  applyLullMigrations,
  findPostgresBinaries,
  type LaunchedPostgres,
  launchPostgres,
} from "./postgres-launcher.ts";
import { startUpstashGateway, type UpstashGateway } from "./upstash-gateway.ts";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { ConfigError, LullError } from "../core/errors.ts";
import { redisUrlProblem } from "../core/redis-url.ts";
import { probeRedisUrl, probeUpstash } from "./redis-probe.ts";
import { createPostgresWakeup } from "../wakeup/postgres-wakeup.ts";
import { HEARTBEAT_MS } from "../wakeup/wakeup.ts";

/** The repository root (this file is src/dev/dev-stack.ts). */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Options for {@link startDevStack}. */
export interface DevStackOptions {
  /**
   * Port of the functions server.
   * @default 54321
   */
  port: number;
  /** The user's environment (LULL_*, UPSTASH_*, provider secrets). */
  env: Env;
  /** Where `.lull/dev.json` is written. */
  cwd: string;
  /** Each line the functions print (their JSON logs, the processor's batch lines). */
  onFunctionsLine: (line: string, stream: "stdout" | "stderr") => void;
  /** Called once if a child exits on its own while the stack runs. */
  onChildExit: (name: string, code: number | string) => void;
  /** A sweep call failed (network error or non-2xx); `detail` says how. */
  onSweepError: (detail: string) => void;
  /**
   * How long to wait for Deno to serve the functions (first run compiles and caches).
   * @default 120000
   */
  startTimeoutMs?: number;
  /** Aborts start-up (Ctrl-C while Deno is still compiling): everything started is stopped. */
  signal?: AbortSignal;
}

/** A running stack. */
export interface DevStack {
  state: DevState;
  /** Parsed config the functions run with (same env). */
  config: Config;
  /** LULL_PUBLIC_URL the functions use (Twilio signs it). */
  publicUrl: string;
  /** Stops every child, closes the gateway, removes the temp dir and `.lull/dev.json`. */
  stop(): Promise<void>;
}

/** Deno permissions the functions need: network (serve, Redis, processor), env, files. */
const denoPermissions = ["--allow-net", "--allow-env", "--allow-read", "--allow-sys"];

/** Start-up was interrupted (SIGINT/SIGTERM before the stack was ready). */
export class DevStackAbortedError extends LullError {
  constructor() {
    super("dev_aborted", "start-up interrupted");
  }
}

/** The functions port is taken: fail before starting anything. */
export class PortInUseError extends LullError {
  constructor(readonly port: number) {
    super("port_in_use", `port ${port} is in use`);
  }
}

/** Resolves if 127.0.0.1:`port` can be bound right now, else throws {@link PortInUseError}. */
async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once("error", () => reject(new PortInUseError(port)));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve()));
  });
}

/** Starts the functions server and resolves once it prints `listening <url>`. */
async function startFunctions(
  port: number,
  env: Record<string, string>,
  options: DevStackOptions,
  readOnly: boolean,
): Promise<{ child: ManagedChild; url: string }> {
  const deno = join(repoRoot, "node_modules", ".bin", "deno");
  const child = spawnChild("functions", deno, [
    "run",
    ...denoPermissions,
    join(repoRoot, "src", "dev", "serve-functions.ts"),
    "--port",
    String(port),
    ...(readOnly ? ["--read-only"] : []),
  ], { cwd: repoRoot, env });
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  let ready: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => {
    ready = resolve;
  });
  const recent: string[] = [];
  const onLine = (stream: "stdout" | "stderr") => (line: string) => {
    const match = /^listening (\S+)/.exec(line);
    if (match?.[1]) return ready(match[1]);
    recent.push(line);
    if (recent.length > 20) recent.shift();
    options.onFunctionsLine(line, stream);
  };
  eachLine(child.process.stdout, onLine("stdout"));
  eachLine(child.process.stderr, onLine("stderr"));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const aborted = new Promise<{ aborted: true }>((resolve) => {
    if (options.signal?.aborted) resolve({ aborted: true });
    options.signal?.addEventListener("abort", () => resolve({ aborted: true }), { once: true });
  });
  const outcome = await Promise.race([
    listening,
    aborted,
    child.exited.then((code) => ({ exited: code })),
    new Promise<{ timeout: true }>((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (typeof outcome === "string") return { child, url: outcome };
  await stopChild(child, 500);
  if ("aborted" in outcome) throw new DevStackAbortedError();
  const why = "exited" in outcome
    ? `exited (${outcome.exited})`
    : `did not start within ${timeoutMs} ms`;
  throw new Error(
    `the functions server ${why}` + (recent.length ? `:\n  ${recent.join("\n  ")}` : ""),
  );
}

/** Starts the stack. On failure, everything already started is stopped before rethrowing. */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const userEnv = options.env;
  const userRedisUrl = userEnv.LULL_REDIS_URL?.trim();
  // A typo in LULL_REDIS_URL is reported before anything starts, with the fix.
  const urlProblem = userRedisUrl ? redisUrlProblem(userRedisUrl) : null;
  if (urlProblem) {
    throw new ConfigError([{
      variables: ["LULL_REDIS_URL"],
      message: `LULL_REDIS_URL ${urlProblem}`,
    }]);
  }
  await assertPortFree(options.port);
  // A Redis the user named must answer now: say so once, clearly, rather than on every sweep.
  if (userRedisUrl) await probeRedisUrl(userRedisUrl);
  else if (userEnv.UPSTASH_REDIS_REST_URL?.trim()) {
    await probeUpstash(
      userEnv.UPSTASH_REDIS_REST_URL.trim(),
      userEnv.UPSTASH_REDIS_REST_TOKEN?.trim() ?? "",
    );
  }
  const secrets = devSecrets(userEnv);
  const functionsUrl = `http://127.0.0.1:${options.port}/functions/v1`;
  const lullUrl = `${functionsUrl}/lull`;
  const publicUrl = userEnv.LULL_PUBLIC_URL?.trim() || lullUrl;

  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // keep going: every other resource must still be released
      }
    }
  };

  try {
    let store: DevState["store"];
    let redisUrl: string | null = null;
    let gateway: UpstashGateway | null = null;
    let tempDir: string | null = null;
    let redis: LaunchedRedis | null = null;
    const storeEnv: Record<string, string> = {};

    const userRedis = userEnv.LULL_REDIS_URL?.trim();
    const userUpstash = userEnv.UPSTASH_REDIS_REST_URL?.trim();
    if (userRedis) {
      store = "redis";
      redisUrl = userRedis;
    } else if (userUpstash) {
      store = "upstash";
      storeEnv.UPSTASH_REDIS_REST_URL = userUpstash;
      storeEnv.UPSTASH_REDIS_REST_TOKEN = userEnv.UPSTASH_REDIS_REST_TOKEN?.trim() ?? "";
    } else {
      const binary = findRedisServer(userEnv.PATH);
      if (binary) {
        store = "redis-server";
        tempDir = mkdtempSync(join(tmpdir(), "lull-dev-"));
        const dir = tempDir;
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        redis = await launchRedis(binary, dir);
        cleanups.push(() => redis?.stop());
        redisUrl = redis.url;
      } else {
        store = "memory";
      }
    }
    // The outbox's Postgres: the user's database, a private server, or none (outbox off).
    let outbox: DevState["outbox"] = "off";
    let databaseUrl: string | null = null;
    let postgresServer: LaunchedPostgres | null = null;
    const userDatabase = userEnv.LULL_DATABASE_URL?.trim() || userEnv.SUPABASE_DB_URL?.trim();
    if (userDatabase) {
      outbox = "database-url";
      databaseUrl = userDatabase;
    } else if (store !== "memory") {
      // (With the in-memory store Redis cannot go down, so there is nothing for an outbox to do.)
      const binaries = findPostgresBinaries(userEnv.PATH);
      if (binaries) {
        if (!tempDir) {
          tempDir = mkdtempSync(join(tmpdir(), "lull-dev-"));
          const dir = tempDir;
          cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        }
        // The server may run as another user (postgres refuses root): let it reach its dir.
        chmodSync(tempDir, 0o711);
        const pgDir = join(tempDir, "postgres");
        mkdirSync(pgDir);
        postgresServer = await launchPostgres(binaries, pgDir);
        const pgStarted = postgresServer;
        cleanups.push(() => pgStarted.stop());
        outbox = "postgres";
        databaseUrl = postgresServer.url;
      }
    }
    if (databaseUrl) await applyLullMigrations(databaseUrl, repoRoot);

    if (redisUrl) {
      // The functions reach TCP Redis through the REST gateway, as they reach Upstash deployed.
      const token = `dev-gateway-${randomBytes(18).toString("base64url")}`;
      gateway = await startUpstashGateway({ redisUrl, token });
      const g = gateway;
      cleanups.push(() => g.close());
      storeEnv.UPSTASH_REDIS_REST_URL = gateway.url;
      storeEnv.UPSTASH_REDIS_REST_TOKEN = token;
    }

    const userProcessor = userEnv.LULL_PROCESSOR_URL?.trim();
    const userFunction = userEnv.LULL_PROCESSOR_FUNCTION?.trim();
    // A Redis dev did not start holds someone's real buffers: never flush them into the example
    // processor. Without a processor of the user's own, the stack only reads (read-only).
    const external = store === "redis" || store === "upstash";
    const readOnly = external && !userProcessor && !userFunction;
    const processorUrl = userProcessor ||
      (userFunction ? `${functionsUrl}/${userFunction}` : `${functionsUrl}/lull-processor`);

    // Whatever the user set passes through; dev only fills the gaps and owns the Redis wiring.
    const functionsEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(userEnv)) if (v !== undefined) functionsEnv[k] = v;
    delete functionsEnv.LULL_REDIS_URL;
    delete functionsEnv.UPSTASH_REDIS_REST_URL;
    delete functionsEnv.UPSTASH_REDIS_REST_TOKEN;
    Object.assign(functionsEnv, storeEnv, secretEnv(userEnv, secrets), {
      LULL_PUBLIC_URL: publicUrl,
    });
    delete functionsEnv.SUPABASE_DB_URL;
    if (databaseUrl) functionsEnv.LULL_DATABASE_URL = databaseUrl;
    else delete functionsEnv.LULL_DATABASE_URL;
    // Local data is the developer's own test data: show it, unless they chose otherwise.
    if ((userEnv.LULL_LOG_PII ?? "").trim() === "") functionsEnv.LULL_LOG_PII = "true";
    // Every message on `lull tail` and the dashboard: locally the extra command is free.
    if ((userEnv.LULL_MESSAGE_EVENTS ?? "").trim() === "") {
      functionsEnv.LULL_MESSAGE_EVENTS = "true";
    }
    if (readOnly) delete functionsEnv.LULL_PROCESSOR_URL;
    else if (!userFunction) functionsEnv.LULL_PROCESSOR_URL = processorUrl;
    else {
      functionsEnv.SUPABASE_URL ||= `http://127.0.0.1:${options.port}`;
      functionsEnv.SUPABASE_SERVICE_ROLE_KEY ||= `dev-service-role-${
        randomBytes(12).toString("hex")
      }`;
    }
    // Fail here, with the variable named, rather than inside Deno.
    const config = parseConfig(functionsEnv);

    const functions = await startFunctions(options.port, functionsEnv, options, readOnly);
    let stopping = false;
    cleanups.push(async () => {
      stopping = true;
      await stopChild(functions.child);
    });
    void functions.child.exited.then((code) => {
      if (!stopping) options.onChildExit("functions", code);
    });
    if (redis) {
      const r = redis;
      void r.child.exited.then((code) => {
        if (!stopping) options.onChildExit("redis-server", code);
      });
    }

    // Supabase Cron, played locally the way the migration's job plays it (not in read-only
    // mode: a sweep flushes): every LULL_SWEEP_INTERVAL_MS ask lull.take_wakeup() and call the
    // sweep only when something is due, or for the heartbeat; so idle costs here what it costs
    // deployed. Without a database, the last sweep's nextWakeAtMs (or the heartbeat) decides.
    // A sweep is never started while the previous one runs.
    const wakeup = databaseUrl ? createPostgresWakeup({ url: databaseUrl }) : null;
    cleanups.push(() => wakeup?.close());
    const throttleMs = Math.floor(config.sweepIntervalMs * 0.8);
    let comeBackAtMs = 0;
    let sweeping = false;
    const sweep = setInterval(async () => {
      if (sweeping || readOnly) return;
      sweeping = true;
      try {
        const due = wakeup
          ? await wakeup.take(throttleMs, HEARTBEAT_MS)
          : Date.now() >= comeBackAtMs;
        if (!due) return;
        const res = await fetch(`${lullUrl}/flush`, {
          method: "POST",
          headers: { authorization: `Bearer ${secrets.cronSecret}` },
          signal: AbortSignal.timeout(Math.max(config.sweepIntervalMs * 4, 30_000)),
        });
        const body = await res.text();
        if (!res.ok) {
          options.onSweepError(`POST /lull/flush answered ${res.status}: ${body}`);
          comeBackAtMs = 0;
          return;
        }
        const next = (JSON.parse(body) as { nextWakeAtMs?: number | null }).nextWakeAtMs ?? null;
        comeBackAtMs = Math.min(next ?? Infinity, Date.now() + HEARTBEAT_MS);
      } catch (err) {
        comeBackAtMs = 0;
        if (!stopping) options.onSweepError(`POST /lull/flush failed: ${(err as Error).message}`);
      } finally {
        sweeping = false;
      }
    }, config.sweepIntervalMs);
    cleanups.push(() => clearInterval(sweep));

    const children = [
      functions.child,
      ...(redis ? [redis.child] : []),
      ...(postgresServer ? [postgresServer.child] : []),
    ];
    const state: DevState = {
      version: 1,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      store,
      functionsUrl,
      lullUrl,
      processorUrl: readOnly ? null : processorUrl,
      external,
      readOnly,
      redisUrl,
      gatewayUrl: gateway?.url ?? null,
      outbox,
      databaseUrl,
      secrets,
      env: functionsEnv,
      tempDir,
      children: children.map((c) => ({ name: c.name, pid: c.pid })),
    };
    // Only the variables lull reads go to the state file, not the whole shell environment.
    state.env = Object.fromEntries(
      Object.entries(functionsEnv).filter(([k]) =>
        /^(LULL_|UPSTASH_|WHATSAPP_|TELEGRAM_|TWILIO_|SUPABASE_)/.test(k)
      ),
    );
    writeDevState(state, options.cwd);
    cleanups.unshift(() => removeDevState(process.pid, options.cwd));

    return { state, config, publicUrl, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
