/**
 * The durable trigger's wake-up on a real PostgreSQL (supabase/migrations/*_lull_wakeup.sql
 * through src/wakeup/postgres-wakeup.ts): lowering, settling against the version a sweep read
 * (a lowering that raced the sweep is kept), and take_wakeup's decision (due, throttle,
 * heartbeat). The Cron job itself (pg_cron + pg_net) is exercised by test/supabase/cli.test.ts.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPostgresWakeup } from "../../src/wakeup/postgres-wakeup.ts";
import type { Wakeup } from "../../src/wakeup/wakeup.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";

let pg: PostgresServer;
let wakeup: Wakeup;

beforeAll(async () => {
  pg = await startPostgresServer();
  wakeup = createPostgresWakeup({ url: pg.url });
});

afterAll(async () => {
  await wakeup?.close();
  await pg?.stop();
});

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
