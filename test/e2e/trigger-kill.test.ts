/**
 * The durable trigger alone brings a burst home when its isolate is killed before its timer
 * fires: the `lull` function on real Deno, a real redis-server and a real PostgreSQL, and the
 * Cron job played as deployed (lull.take_wakeup every 100 ms, calling POST /lull/flush only when
 * it says so). The function keeps the burst's wake-up in lull.wake_index; SIGKILL takes the
 * function down right after the 202s, a new one starts, and only the trigger can deliver the
 * burst. Then the same with PostgreSQL down when the burst arrives: the wake-up lands in the
 * Redis wake index instead, and the trigger's heartbeat sweep finds it there once the database
 * is back.
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

const INGEST = "ingest-trigger";
const CRON = "cron-trigger";
const prefix = testPrefix("trigger");
let redis: RedisServer;
let pg: PostgresServer;
let processor: ProcessorServer;
let fns: FunctionsServer | undefined;
let wakeup: Wakeup;
let cron: PlayedCron;

const env = () => ({
  ...fastEnv,
  // A window long enough that the kill always comes before the timer fires.
  LULL_WINDOW_MS: "1500",
  LULL_GRACE_MS: "100",
  LULL_TIMER_TTL_MS: "5000",
  LULL_REDIS_URL: redis.url,
  LULL_DATABASE_URL: pg.url,
  LULL_KEY_PREFIX: prefix,
  LULL_INGEST_TOKEN: INGEST,
  LULL_CRON_SECRET: CRON,
  LULL_PROCESSOR_URL: processor.url,
});

beforeAll(async () => {
  [redis, pg, processor] = await Promise.all([
    startRedisServer(),
    startPostgresServer(),
    startProcessorServer(),
  ]);
  fns = await startFunctions({ env: env() });
  wakeup = createPostgresWakeup({ url: pg.url });
  cron = playCron(wakeup, () => fns?.lullUrl, CRON, { heartbeatMs: 60_000 });
});

afterAll(async () => {
  await cron?.stop();
  await wakeup?.close();
  await fns?.stop();
  await processor?.close();
  await pg?.stop();
  await redis?.stop();
});

async function post(conversation: string, ids: string[]) {
  for (const id of ids) {
    const res = await fetch(`${fns!.lullUrl}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
      body: JSON.stringify({ conversation, id, text: `text ${id}` }),
    });
    expect(res.status).toBe(202);
    await res.body?.cancel();
  }
}

/** Kills the function (SIGKILL: its timers die with it) and starts a fresh one. */
async function killAndRestart() {
  const old = fns!;
  fns = undefined;
  await old.kill();
  fns = await startFunctions({ env: env() });
}

const wakeKey = `${prefix}:{${prefix}:wake}:partitions`;

it(
  "killed before its timer: the trigger reads the burst's wake-up in lull.wake_index and the sweep delivers it",
  async () => {
    await post("kill:db", ["k1", "k2", "k3"]);
    const [row] = await pg.sql`
    select count(*)::int as n from lull.wake_index where due_at is not null`;
    expect(row!.n).toBe(1);
    expect(await redis.client.exists(wakeKey)).toBe(0);
    const before = cron.sweeps;
    await killAndRestart();
    await eventually(() => processor.of("kill:db").length === 1, "the trigger's sweep to deliver", {
      timeoutMs: 20_000,
    });
    expect(processor.of("kill:db")[0]!.batch.messages.map((m) => m.id)).toEqual(["k1", "k2", "k3"]);
    expect(cron.sweeps).toBeGreaterThan(before);
    await eventually(
      async () => (await wakeup.status()).dueAtMs === null,
      "the sweep to settle the wake index",
      { timeoutMs: 10_000 },
    );
  },
  60_000,
);

it(
  "database down when the burst came: the Redis wake index holds it, and the heartbeat sweep delivers it",
  async () => {
    // The heartbeat was a minute, as deployed, so in the first case only a due wake-up could fire
    // the sweep; now short, so this case (which waits for it) is quick.
    cron.heartbeatMs = 3000;
    await pg.kill();
    try {
      await post("kill:redis", ["r1", "r2"]);
      // The function could not reach the database: the Redis wake index took the wake-up.
      expect(Number(await redis.client.zcard(wakeKey))).toBe(1);
      await killAndRestart();
    } finally {
      await pg.start();
    }
    await eventually(() => processor.of("kill:redis").length === 1, "the heartbeat's sweep", {
      timeoutMs: 30_000,
    });
    expect(processor.of("kill:redis")[0]!.batch.messages.map((m) => m.id)).toEqual(["r1", "r2"]);
    await eventually(async () => Number(await redis.client.zcard(wakeKey)) === 0, "the settle", {
      timeoutMs: 10_000,
    });
  },
  90_000,
);
