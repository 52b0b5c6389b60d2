/**
 * The durable trigger's wake-up on a real PostgreSQL (supabase/migrations/*_lull_wakeup.sql
 * through src/wakeup/postgres-wakeup.ts): lowering, settling against the version a sweep read
 * (a lowering that raced the sweep is kept), and take_wakeup's decision (due, throttle,
 * heartbeat). The Cron job itself (pg_cron + pg_net) is exercised by test/supabase/cli.test.ts.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { DatabaseWakeIndex } from "../../src/core/ports.ts";
import { createPostgresWakeup } from "../../src/wakeup/postgres-wakeup.ts";
import type { Wakeup } from "../../src/wakeup/wakeup.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";

let pg: PostgresServer;
let wakeup: Wakeup & DatabaseWakeIndex;

beforeAll(async () => {
  pg = await startPostgresServer();
  wakeup = createPostgresWakeup({ url: pg.url });
});

afterAll(async () => {
  await wakeup?.close();
  await pg?.stop();
});

/** The scope (key prefix) of these wake index tests. */
const S = "lull";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("applies twice, and starts idle: nothing due, never fired", async () => {
  await pg.migrate();
  const s = await wakeup.status();
  expect(s).toMatchObject({ dueAtMs: null, firedAtMs: null, sweptAtMs: null });
});

it("take: the first call is the heartbeat, then nothing until something is due", async () => {
  expect(await wakeup.take(100, 60_000)).toBe(true); // never fired: heartbeat
  expect(await wakeup.take(100, 60_000)).toBe(false); // idle: no call
  const now = (await wakeup.status()).nowMs;
  await wakeup.lower(now + 300);
  expect(await wakeup.take(100, 60_000)).toBe(false); // not due yet
  await sleep(350);
  expect(await wakeup.take(100, 60_000)).toBe(true); // due
  expect(await wakeup.take(100, 60_000)).toBe(false); // throttled while the sweep runs
  await sleep(150);
  expect(await wakeup.take(100, 60_000)).toBe(true); // still due (no sweep settled it)
});

it("lower only lowers; settle resets, unless a lowering raced the sweep", async () => {
  const now = (await wakeup.status()).nowMs;
  const v0 = await wakeup.version();
  await wakeup.settle(v0, null);
  expect((await wakeup.status()).dueAtMs).toBeNull();

  await wakeup.lower(now + 10_000);
  await wakeup.lower(now + 20_000); // later: ignored
  expect((await wakeup.status()).dueAtMs).toBe(now + 10_000);

  // A sweep reads the version, a burst lowers meanwhile, the sweep settles to "idle".
  const v1 = await wakeup.version();
  await wakeup.lower(now + 5_000);
  await wakeup.settle(v1, null);
  expect((await wakeup.status()).dueAtMs).toBe(now + 5_000); // the racing lowering survived

  // The same settle without a race replaces it, later or earlier.
  const v2 = await wakeup.version();
  await wakeup.settle(v2, now + 30_000);
  const s = await wakeup.status();
  expect(s.dueAtMs).toBe(now + 30_000);
  expect(s.sweptAtMs).not.toBeNull();
});

it("heartbeat: idle, the trigger still calls once per heartbeat", async () => {
  const v = await wakeup.version();
  await wakeup.settle(v, null);
  await wakeup.take(0, 200); // whatever it says now, it just fired or it was due
  // Within a heartbeat of that (a long one, so a loaded machine cannot pass it between the two
  // calls) nothing is due: no call.
  expect(await wakeup.take(0, 60_000)).toBe(false);
  await sleep(250);
  expect(await wakeup.take(0, 200)).toBe(true);
});

it("wake index: a partition's lowering only lowers, counts its epoch, and shows in health", async () => {
  const now = (await wakeup.status()).nowMs;
  await wakeup.settle(await wakeup.version(), null);
  expect(await wakeup.partitionEpoch(S, 7)).toBe("0");
  expect(await wakeup.lowerPartition(S, 7, now + 20_000)).toBe("1");
  expect(await wakeup.lowerPartition(S, 7, now + 30_000)).toBe("2"); // later: kept at +20 s
  expect((await wakeup.status()).dueAtMs).toBe(now + 20_000);
  expect(await wakeup.lowerPartition(S, 7, now + 10_000)).toBe("3");
  expect(await wakeup.partitionEpoch(S, 7)).toBe("3");
  expect((await wakeup.status()).dueAtMs).toBe(now + 10_000);
  expect(await wakeup.duePartitions(S, now + 9_999, 16)).toEqual([]);
  expect(await wakeup.duePartitions(S, now + 10_000, 16)).toEqual([{ partition: 7, epoch: "3" }]);
});

it("wake index: a settle replaces the partition's time, unless a lowering raced it", async () => {
  const now = (await wakeup.status()).nowMs;
  const seen = await wakeup.lowerPartition(S, 3, now - 1_000);
  await wakeup.lowerPartition(S, 4, now - 2_000);
  // Earliest first, and `most` bounds the answer.
  expect(await wakeup.duePartitions(S, now, 1)).toEqual([{ partition: 4, epoch: "1" }]);
  // A burst lowers partition 3 while the sweep recomputes it: the settle only lowers.
  await wakeup.lowerPartition(S, 3, now + 5_000);
  await wakeup.settlePartition(S, 3, seen, null);
  expect(await wakeup.duePartitions(S, now + 5_000, 16)).toContainEqual({
    partition: 3,
    epoch: "2",
  });
  // Without a race it replaces it: later, or gone.
  await wakeup.settlePartition(S, 3, "2", now + 60_000);
  expect(await wakeup.duePartitions(S, now + 59_999, 16)).not.toContainEqual(
    expect.objectContaining({ partition: 3 }),
  );
  await wakeup.settlePartition(S, 3, "2", null);
  await wakeup.settlePartition(S, 4, "1", null);
  await wakeup.settlePartition(S, 7, await wakeup.partitionEpoch(S, 7), null);
  expect(await wakeup.duePartitions(S, now + 3_600_000, 16)).toEqual([]);
  expect((await wakeup.status()).dueAtMs).toBeNull();
  // The epoch survives the settle: a later lowering still counts up.
  expect(await wakeup.lowerPartition(S, 3, now + 1_000)).toBe("3");
  await wakeup.settlePartition(S, 3, "3", null);
});

it("take: fires for a due partition of the wake index, and not once it is settled", async () => {
  await wakeup.settle(await wakeup.version(), null);
  await wakeup.take(0, 60_000); // the heartbeat, if it was owed
  expect(await wakeup.take(0, 60_000)).toBe(false);
  const now = (await wakeup.status()).nowMs;
  const epoch = await wakeup.lowerPartition(S, 9, now + 200);
  expect(await wakeup.take(0, 60_000)).toBe(false); // not due yet
  await sleep(250);
  expect(await wakeup.take(0, 60_000)).toBe(true);
  // A timer delivered the burst and settled its partition: nothing more to call.
  await wakeup.settlePartition(S, 9, epoch, null);
  expect(await wakeup.take(0, 60_000)).toBe(false);
});

it("wake index: scopes (key prefixes) sharing a database keep apart", async () => {
  const now = (await wakeup.status()).nowMs;
  const staging = await wakeup.lowerPartition("staging", 2, now - 1_000);
  const production = await wakeup.lowerPartition("production", 2, now - 1_000);
  expect([staging, production]).toEqual(["1", "1"]);
  // Production's sweep settles its partition 2, with the same epoch number: staging's stays.
  await wakeup.settlePartition("production", 2, production, null);
  expect(await wakeup.duePartitions("production", now, 16)).toEqual([]);
  expect(await wakeup.duePartitions("staging", now, 16)).toEqual([{ partition: 2, epoch: "1" }]);
  expect(await wakeup.partitionEpoch("production", 2)).toBe("1");
  await wakeup.settlePartition("staging", 2, staging, null);
});
