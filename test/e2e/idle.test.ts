/**
 * "Idle costs nothing", end to end: the `lull` function on real Deno, a real redis-server and a
 * real PostgreSQL holding lull.wakeup and lull.wake_index, and the durable trigger played the way the Cron job plays
 * it (take_wakeup every 100 ms here instead of 5 s). With nothing buffered there are no sweeps
 * and no Redis commands at all. A message is delivered by its in-isolate timer, which then settles
 * the wake-up its append lowered, so the trigger never has to call a sweep for it; then it is idle
 * again.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPostgresWakeup } from "../../src/wakeup/postgres-wakeup.ts";
import type { Wakeup } from "../../src/wakeup/wakeup.ts";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { playCron, type PlayedCron } from "./played-cron.ts";
import { eventually, type ProcessorServer, startProcessorServer } from "./processor-server.ts";

const INGEST = "ingest-idle";
const CRON = "cron-idle";
let redis: RedisServer;
let pg: PostgresServer;
let processor: ProcessorServer;
let fns: FunctionsServer;
let wakeup: Wakeup;
let cron: PlayedCron;
const prefix = testPrefix("idle");

beforeAll(async () => {
  [redis, pg, processor] = await Promise.all([
    startRedisServer(),
    startPostgresServer(),
    startProcessorServer(),
  ]);
  fns = await startFunctions({
    env: {
      ...fastEnv,
      LULL_WINDOW_MS: "300",
      LULL_GRACE_MS: "100",
      LULL_MAX_WAIT_MS: "2000",
      LULL_TIMER_TTL_MS: "2000",
      LULL_REDIS_URL: redis.url,
      LULL_DATABASE_URL: pg.url,
      LULL_KEY_PREFIX: prefix,
      LULL_INGEST_TOKEN: INGEST,
      LULL_CRON_SECRET: CRON,
      LULL_PROCESSOR_URL: processor.url,
    },
  });
  wakeup = createPostgresWakeup({ url: pg.url });
  cron = playCron(wakeup, () => fns.lullUrl, CRON);
});

afterAll(async () => {
  await cron?.stop();
  await wakeup?.close();
  await fns?.stop();
  await processor?.close();
  await pg?.stop();
  await redis?.stop();
});

/** Commands Redis ran so far, our own INFO calls left out. */
async function redisCommands(): Promise<number> {
  const info = await redis.client.info("commandstats");
  let total = 0;
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
    if (m[1] !== "info") total += Number(m[2]);
  }
  return total;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it(
  "idle: no sweep and no Redis command; a burst's timer settles the wake-up (no sweep); idle again",
  async () => {
    // The first take() is the heartbeat (the trigger never fired): let it pass.
    await eventually(() => cron.sweeps >= 1, "the first heartbeat", { timeoutMs: 10_000 });
    await sleep(500);

    const idle = async () => {
      const [s0, c0] = [cron.sweeps, await redisCommands()];
      await sleep(3_000);
      return { sweeps: cron.sweeps - s0, commands: (await redisCommands()) - c0 };
    };
    expect(await idle()).toEqual({ sweeps: 0, commands: 0 });

    const before = cron.sweeps;
    // The trigger holds still while the burst lives: nothing but its timer can settle the
    // wake-up its append lowered.
    cron.paused = true;
    const res = await fetch(`${fns.lullUrl}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
      body: JSON.stringify({ conversation: "idle:1", id: "i1", text: "hello" }),
    });
    expect(res.status).toBe(202);
    await eventually(() => processor.of("idle:1").length === 1, "the delivery", {
      timeoutMs: 10_000,
    });
    await eventually(
      async () => (await wakeup.status()).dueAtMs === null,
      "the timer to settle the wake-up",
      { timeoutMs: 10_000 },
    );
    expect(cron.sweeps - before).toBe(0);
    // With a database the function kept the burst's wake-up there (lull.wake_index), and Redis
    // ran no wake-index command: its wake index was never written.
    const [noted] = await pg.sql`select count(*)::int as n from lull.wake_index where epoch > 0`;
    expect(noted!.n).toBeGreaterThan(0);
    expect(await redis.client.exists(`${prefix}:{${prefix}:wake}:partitions`)).toBe(0);
    expect(await redis.client.exists(`${prefix}:{${prefix}:wake}:epoch`)).toBe(0);
    // The store's wake index is empty too: a sweep now would find no partition to visit.
    const flushed = await fetch(`${fns.lullUrl}/flush`, {
      method: "POST",
      headers: { authorization: `Bearer ${CRON}` },
    });
    expect((await flushed.json()).partitions).toBe(0);
    cron.paused = false;

    await sleep(500);
    expect(await idle()).toEqual({ sweeps: 0, commands: 0 });
  },
  60_000,
);
