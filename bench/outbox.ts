/**
 * `npm run bench:outbox`: what the durable outbox costs, on a private redis-server and a private
 * PostgreSQL, in one run, through the real handler (POST /lull/messages, in process).
 *
 * 1. Latency, interleaved op by op so every path sees the same machine load:
 *    - `append`: the normal path with an outbox configured (the "rows pending?" check, then
 *      one append script);
 *    - `append (no outbox)`: the same request on an app without a database (the old path);
 *    - `outbox write`: Redis down (its breaker open, so it fails fast), the message written to
 *      the outbox and answered 2xx.
 *    Repeated (`--reps`, default 3): p50/p99 per repetition, then min/median/max across them.
 * 2. Outbox depth over time during an outage: redis-server SIGKILLed for `--outage-ms`
 *    (default 3000) while 20 conversations keep sending; the sweep (every 500 ms, as Cron)
 *    replays it once Redis is back. Depth is sampled every 250 ms.
 */
import { performance } from "node:perf_hooks";
import { parseConfig } from "../src/core/config.ts";
import { RedisUnavailableError } from "../src/core/errors.ts";
import type { BufferStore } from "../src/core/types.ts";
import { type App, createApp } from "../src/app.ts";
import { createLogger } from "../src/observability/logger.ts";
import { createPostgresOutbox } from "../src/outbox/postgres-outbox.ts";
import { createTcpClient } from "../src/redis/tcp-client.ts";
import { bufferSettings } from "../src/store/create-store.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import { startPostgresServer } from "../test/harness/postgres-server.ts";
import { startRedisServer } from "../test/harness/redis-server.ts";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const OPS = arg("--ops", 400);
const REPS = arg("--reps", 3);
const OUTAGE_MS = arg("--outage-ms", 3000);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function summary(values: number[]): { p50: number; p99: number } {
  const s = [...values].sort((a, b) => a - b);
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99) };
}

function spread(values: number[]): string {
  const s = [...values].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(3);
  return `min ${f(s[0]!)}  median ${f(s[Math.floor(s.length / 2)]!)}  max ${f(s[s.length - 1]!)}`;
}

const env = (redisUrl: string, prefix: string, databaseUrl?: string) =>
  parseConfig({
    LULL_REDIS_URL: redisUrl,
    ...(databaseUrl ? { LULL_DATABASE_URL: databaseUrl } : {}),
    LULL_KEY_PREFIX: prefix,
    LULL_INGEST_TOKEN: "bench",
    LULL_CRON_SECRET: "cron",
    LULL_PROCESSOR_URL: "http://127.0.0.1:9/unused",
    LULL_LOG_LEVEL: "error",
  });

function makeApp(
  redisUrl: string,
  prefix: string,
  databaseUrl: string | undefined,
  redisDown = false,
): App {
  const config = env(redisUrl, prefix, databaseUrl);
  const real = new RedisStore({
    client: createTcpClient({ url: redisUrl }),
    settings: bufferSettings(config),
  });
  // Redis "down" the way a running isolate sees most of an outage: refused at once, so the
  // app's Redis breaker opens after 3 failures and requests go straight to the outbox (one
  // probe every 2 s still tries Redis first).
  const store = redisDown
    ? new Proxy(real, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop === "close") return value.bind(target);
        return () => Promise.reject(new RedisUnavailableError("connect ECONNREFUSED (bench)"));
      },
    }) as BufferStore
    : real;
  return createApp({
    config,
    store,
    storeKind: "tcp",
    ...(databaseUrl ? { outbox: createPostgresOutbox({ url: databaseUrl }) } : {}),
    processor: () => Promise.resolve({ kind: "delivered" }),
    waitUntil: (p) => void p.catch(() => {}),
    logger: createLogger({ level: "error", sink: () => {} }),
  });
}

let seq = 0;
async function post(app: App, conversation: string): Promise<number> {
  const id = `m${seq++}`;
  const t0 = performance.now();
  const res = await app.handler(
    new Request("http://127.0.0.1/lull/messages", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer bench" },
      body: JSON.stringify({ conversation, id, text: `bench ${id}` }),
    }),
  );
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 202) throw new Error(`unexpected ${res.status}`);
  return ms;
}

async function main(): Promise<void> {
  const [redis, pg] = await Promise.all([startRedisServer(), startPostgresServer()]);
  const apps: App[] = [];
  try {
    console.log(`outbox bench: ${OPS} interleaved ops per path, ${REPS} repetitions`);
    const withOutbox = makeApp(redis.url, "bo1", pg.url);
    const noOutbox = makeApp(redis.url, "bo2", undefined);
    const outboxWrite = makeApp(redis.url, "bo3", pg.url, true);
    apps.push(withOutbox, noOutbox, outboxWrite);
    // Warm-up: connections, script cache, JIT.
    for (let i = 0; i < 50; i++) {
      await post(withOutbox, `w:${i % 10}`);
      await post(noOutbox, `w:${i % 10}`);
      await post(outboxWrite, `ow:w:${i % 10}`);
    }
    const paths = ["append", "append (no outbox)", "outbox write"] as const;
    const perRep: Record<(typeof paths)[number], { p50: number; p99: number }[]> = {
      append: [],
      "append (no outbox)": [],
      "outbox write": [],
    };
    for (let rep = 0; rep < REPS; rep++) {
      const samples: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p, []]));
      for (let i = 0; i < OPS; i++) {
        // 100 conversations per path, so bursts are ordinary (a few messages each).
        const conv = `r${rep}:${i % 100}`;
        samples.append!.push(await post(withOutbox, conv));
        samples["append (no outbox)"]!.push(await post(noOutbox, conv));
        // Its own conversations: the outbox table is shared, and rows pending for a
        // conversation would send the `append` path through the queue-behind replay.
        samples["outbox write"]!.push(await post(outboxWrite, `ow:${conv}`));
      }
      for (const p of paths) perRep[p].push(summary(samples[p]!));
      // Keep the outbox from growing across repetitions (it is only written, never replayed).
      await pg.sql`delete from lull.outbox`;
    }
    console.log("\nper request through the handler, ms (p50 / p99 per repetition):");
    for (const p of paths) {
      console.log(
        `  ${p.padEnd(20)} ` +
          perRep[p].map((s) => `${s.p50.toFixed(3)} / ${s.p99.toFixed(3)}`).join("   "),
      );
    }
    console.log("\nacross repetitions:");
    for (const p of paths) {
      console.log(`  ${p.padEnd(20)} p50 ${spread(perRep[p].map((s) => s.p50))}`);
      console.log(`  ${"".padEnd(20)} p99 ${spread(perRep[p].map((s) => s.p99))}`);
    }
    const added = (k: "p50" | "p99") =>
      perRep["outbox write"].map((s, i) => s[k] - perRep.append[i]![k]);
    const addedVsOld = (k: "p50" | "p99") =>
      perRep["outbox write"].map((s, i) => s[k] - perRep["append (no outbox)"][i]![k]);
    const check = (k: "p50" | "p99") =>
      perRep.append.map((s, i) => s[k] - perRep["append (no outbox)"][i]![k]);
    console.log(`\noutbox write minus append:       p50 ${spread(added("p50"))}`);
    console.log(`                                 p99 ${spread(added("p99"))}`);
    console.log(`outbox write minus no-outbox:    p50 ${spread(addedVsOld("p50"))}`);
    console.log(`                                 p99 ${spread(addedVsOld("p99"))}`);
    console.log(`the per-append check's cost:     p50 ${spread(check("p50"))}`);
    console.log(`                                 p99 ${spread(check("p99"))}`);

    await outageRun(redis, pg.url, apps);
  } finally {
    for (const app of apps) await app.close().catch(() => {});
    await pg.stop();
    await redis.stop();
  }
}

/** Depth over time: senders keep going through a real redis-server kill and restart. */
async function outageRun(
  redis: Awaited<ReturnType<typeof startRedisServer>>,
  databaseUrl: string,
  apps: App[],
): Promise<void> {
  const app = makeApp(redis.url, "bo4", databaseUrl);
  apps.push(app);
  const outbox = app.ctx.outbox!.outbox;
  const started = performance.now();
  const samples: { t: number; depth: number; note: string }[] = [];
  let note = "redis up";
  let stop = false;
  let sent = 0;
  let refused = 0;
  const sender = (async () => {
    let i = 0;
    while (!stop) {
      try {
        await post(app, `out:${i++ % 20}`);
        sent++;
      } catch {
        refused++;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const sampler = (async () => {
    while (!stop) {
      const { depth } = await outbox.depth();
      samples.push({ t: Math.round(performance.now() - started), depth, note });
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const sweeper = (async () => {
    while (!stop) {
      await app.handler(
        new Request("http://127.0.0.1/lull/flush", {
          method: "POST",
          headers: { authorization: "Bearer cron" },
        }),
      ).then((r) => r.arrayBuffer()).catch(() => {});
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  await new Promise((r) => setTimeout(r, 1000));
  await redis.kill();
  note = "redis down";
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  await redis.start();
  note = "redis back";
  const backAt = performance.now();
  while (performance.now() - backAt < 10_000) {
    await new Promise((r) => setTimeout(r, 250));
    const last = samples[samples.length - 1];
    if (
      last && last.note === "redis back" && last.depth === 0 && performance.now() - backAt > 2000
    ) {
      break;
    }
  }
  stop = true;
  await Promise.all([sender, sampler, sweeper]);
  console.log(
    `\noutbox depth during a ${OUTAGE_MS} ms redis-server outage (20 conversations, one ` +
      `sender, ~10 ms between messages; sweep every 500 ms):`,
  );
  for (const s of samples) {
    console.log(`  t=${String(s.t).padStart(6)} ms  depth ${s.depth}  (${s.note})`);
  }
  console.log(`  sent ${sent} (2xx), refused ${refused}`);
}

await main();
