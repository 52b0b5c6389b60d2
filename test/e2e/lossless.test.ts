/**
 * "Lossless under every outage", end to end on real processes: the `lull` function on real Deno,
 * a real redis-server and a real HTTP processor. The durable sweep is driven here the way
 * Supabase Cron would drive it.
 *
 * - A processor outage far longer than any TTL the first version had, with the processor
 *   breaker open for most of it: every acknowledged message waits and flushes, in order.
 * - A conversation idle for longer than the dedup window between bursts: fences keep rising.
 * - An evicting Redis (allkeys-lru) makes /lull/health degraded, with the reason.
 * - A changed LULL_PARTITIONS is refused (503 naming the variable), nothing is written; so is a
 *   layout version newer than this lull reads (a rollback after a migration).
 * - Ids and conversation keys that cannot round-trip (lone surrogates, NUL) get 400 naming the
 *   field, never 500, never a silent merge.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { eventually, type ProcessorServer, startProcessorServer } from "./processor-server.ts";

const INGEST = "ingest-lossless";
const CRON = "cron-lossless";

let redis: RedisServer;
let processor: ProcessorServer;
let fns: FunctionsServer;
const prefix = testPrefix("lossless");

const env = () => ({
  ...fastEnv,
  LULL_WINDOW_MS: "300",
  LULL_GRACE_MS: "100",
  LULL_MAX_WAIT_MS: "1000",
  LULL_TIMER_TTL_MS: "1000",
  // Short garbage TTLs: the test idles past every one of them.
  LULL_DEDUP_TTL_MS: "1500",
  LULL_RETRY_MAX_AGE_MS: "1500",
  LULL_RETRY_MAX_ATTEMPTS: "1000",
  LULL_PROCESSED_TTL_MS: "500",
  LULL_REDIS_URL: redis.url,
  LULL_KEY_PREFIX: prefix,
  LULL_PARTITIONS: "4",
  LULL_INGEST_TOKEN: INGEST,
  LULL_CRON_SECRET: CRON,
  LULL_PROCESSOR_URL: processor.url,
});

beforeAll(async () => {
  [redis, processor] = await Promise.all([startRedisServer(), startProcessorServer()]);
  fns = await startFunctions({ env: env() });
});

afterAll(async () => {
  await fns?.stop();
  await processor?.close();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function send(base: string, conversation: string, id: string): Promise<Response> {
  return await fetch(`${base}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
    body: JSON.stringify({ conversation, id, text: `text ${id}` }),
  });
}

async function sweep(base = fns.lullUrl): Promise<Record<string, number>> {
  const res = await fetch(`${base}/flush`, {
    method: "POST",
    headers: { authorization: `Bearer ${CRON}` },
  });
  return await res.json() as Record<string, number>;
}

describe("a processor outage of any length loses nothing", () => {
  it("messages sent while the breaker is open wait past every TTL and flush in order", async () => {
    processor.respond(() => ({ status: 500, body: "agent is down" }));
    const before = processor.deliveries.length;
    const a = "outage:a";
    for (const id of ["a1", "a2", "a3"]) expect((await send(fns.lullUrl, a, id)).status).toBe(202);
    // Fail until the processor breaker opens (5 failed deliveries in a row).
    let skipped = 0;
    await eventually(
      async () => {
        const counts = await sweep();
        skipped += counts.skippedBreakerOpen ?? 0;
        return skipped > 0;
      },
      "the processor breaker to open",
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(processor.deliveries.length - before).toBeGreaterThanOrEqual(5);

    // One more message while the breaker is open: acknowledged, so it must never be lost.
    const b = "outage:b";
    const late = await send(fns.lullUrl, b, "b1");
    expect(late.status).toBe(202);
    // The outage goes on far past every TTL in the configuration (and past the longest buffer
    // TTL the first version accepted for these windows, max wait + grace + 2 sweeps = 3.1 s).
    const outageEnd = Date.now() + 6_000;
    while (Date.now() < outageEnd) {
      await sweep();
      await sleep(250);
    }
    processor.respond(() => ({ status: 200 }));
    const recovered = processor.deliveries.length;
    const after = (conv: string) =>
      processor.deliveries.slice(recovered).filter((d) => d.batch.conversation === conv);
    await eventually(
      () => after(a).length > 0 && after(b).length > 0,
      "both conversations to be delivered after the outage",
      { timeoutMs: 40_000, intervalMs: 250, tick: () => sweep() },
    );
    expect(after(a).map((d) => d.batch.messages.map((m) => m.id))).toEqual([["a1", "a2", "a3"]]);
    expect(after(b).map((d) => d.batch.messages.map((m) => m.id))).toEqual([["b1"]]);
    // One batchId per message: every attempt of a's batch carried the same id.
    expect(new Set(processor.of(a).map((d) => d.batch.batchId)).size).toBe(1);
    // Nothing is left behind: no buffer, no batch.
    await sleep(500);
    await sweep();
    expect(processor.deliveries.slice(recovered)).toHaveLength(2);
  }, 90_000);
});

describe("fences never go back", () => {
  it("a conversation idle longer than the dedup window gets ever higher fences", async () => {
    processor.respond(() => ({ status: 200 }));
    const c = "fence:idle";
    const fences: number[] = [];
    for (let burst = 0; burst < 3; burst++) {
      expect((await send(fns.lullUrl, c, `f${burst}`)).status).toBe(202);
      const delivery = await eventually(
        () => processor.of(c).find((d) => d.batch.messages[0]!.id === `f${burst}`),
        `burst ${burst}`,
        { timeoutMs: 15_000, tick: () => sweep() },
      );
      fences.push(Number(delivery.headers["x-lull-fence"]));
      await sleep(2_000); // quiet for longer than LULL_DEDUP_TTL_MS and every other TTL
    }
    expect(fences).toEqual([1, 2, 3]);
  }, 60_000);
});

describe("redis fitness and layout", () => {
  it("an evicting policy makes health degraded, naming the policy", async () => {
    await redis.client.config("SET", "maxmemory-policy", "allkeys-lru");
    try {
      const res = await fetch(`${fns.lullUrl}/health`);
      const body = await res.json() as {
        status: string;
        reasons?: string[];
        store: { evictionPolicy?: string };
      };
      expect(res.status).toBe(200);
      expect(body.status).toBe("degraded");
      expect(body.store.evictionPolicy).toBe("allkeys-lru");
      expect(body.reasons?.join(" ")).toMatch(/maxmemory-policy is allkeys-lru/);
    } finally {
      await redis.client.config("SET", "maxmemory-policy", "noeviction");
    }
    const ok = await (await fetch(`${fns.lullUrl}/health`)).json() as { status: string };
    expect(ok.status).toBe("ok");
  });

  it("a changed LULL_PARTITIONS is refused with 503 naming it, and writes nothing", async () => {
    const other = await startFunctions({ env: { ...env(), LULL_PARTITIONS: "8" } });
    try {
      const keysBefore = (await redis.client.keys(`${prefix}:*`)).sort();
      const res = await send(other.lullUrl, "layout:x", "x1");
      expect(res.status).toBe(503);
      const body = await res.json() as { error: { code: string; message: string } };
      expect(body.error.code).toBe("invalid_config");
      expect(body.error.message).toMatch(/LULL_PARTITIONS is 8 .* laid out with 4 partitions/);
      expect((await redis.client.keys(`${prefix}:*`)).sort()).toEqual(keysBefore);
      const health = await (await fetch(`${other.lullUrl}/health`)).json() as {
        status: string;
        reasons?: string[];
      };
      expect(health.status).toBe("down");
      expect(health.reasons?.join(" ")).toMatch(/LULL_PARTITIONS/);
    } finally {
      await other.stop();
    }
  }, 60_000);

  it("a layout recorded by a newer lull is refused with 503, and nothing is written", async () => {
    // What a rollback meets after a newer lull migrated the keys: this one would misread them.
    const layoutKey = `${prefix}:layout`;
    expect((await fetch(`${fns.lullUrl}/health`)).status).toBe(200); // records the layout
    const recorded = await redis.client.hget(layoutKey, "version");
    expect(recorded).toBe("2");
    await redis.client.hset(layoutKey, "version", "3");
    const older = await startFunctions({ env: env() });
    try {
      const keysBefore = (await redis.client.keys(`${prefix}:*`)).sort();
      const res = await send(older.lullUrl, "layout:newer", "n1");
      expect(res.status).toBe(503);
      const body = await res.json() as { error: { code: string; message: string } };
      expect(body.error.code).toBe("invalid_config");
      expect(body.error.message).toMatch(/layout version 3.*reads layout version 2/);
      expect((await redis.client.keys(`${prefix}:*`)).sort()).toEqual(keysBefore);
      const health = await (await fetch(`${older.lullUrl}/health`)).json() as {
        status: string;
        reasons?: string[];
      };
      expect(health.status).toBe("down");
      expect(health.reasons?.join(" ")).toMatch(/LULL_KEY_PREFIX/);
      const sweep = await fetch(`${older.lullUrl}/flush`, {
        method: "POST",
        headers: { authorization: `Bearer ${CRON}` },
      });
      // The sweep reports the refusal as an error and touches nothing.
      expect(sweep.status).toBe(200);
      expect((await sweep.json() as { errors: number }).errors).toBeGreaterThan(0);
      expect((await redis.client.keys(`${prefix}:*`)).sort()).toEqual(keysBefore);
    } finally {
      await older.stop();
      await redis.client.hset(layoutKey, "version", recorded!);
    }
  }, 60_000);
});

describe("identity", () => {
  const post = (body: string) =>
    fetch(`${fns.lullUrl}/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
      body,
    });

  it("two ids that differ only by a lone surrogate are refused, not merged", async () => {
    const conv = "identity:ids";
    // JSON escapes: the ids are "m\uD800" and "m\uDBFF", both broken UTF-16.
    for (const id of ["m\\uD800", "m\\uDBFF"]) {
      const res = await post(`{"conversation":"${conv}","id":"${id}","text":"x"}`);
      expect(res.status).toBe(400);
      const body = await res.json() as { error: { code: string; issues: { path: string[] }[] } };
      expect(body.error.code).toBe("invalid_request");
      expect(body.error.issues[0]!.path).toEqual(["id"]);
    }
    expect(await redis.client.keys(`${prefix}:*identity*`)).toEqual([]);
  });

  it("a conversation key with a lone surrogate or NUL is 400 naming it, never 500", async () => {
    for (const conversation of ["identity:\\uDC00", "identity:a\\u0000b"]) {
      const res = await post(
        `{"messages":[{"conversation":"ok:1","id":"fine","text":"x"},` +
          `{"conversation":"${conversation}","id":"i1","text":"x"}]}`,
      );
      expect(res.status).toBe(400);
      const body = await res.json() as { error: { issues: { path: (string | number)[] }[] } };
      expect(body.error.issues[0]!.path).toEqual(["messages", 1, "conversation"]);
    }
    // All or nothing: the valid first message of the refused requests was not buffered either.
    expect(await redis.client.keys(`${prefix}:*ok%3A1*`)).toEqual([]);
  });
});
