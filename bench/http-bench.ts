/**
 * HTTP parts of `npm run bench`: ingest through the real `lull` function on real Deno
 * (src/dev/serve-functions.ts) against a bare `Deno.serve` handler doing one EVALSHA
 * (bench/bare-server.ts), with and without a flush storm; and the idle cost of `lull dev
 * --no-demo` (Redis commands and sweep invocations).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startFunctions } from "../test/harness/functions.ts";
import { freePort } from "../test/harness/redis-server.ts";
import {
  billedDelta,
  commandStats,
  compatibleEnv,
  quantile,
  type SendCommand,
  sleep,
  type Spread,
  spread,
} from "./lib.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const INGEST_TOKEN = "bench-ingest-token";
const ADMIN_TOKEN = "bench-admin-token";
const CRON_SECRET = "bench-cron-secret";

/** One load phase. */
export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Bounded closed-loop load: `connections` keep-alive sockets, each sending the next request as
 * soon as the previous answered, for `durationMs`.
 */
export async function load(
  url: string,
  connections: number,
  durationMs: number,
  body: (i: number) => string,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + durationMs;
  const one = (payload: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request({
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
          ...headers,
        },
      }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end(payload);
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const status = await one(body(i++)).catch(() => 0);
      latencies.push(performance.now() - t);
      if (status < 200 || status >= 300) errors++;
    }
  }));
  const elapsed = performance.now() - started;
  agent.destroy();
  return {
    requests: latencies.length,
    errors,
    rps: latencies.length / (elapsed / 1000),
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  };
}

/** HTTP race results per connection count. */
export interface HttpResult {
  windowMs: number;
  graceMs: number;
  stormConversations: number;
  phaseMs: number;
  /** "c16" -> phase name -> results per repetition */
  phases: Record<string, Record<"bare" | "lull" | "lullStorm", LoadResult[]>>;
  /** "c16" -> "lull/bare" | "lullStorm/bare" -> spread of the rps ratio over repetitions */
  ratios: Record<string, Record<string, Spread>>;
  /** Batches the processor received during the run. */
  batchesDelivered: number;
  /** Whether the function ran with a database (LULL_DATABASE_URL), as deployed. Absent: no. */
  withDatabase?: boolean;
}

function startBare(redisUrl: string, port: number): Promise<{ url: string; stop(): void }> {
  const deno = join(repoRoot, "node_modules", ".bin", "deno");
  const child: ChildProcess = spawn(deno, [
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-sys",
    join(repoRoot, "bench", "bare-server.ts"),
    "--port",
    String(port),
  ], { cwd: repoRoot, env: { ...process.env, LULL_REDIS_URL: redisUrl, NO_COLOR: "1" } });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`bare server did not start:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, stop: () => child.kill("SIGTERM") });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`bare server exited ${code}:\n${out}`)));
  });
}

/** A processor that answers 200 at once and counts batches. */
async function startProcessor(): Promise<{ url: string; count(): number; close(): Promise<void> }> {
  let batches = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      batches++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/batches`,
    count: () => batches,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Runs bare / lull / lull-with-storm phases at each connection count, `reps` times. With
 * `options.databaseUrl` the function runs as deployed on Supabase, with a database (the outbox,
 * lull.wakeup and the wake index lull.wake_index); the bare handler has none either way.
 */
export async function httpRace(
  redisUrl: string,
  options: {
    reps: number;
    connections: number[];
    phaseMs: number;
    stormConversations: number;
    databaseUrl?: string;
  },
): Promise<HttpResult> {
  const windowMs = 3000;
  const graceMs = 500;
  const processor = await startProcessor();
  const fns = await startFunctions({
    env: compatibleEnv({
      LULL_REDIS_URL: redisUrl,
      LULL_INGEST_TOKEN: INGEST_TOKEN,
      LULL_ADMIN_TOKEN: ADMIN_TOKEN,
      LULL_CRON_SECRET: CRON_SECRET,
      LULL_PROCESSOR_URL: processor.url,
      LULL_PROCESSOR_SECRET: "bench-processor-secret",
      LULL_KEY_PREFIX: `http${Date.now().toString(36)}`,
      LULL_WINDOW_MS: String(windowMs),
      LULL_GRACE_MS: String(graceMs),
      LULL_MAX_WAIT_MS: "60000",
      LULL_MAX_MESSAGES: "10000",
      LULL_MAX_BYTES: String(16 * 1024 * 1024),
      LULL_LOG_LEVEL: "error",
      ...(options.databaseUrl ? { LULL_DATABASE_URL: options.databaseUrl } : {}),
    }),
  });
  const bare = await startBare(redisUrl, await freePort());
  const auth = { authorization: `Bearer ${INGEST_TOKEN}` };
  const message = (conversation: string, i: number) =>
    JSON.stringify({
      conversation,
      id: `${conversation}:${i}:${Math.random().toString(36).slice(2)}`,
      text: "hi, I would like to order a pizza",
      sender: "u7",
    });
  const phases: HttpResult["phases"] = {};
  const lullMessages = `${fns.lullUrl}/messages`;
  try {
    // Warm-up of both servers (JIT, connections, script cache).
    await load(lullMessages, 8, 500, (i) => message(`warm:${i % 8}`, i), auth);
    await load(bare.url, 8, 500, (i) => message(`warm:${i % 8}`, i));
    for (let rep = 0; rep < options.reps; rep++) {
      for (const c of options.connections) {
        const key = `c${c}`;
        phases[key] ??= { bare: [], lull: [], lullStorm: [] };
        const tag = `${rep}:${c}:${Date.now().toString(36)}`;
        const order = rep % 2 === 0 ? ["bare", "lull"] : ["lull", "bare"];
        for (const which of order) {
          if (which === "bare") {
            phases[key].bare.push(
              await load(bare.url, c, options.phaseMs, (i) => message(`b:${tag}:${i % 64}`, i)),
            );
          } else {
            phases[key].lull.push(
              await load(
                lullMessages,
                c,
                options.phaseMs,
                (i) => message(`l:${tag}:${i % 64}`, i),
                auth,
              ),
            );
          }
        }
        // Flush storm: `stormConversations` one-message bursts, each arming an in-isolate
        // timer, all falling due within about the seeding time; the load runs through it.
        const seedStart = Date.now();
        let seeded = 0;
        while (seeded < options.stormConversations) {
          const r = await load(
            lullMessages,
            64,
            200,
            (i) => message(`s:${tag}:${seeded + i}`, 0),
            auth,
          );
          seeded += r.requests;
        }
        const dueAt = seedStart + windowMs + graceMs;
        await sleep(Math.max(0, dueAt - Date.now() - 200));
        const stormMs = Math.max(options.phaseMs, Date.now() - seedStart + 500);
        phases[key].lullStorm.push(
          await load(lullMessages, c, stormMs, (i) => message(`t:${tag}:${i % 64}`, i), auth),
        );
        // Let the storm and the phases' own buffers flush before the next measurement.
        await sleep(windowMs + graceMs + 500);
      }
    }
  } finally {
    bare.stop();
    await fns.stop();
    await processor.close();
  }
  const ratios: HttpResult["ratios"] = {};
  for (const [key, p] of Object.entries(phases)) {
    ratios[key] = {
      "lull/bare": spread(p.lull.map((r, i) => r.rps / p.bare[i]!.rps)),
      "lullStorm/bare": spread(p.lullStorm.map((r, i) => r.rps / p.bare[i]!.rps)),
    };
  }
  return {
    windowMs,
    graceMs,
    stormConversations: options.stormConversations,
    phaseMs: options.phaseMs,
    phases,
    ratios,
    batchesDelivered: processor.count(),
    withDatabase: options.databaseUrl !== undefined,
  };
}

/** Idle cost of `lull dev --no-demo` with nothing buffered. */
export interface IdleCost {
  seconds: number;
  commands: number;
  commandsPerHour: number;
  byCommand: Record<string, number>;
  /** `POST /lull/flush` calls counted by the function's own metric; null if not exposed. */
  sweepInvocations: number | null;
  invocationsPerHour: number | null;
  /**
   * The same two rates per window of `seconds` (consecutive windows of one `lull dev`), as a
   * spread over the windows; the totals above cover every window. Absent in older results.
   */
  windows?: { commandsPerHour: Spread; invocationsPerHour: Spread | null };
}

async function sweepRuns(baseUrl: string): Promise<number | null> {
  const res = await fetch(`${baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (!res.ok) return null;
  const text = await res.text();
  let total: number | null = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("lull_flush_runs_total") && line.includes('trigger="sweep"')) {
      total = (total ?? 0) + Number(line.trim().split(/\s+/).pop());
    }
  }
  return total ?? 0;
}

/**
 * Runs `lull dev --no-demo` against `redisUrl` for `seconds` with nothing buffered; counts the
 * Redis commands (INFO commandstats) and the sweep invocations its local Cron made.
 */
export async function idleCost(
  redisUrl: string,
  send: SendCommand,
  seconds: number,
  windows = 3,
): Promise<IdleCost> {
  const port = await freePort();
  const child = spawn(process.execPath, [
    join(repoRoot, "bin", "lull.mjs"),
    "dev",
    "--no-demo",
    "--port",
    String(port),
  ], {
    cwd: repoRoot,
    env: {
      ...process.env,
      LULL_REDIS_URL: redisUrl,
      LULL_ADMIN_TOKEN: ADMIN_TOKEN,
      LULL_CRON_SECRET: CRON_SECRET,
      LULL_INGEST_TOKEN: INGEST_TOKEN,
      // Not read-only (lull dev on a Redis it did not start sweeps only with a processor of the
      // user's): idle, nothing is ever delivered, so nothing needs to listen there.
      LULL_PROCESSOR_URL: "http://127.0.0.1:9/",
      LULL_KEY_PREFIX: `idle${Date.now().toString(36)}`,
      NO_COLOR: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const base = `http://127.0.0.1:${port}/functions/v1/lull`;
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`lull dev exited:\n${out}`);
      const ok = await fetch(`${base}/health`).then((r) => r.status < 600, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`lull dev did not start:\n${out}`);
      await sleep(500);
    }
    // Let start-up work (layout check, first sweep) pass before counting.
    await sleep(6000);
    const perHour = (n: number) => (n * 3600) / seconds;
    const commandRates: number[] = [];
    const invocationRates: number[] = [];
    const byCommand: Record<string, number> = {};
    let commands = 0;
    let invocations: number | null = 0;
    for (let w = 0; w < windows; w++) {
      // The metrics read is an admin call that may touch Redis: outside the counted window.
      const runsBefore = await sweepRuns(base);
      const before = await commandStats(send);
      await sleep(seconds * 1000);
      const after = await commandStats(send);
      const runsAfter = await sweepRuns(base);
      const delta = billedDelta(before, after);
      commands += delta.total;
      for (const [k, v] of Object.entries(delta.byCommand)) byCommand[k] = (byCommand[k] ?? 0) + v;
      commandRates.push(perHour(delta.total));
      if (runsBefore === null || runsAfter === null || invocations === null) {
        invocations = null;
      } else {
        invocations += runsAfter - runsBefore;
        invocationRates.push(perHour(runsAfter - runsBefore));
      }
    }
    const total = seconds * windows;
    return {
      seconds: total,
      commands,
      commandsPerHour: (commands * 3600) / total,
      byCommand,
      sweepInvocations: invocations,
      invocationsPerHour: invocations === null ? null : (invocations * 3600) / total,
      windows: {
        commandsPerHour: spread(commandRates),
        invocationsPerHour: invocations === null ? null : spread(invocationRates),
      },
    };
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        resolve(undefined);
      }, 5000);
      child.once("exit", () => {
        clearTimeout(t);
        resolve(undefined);
      });
    });
  }
}
