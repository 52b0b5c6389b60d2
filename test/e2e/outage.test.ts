/**
 * Redis outage end to end with NO database configured (no LULL_DATABASE_URL / SUPABASE_DB_URL,
 * so no outbox: the last resort before 503 applies): the real function on Deno, a real
 * redis-server that the test kills and restarts, and a real HTTP processor. While Redis is down
 * each message is delivered directly as a degraded one-message batch (batchId derived from the
 * message, so a redelivery dedupes at the processor; README: "may duplicate"); with the
 * processor down too the answer is 503; when Redis comes back the breaker's probe closes it and
 * messages are buffered again. With an outbox configured, see test/e2e/outbox.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { eventually, type ProcessorServer, startProcessorServer } from "./processor-server.ts";

const INGEST = "ingest-outage";
let redis: RedisServer;
let processor: ProcessorServer;
let fns: FunctionsServer;
const prefix = testPrefix("e2eoutage");

beforeAll(async () => {
  [redis, processor] = await Promise.all([startRedisServer(), startProcessorServer()]);
  fns = await startFunctions({
    env: {
      ...fastEnv,
      LULL_REDIS_URL: redis.url,
      LULL_KEY_PREFIX: prefix,
      LULL_INGEST_TOKEN: INGEST,
      LULL_CRON_SECRET: "cron-outage",
      LULL_PROCESSOR_URL: processor.url,
      LULL_PROCESSOR_SECRET: "proc-outage",
      LULL_LOG_LEVEL: "error",
    },
  });
});

afterAll(async () => {
  await fns?.stop();
  await processor?.close();
  await redis?.stop();
});

interface Accepted {
  accepted: number;
  degraded?: number;
  buffers: { conversation: string; size: number; flushAt: string | null }[];
}

function send(conversation: string, id: string, text: string): Promise<Response> {
  return fetch(`${fns.lullUrl}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
    body: JSON.stringify({ conversation, id, text }),
  });
}

describe("e2e: Redis down", () => {
  it("degrades to direct delivery, answers 503 when the processor is down too, recovers", async () => {
    const conv = `outage:${prefix}`;
    await redis.kill();

    // Redis down, processor up: delivered directly, degraded.
    const first = await send(conv, "o1", "while redis is down");
    expect(first.status).toBe(202);
    const body = await first.json() as Accepted & { outboxed?: number };
    expect(body).toMatchObject({ accepted: 1, degraded: 1 });
    expect(body.outboxed).toBeUndefined();
    expect(body.buffers[0]).toMatchObject({ size: 0, flushAt: null });
    expect(processor.of(conv)).toHaveLength(1);
    const degraded = processor.of(conv)[0]!.batch;
    expect(degraded).toMatchObject({
      degraded: true,
      reason: "fallback",
      attempt: 1,
      fence: 0,
      text: "while redis is down",
    });
    expect(degraded.batchId).toMatch(/^fb_[0-9a-f]{32}$/);
    expect(degraded.messages.map((m) => m.id)).toEqual(["o1"]);

    // The provider redelivers: same derived batchId, so the processor can drop it.
    expect((await send(conv, "o1", "while redis is down")).status).toBe(202);
    expect(processor.of(conv)).toHaveLength(2);
    expect(processor.of(conv)[1]!.batch.batchId).toBe(degraded.batchId);

    const health = await fetch(`${fns.lullUrl}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({
      status: "down",
      store: { ok: false },
      outbox: { configured: false },
    });

    // Processor down as well: neither buffered nor delivered -> 503 with Retry-After.
    processor.respond(() => ({ status: 503 }));
    const refused = await send(conv, "o2", "nowhere to go");
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({ error: { code: "fallback_failed" } });
    processor.respond(() => ({ status: 200 }));

    // Redis back: once the breaker's probe succeeds, messages are buffered again.
    await redis.start();
    let n = 0;
    const buffered = await eventually(
      async () => {
        const id = `back-${n++}`;
        const res = await send(conv, id, `after recovery ${id}`);
        expect(res.status).toBe(202);
        const b = await res.json() as Accepted;
        return b.buffers[0]?.flushAt ? id : null;
      },
      "a message to be buffered again",
      { intervalMs: 200 },
    );
    await eventually(
      () =>
        processor.of(conv).some((d) =>
          !d.batch.degraded && d.batch.messages.some((m) => m.id === buffered)
        ),
      "the buffered message's batch",
    );
    const healthy = await fetch(`${fns.lullUrl}/health`);
    expect(healthy.status).toBe(200);
  });
});
