/**
 * The durable outbox end to end: the real function on Deno with LULL_DATABASE_URL, a real
 * redis-server (AOF always, so a SIGKILL loses nothing it acknowledged) and a real PostgreSQL
 * that the tests kill and restart, and a real HTTP processor.
 *
 * Redis down: messages go to the outbox and are answered 2xx (`outboxed`, `flushAt: null`);
 * when Redis answers again the sweep replays them into the buffers in arrival order and each
 * conversation's burst is delivered as one batch. Both down: 503, nothing written anywhere.
 * Postgres down alone: the normal path is unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keys } from "../../src/core/keys.ts";
import { createPostgresOutbox } from "../../src/outbox/postgres-outbox.ts";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { eventually, type ProcessorServer, startProcessorServer } from "./processor-server.ts";

const INGEST = "ingest-outbox";
const CRON = "cron-outbox";
const ADMIN = "admin-outbox";
let redis: RedisServer;
let pg: PostgresServer;
let processor: ProcessorServer;
let fns: FunctionsServer;
const prefix = testPrefix("e2eoutbox");

beforeAll(async () => {
  [redis, pg, processor] = await Promise.all([
    startRedisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] }),
    startPostgresServer(),
    startProcessorServer(),
  ]);
  fns = await startFunctions({
    env: {
      ...fastEnv,
      // A window long enough that a burst split by the outage is still open when Redis returns.
      LULL_WINDOW_MS: "3000",
      LULL_MAX_WAIT_MS: "20000",
      LULL_REDIS_URL: redis.url,
      LULL_DATABASE_URL: pg.url,
      LULL_KEY_PREFIX: prefix,
      LULL_INGEST_TOKEN: INGEST,
      LULL_CRON_SECRET: CRON,
      LULL_ADMIN_TOKEN: ADMIN,
      LULL_PROCESSOR_URL: processor.url,
      LULL_PROCESSOR_SECRET: "proc-outbox",
      LULL_LOG_LEVEL: "error",
    },
  });
});

afterAll(async () => {
  await fns?.stop();
  await processor?.close();
  await pg?.stop();
  await redis?.stop();
});

interface Accepted {
  accepted: number;
  duplicates: number;
  outboxed?: number;
  degraded?: number;
  buffers: { conversation: string; size: number; flushAt: string | null }[];
}

function send(conversation: string, id: string): Promise<Response> {
  return fetch(`${fns.lullUrl}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
    body: JSON.stringify({ conversation, id, text: `text ${id}` }),
  });
}

async function sweep(): Promise<Record<string, unknown>> {
  const res = await fetch(`${fns.lullUrl}/flush`, {
    method: "POST",
    headers: { authorization: `Bearer ${CRON}` },
  });
  expect(res.status).toBe(200);
  return await res.json() as Record<string, unknown>;
}

async function outboxIds(conversation: string): Promise<string[]> {
  const rows = await pg.sql`
    select message_id from lull.outbox where conversation = ${conversation} order by seq`;
  return rows.map((r) => String(r.message_id));
}

function deliveredIds(conversation: string): string[][] {
  return processor.of(conversation).map((d) => d.batch.messages.map((m) => m.id));
}

describe("e2e: the durable outbox", () => {
  it("Redis killed mid-burst: 2xx from the outbox, then one batch per conversation, in order", async () => {
    const a = `burst-a:${prefix}`;
    const b = `burst-b:${prefix}`;
    // The burst starts while Redis is up...
    const first = await send(a, "a1");
    expect(first.status).toBe(202);
    expect((await first.json() as Accepted).buffers[0]!.flushAt).not.toBeNull();

    await redis.kill();
    // ...and goes on while it is down: every message lands in the outbox, answered 2xx.
    const during: Accepted[] = [];
    for (const [conv, id] of [[a, "a2"], [b, "b1"], [a, "a3"], [b, "b2"], [a, "a4"]] as const) {
      const res = await send(conv, id);
      expect(res.status).toBe(202);
      during.push(await res.json() as Accepted);
    }
    for (const body of during) {
      expect(body).toMatchObject({ accepted: 1, duplicates: 0, outboxed: 1 });
      expect(body.degraded).toBeUndefined();
      expect(body.buffers[0]!.flushAt).toBeNull();
    }
    // The provider redelivers one of them during the outage: stored once.
    const again = await send(b, "b1");
    expect(again.status).toBe(202);
    expect(await again.json()).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await outboxIds(a)).toEqual(["a2", "a3", "a4"]);
    expect(await outboxIds(b)).toEqual(["b1", "b2"]);

    // Health says Redis is down and shows what waits in the outbox.
    const health = await fetch(`${fns.lullUrl}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({
      status: "down",
      outbox: { configured: true, ok: true, depth: 5 },
    });
    expect(processor.deliveries.filter((d) => d.batch.conversation === a)).toEqual([]);

    await redis.start();
    // The first sweep that finds Redis answering replays the outbox.
    await eventually(
      async () => (await sweep(), (await outboxIds(a)).length + (await outboxIds(b)).length === 0),
      "the outbox to be replayed",
      { intervalMs: 300 },
    );
    await eventually(
      () => processor.of(a).length > 0 && processor.of(b).length > 0,
      "both conversations' batches",
      { tick: sweep, intervalMs: 300 },
    );
    expect(deliveredIds(a)).toEqual([["a1", "a2", "a3", "a4"]]);
    expect(deliveredIds(b)).toEqual([["b1", "b2"]]);
    expect(processor.of(a)[0]!.batch.degraded).toBe(false);

    const metrics = await (await fetch(`${fns.lullUrl}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    })).text();
    expect(metrics).toMatch(/^lull_outbox_writes_total\{result="written"\} 5$/m);
    expect(metrics).toMatch(/^lull_outbox_writes_total\{result="duplicate"\} 1$/m);
    expect(metrics).toMatch(/^lull_outbox_replayed_total\{result="appended"\} 5$/m);
    expect(metrics).toMatch(/^lull_outbox_depth 0$/m);
  });

  it("many conversations at once across a Redis outage: every message once, each in the order it was sent", async () => {
    // Conversations send side by side (so one isolate's outbox checks share statements), each
    // one message at a time, before, during and right after the outage; the ones after it
    // arrive while the outbox still holds rows for some conversations and none for others.
    const conversations = Array.from({ length: 24 }, (_, i) => `many${i}:${prefix}`);
    const sent = new Map<string, string[]>(conversations.map((c) => [c, []]));
    const sendAll = (phase: string, count: number) =>
      Promise.all(conversations.map(async (c, i) => {
        // Only even conversations write during the outage: the odd ones have no rows.
        if (phase === "down" && i % 2 === 1) return;
        for (let n = 0; n < count; n++) {
          const id = `${phase}${n}`;
          const res = await send(c, id);
          expect(res.status, `${c} ${id}`).toBe(202);
          sent.get(c)!.push(id);
        }
      }));
    await sendAll("up", 2);
    await redis.kill();
    await sendAll("down", 3);
    const depth = (await pg.sql`select count(*)::int as n from lull.outbox`)[0]!.n as number;
    expect(depth).toBe(12 * 3);
    await redis.start();
    await sendAll("back", 3);
    await eventually(
      async () => (await pg.sql`select count(*)::int as n from lull.outbox`)[0]!.n === 0,
      "the outbox to be replayed",
      { tick: sweep, intervalMs: 300 },
    );
    const received = (c: string) => {
      // A batch delivered again (its ack lost to the kill) comes under the same batchId.
      const batches = new Map<string, string[]>();
      for (const d of processor.of(c)) {
        batches.set(d.batch.batchId, d.batch.messages.map((m) => m.id));
      }
      return [...batches.values()].flat();
    };
    await eventually(
      () => conversations.every((c) => received(c).length >= sent.get(c)!.length),
      "every conversation's messages",
      { tick: sweep, intervalMs: 300 },
    );
    for (const c of conversations) expect(received(c), c).toEqual(sent.get(c));
  });

  it("rows another isolate wrote: concurrent messages of those conversations queue behind them, the others do not wait", async () => {
    // Another isolate's appends timed out (Redis answered it late, this one on time): it wrote
    // those messages to the outbox, as its adapter does, and answered 2xx. Redis is up here, so
    // only the pending check stands between a new message and overtaking them.
    const other = createPostgresOutbox({ url: pg.url });
    const conversations = Array.from({ length: 24 }, (_, i) => `rows${i}:${prefix}`);
    const expected = new Map<string, string[]>();
    try {
      for (const [i, c] of conversations.entries()) {
        expected.set(c, []);
        if (i % 2 === 1) continue;
        for (const id of ["r0", "r1"]) {
          await other.write({ provider: "generic", conversation: c, id, text: `text ${id}` });
          expected.get(c)!.push(id);
        }
      }
    } finally {
      await other.close();
    }
    await Promise.all(conversations.map(async (c) => {
      for (const id of ["m0", "m1", "m2"]) {
        const res = await send(c, id);
        expect(res.status, `${c} ${id}`).toBe(202);
        expected.get(c)!.push(id);
      }
    }));
    const received = (c: string) =>
      processor.of(c).flatMap((d) => d.batch.messages.map((m) => m.id));
    await eventually(
      () => conversations.every((c) => received(c).length >= expected.get(c)!.length),
      "every conversation's messages",
      { tick: sweep, intervalMs: 300 },
    );
    for (const c of conversations) expect(received(c), c).toEqual(expected.get(c));
    expect(await pg.sql`select 1 from lull.outbox where conversation like ${"rows%"}`).toHaveLength(
      0,
    );
  });

  it("Redis and Postgres both down: 503, and nothing is half-written", async () => {
    const c = `both:${prefix}`;
    await Promise.all([redis.kill(), pg.kill()]);
    try {
      const res = await send(c, "c1");
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(await res.json()).toMatchObject({ error: { code: "outbox_failed" } });
    } finally {
      await Promise.all([redis.start(), pg.start()]);
    }
    expect(await outboxIds(c)).toEqual([]);
    const keys = new Keys(prefix, 16).conversation(c);
    expect(await redis.client.exists(keys.seen, keys.buffer, keys.meta)).toBe(0);

    // The provider retries once things are back: buffered once, delivered once.
    const retried = await eventually(
      async () => {
        const res = await send(c, "c1");
        return res.status === 202 ? await res.json() as Accepted : null;
      },
      "the retry to be accepted",
      { intervalMs: 300 },
    );
    expect(retried.accepted + retried.duplicates).toBe(1);
    await eventually(() => processor.of(c).length > 0, "the batch", {
      tick: sweep,
      intervalMs: 300,
    });
    expect(deliveredIds(c)).toEqual([["c1"]]);
    expect(await outboxIds(c)).toEqual([]);
  });

  it("Postgres down alone changes nothing for the normal path", async () => {
    const d = `pgdown:${prefix}`;
    await pg.kill();
    try {
      for (const id of ["d1", "d2"]) {
        const res = await send(d, id);
        expect(res.status).toBe(202);
        const body = await res.json() as Accepted;
        expect(body).toMatchObject({ accepted: 1, duplicates: 0 });
        expect(body.outboxed).toBeUndefined();
        expect(body.buffers[0]!.flushAt).not.toBeNull();
      }
      const health = await fetch(`${fns.lullUrl}/health`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({
        status: "degraded",
        store: { ok: true },
        outbox: { configured: true, ok: false },
      });
      await eventually(() => processor.of(d).length > 0, "the batch", {
        tick: sweep,
        intervalMs: 300,
      });
      expect(deliveredIds(d)).toEqual([["d1", "d2"]]);
    } finally {
      await pg.start();
    }
  });
});
