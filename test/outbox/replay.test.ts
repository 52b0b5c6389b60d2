/**
 * Outbox replay on real parts, in process: the real app (handler, Flusher, breakers) over a
 * RedisStore on a real redis-server and the Postgres outbox on a real PostgreSQL. Covers order
 * (a newer message never overtakes outbox rows), idempotence (a message both in Redis and in
 * the outbox is delivered once), and two isolates replaying at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { RedisTimeoutError } from "../../src/core/errors.ts";
import type { Batch, BufferStore, InboundMessage } from "../../src/core/types.ts";
import { type App, createApp } from "../../src/app.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { createPostgresOutbox } from "../../src/outbox/postgres-outbox.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { bufferSettings } from "../../src/store/create-store.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { fastEnv } from "../e2e/env.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

let redis: RedisServer;
let pg: PostgresServer;
const apps: App[] = [];

beforeAll(async () => {
  [redis, pg] = await Promise.all([startRedisServer(), startPostgresServer()]);
});

afterAll(async () => {
  for (const app of apps) await app.close();
  await pg?.stop();
  await redis?.stop();
});

interface Isolate {
  app: App;
  delivered: Batch[];
  /** Appends that commit in Redis and then answer with a timeout (an ambiguous outcome). */
  ambiguous: Set<string>;
  waited: Promise<unknown>[];
  /** Alerts sent: `kind: text`. */
  alerts: string[];
}

/** One "isolate": its own Redis client, Postgres pool and app, sharing the servers. */
function isolate(prefix: string, options: { outboxStuckMs?: number } = {}): Isolate {
  const config = parseConfig({
    ...fastEnv,
    LULL_REDIS_URL: redis.url,
    LULL_DATABASE_URL: pg.url,
    LULL_KEY_PREFIX: prefix,
    LULL_INGEST_TOKEN: "ingest",
    LULL_CRON_SECRET: "cron",
    LULL_PROCESSOR_URL: "http://127.0.0.1:9/unused",
    LULL_LOG_LEVEL: "error",
  });
  const real = new RedisStore({
    client: createTcpClient({ url: redis.url }),
    settings: bufferSettings(config),
  });
  const ambiguous = new Set<string>();
  const store = new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== "append") return typeof value === "function" ? value.bind(target) : value;
      return async (m: InboundMessage) => {
        const result = await target.append(m);
        if (ambiguous.delete(m.id)) throw new RedisTimeoutError("answer lost after commit");
        return result;
      };
    },
  }) as BufferStore;
  const delivered: Batch[] = [];
  const waited: Promise<unknown>[] = [];
  const alerts: string[] = [];
  const app = createApp({
    config,
    ...options,
    alerter: {
      alert: (kind, text) => {
        alerts.push(`${kind}: ${text}`);
        return Promise.resolve();
      },
    },
    store,
    storeKind: "tcp",
    outbox: createPostgresOutbox({ url: pg.url }),
    processor: (batch) => {
      delivered.push(batch);
      return Promise.resolve({ kind: "delivered" });
    },
    waitUntil: (p) => {
      waited.push(p);
    },
    logger: createLogger({ level: "error", sink: () => {} }),
  });
  apps.push(app);
  return { app, delivered, ambiguous, waited, alerts };
}

function post(app: App, conversation: string, id: string): Promise<Response> {
  return app.handler(
    new Request("http://127.0.0.1/lull/messages", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer ingest" },
      body: JSON.stringify({ conversation, id, text: `text ${id}` }),
    }),
  );
}

function sweep(app: App): Promise<Response> {
  return app.handler(
    new Request("http://127.0.0.1/lull/flush", {
      method: "POST",
      headers: { authorization: "Bearer cron" },
    }),
  );
}

function msg(conversation: string, id: string): InboundMessage {
  return { conversation, id, provider: "generic", text: `text ${id}`, meta: {} };
}

/** Claims and delivers everything the conversation holds now (reason `manual`). */
async function flushAll(iso: Isolate, conversation: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const outcome = await iso.app.ctx.flusher.flushConversation(conversation, { force: true });
    if (outcome.status === "empty") return;
  }
}

function ids(batches: Batch[], conversation: string): string[][] {
  return batches.filter((b) => b.conversation === conversation).map((b) =>
    b.messages.map((m) => m.id)
  );
}

async function outboxRows(conversation: string): Promise<string[]> {
  const rows = await pg.sql`
    select message_id from lull.outbox where conversation = ${conversation} order by seq`;
  return rows.map((r) => String(r.message_id));
}

describe("outbox replay", () => {
  it("a message for a conversation with outbox rows queues behind them, never overtakes", async () => {
    const iso = isolate(testPrefix("order"));
    const conv = "order:1";
    // Written by another isolate while Redis was down; Redis is back, nobody has replayed yet.
    await iso.app.ctx.outbox!.outbox.write(msg(conv, "o1"));
    await iso.app.ctx.outbox!.outbox.write(msg(conv, "o2"));

    const res = await post(iso.app, conv, "n3");
    expect(res.status).toBe(202);
    const body = await res.json();
    // Written behind the rows, then the conversation was replayed at once: all three buffered.
    expect(body).toMatchObject({ accepted: 1, outboxed: 1, buffers: [{ size: 3 }] });
    expect(body.buffers[0].flushAt).not.toBeNull();
    expect(await outboxRows(conv)).toEqual([]);

    await flushAll(iso, conv);
    expect(ids(iso.delivered, conv)).toEqual([["o1", "o2", "n3"]]);
  });

  it("the same message in Redis (ambiguous answer) and in the outbox is delivered once", async () => {
    const iso = isolate(testPrefix("ambig"));
    const conv = "ambig:1";
    iso.ambiguous.add("a1");
    // The append commits, but its answer is lost: the message also goes to the outbox.
    const first = await post(iso.app, conv, "a1");
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ accepted: 1, outboxed: 1 });
    expect(await outboxRows(conv)).toEqual(["a1"]);
    const inRedis = await iso.app.ctx.store.inspect(conv);
    expect(inRedis.buffer?.messages.map((m) => m.id)).toEqual(["a1"]);

    // A newer message queues behind the row; the replay finds a1 already buffered.
    const second = await post(iso.app, conv, "a2");
    expect(second.status).toBe(202);
    expect(await outboxRows(conv)).toEqual([]);
    await flushAll(iso, conv);
    expect(ids(iso.delivered, conv)).toEqual([["a1", "a2"]]);

    // And a sweep afterwards has nothing left to replay.
    const swept = await (await sweep(iso.app)).json();
    expect(swept.outbox).toMatchObject({ appended: 0, duplicates: 0 });
  });

  it("a sweep replays the outbox in arrival order, bounded, and reports what it did", async () => {
    const iso = isolate(testPrefix("sweep"));
    for (const id of ["s1", "s2", "s3"]) await iso.app.ctx.outbox!.outbox.write(msg("sw:1", id));
    await iso.app.ctx.outbox!.outbox.write(msg("sw:2", "t1"));
    // A row Redis already has (its append had committed) counts as a duplicate, not twice.
    await iso.app.ctx.store.append(msg("sw:2", "t1"));
    const res = await sweep(iso.app);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.outbox).toMatchObject({
      conversations: 2,
      appended: 3,
      duplicates: 1,
      stopped: null,
      depth: 0,
    });
    await flushAll(iso, "sw:1");
    await flushAll(iso, "sw:2");
    expect(ids(iso.delivered, "sw:1")).toEqual([["s1", "s2", "s3"]]);
    expect(ids(iso.delivered, "sw:2")).toEqual([["t1"]]);
  });

  it("two isolates replaying at once deliver every message once, in order", async () => {
    const prefix = testPrefix("race");
    const a = isolate(prefix);
    const b = isolate(prefix);
    const convs = ["race:1", "race:2", "race:3", "race:4"];
    const expected: Record<string, string[]> = {};
    for (let i = 0; i < 60; i++) {
      const conv = convs[i % convs.length]!;
      const id = `r${i}`;
      (expected[conv] ??= []).push(id);
      await a.app.ctx.outbox!.outbox.write(msg(conv, id));
    }
    // Small bounds so the two replayers take turns over many rounds.
    const run = async (iso: Isolate) => {
      for (let round = 0; round < 40; round++) {
        await iso.app.ctx.outbox!.replayBatch({ maxConversations: 2, maxRows: 3 });
      }
    };
    await Promise.all([run(a), run(b), run(a), run(b)]);
    for (const conv of convs) expect(await outboxRows(conv)).toEqual([]);
    // The replays armed in-isolate timers, which may already have flushed some bursts (from
    // either isolate): let them finish, flush the rest, then account by fence order.
    await Promise.all([...a.waited.splice(0), ...b.waited.splice(0)]);
    for (const conv of convs) {
      await flushAll(a, conv);
      const batches = [...a.delivered, ...b.delivered]
        .filter((x) => x.conversation === conv)
        .sort((x, y) => x.fence - y.fence);
      expect(batches.flatMap((x) => x.messages.map((m) => m.id))).toEqual(expected[conv]);
    }
  });

  it("health shows depth and the oldest row; a stuck outbox degrades health and alerts", async () => {
    await pg.sql`delete from lull.outbox`;
    const iso = isolate(testPrefix("stuck"), { outboxStuckMs: 60_000 });
    const empty = await (await iso.app.handler(new Request("http://127.0.0.1/lull/health")))
      .json();
    expect(empty.outbox).toEqual({
      configured: true,
      ok: true,
      depth: 0,
      oldestAgeMs: null,
      stuck: false,
    });
    await iso.app.ctx.outbox!.outbox.write(msg("stuck:1", "s1"));
    // Make the row look old, as if nothing had replayed it for two minutes.
    await pg.sql`update lull.outbox set created_at = now() - interval '2 minutes'`;
    const res = await iso.app.handler(new Request("http://127.0.0.1/lull/health"));
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.status).toBe("degraded");
    expect(body.outbox).toMatchObject({ configured: true, ok: true, depth: 1, stuck: true });
    expect(body.outbox.oldestAgeMs).toBeGreaterThanOrEqual(120_000);
    expect(iso.alerts.filter((a) => a.startsWith("outbox_stuck:"))).toHaveLength(1);
    await pg.sql`delete from lull.outbox`;
  });

  it("the first healthy append after this isolate used the outbox replays it in the background", async () => {
    const iso = isolate(testPrefix("opport"));
    iso.ambiguous.add("p1");
    expect(await (await post(iso.app, "opp:1", "p1")).json()).toMatchObject({ outboxed: 1 });
    expect(await outboxRows("opp:1")).toEqual(["p1"]);
    // Another conversation, Redis healthy: buffered directly, and the outbox drained behind it.
    const res = await post(iso.app, "opp:2", "q1");
    expect(await res.json()).toMatchObject({ accepted: 1 });
    await Promise.all(iso.waited.splice(0));
    expect(await outboxRows("opp:1")).toEqual([]);
    // Only once: a later healthy append schedules no further replay.
    await post(iso.app, "opp:2", "q2");
    const replayRuns = iso.app.ctx.metrics as unknown as { render(): string };
    expect(replayRuns.render()).toMatch(/^lull_outbox_replays_total\{trigger="append"\} 1$/m);
    await flushAll(iso, "opp:1");
    expect(ids(iso.delivered, "opp:1")).toEqual([["p1"]]);
  });
});
