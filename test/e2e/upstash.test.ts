/**
 * The burst scenario again, with the function talking to Redis through the Upstash REST
 * protocol (UPSTASH_REDIS_REST_URL/TOKEN -> the local Upstash-compatible gateway -> a real
 * redis-server), as it does deployed on Supabase with Upstash.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { eventually, type ProcessorServer, startProcessorServer } from "./processor-server.ts";

const INGEST = "ingest-upstash";
let redis: RedisServer;
let gateway: UpstashGateway;
let processor: ProcessorServer;
let fns: FunctionsServer;
const prefix = testPrefix("e2eupstash");

beforeAll(async () => {
  [redis, processor] = await Promise.all([startRedisServer(), startProcessorServer()]);
  gateway = await startUpstashGateway({ redisUrl: redis.url, token: "gateway-token" });
  fns = await startFunctions({
    env: {
      ...fastEnv,
      UPSTASH_REDIS_REST_URL: gateway.url,
      UPSTASH_REDIS_REST_TOKEN: "gateway-token",
      LULL_KEY_PREFIX: prefix,
      LULL_INGEST_TOKEN: INGEST,
      LULL_PROCESSOR_URL: processor.url,
      LULL_PROCESSOR_SECRET: "proc-upstash",
    },
  });
});

afterAll(async () => {
  await fns?.stop();
  await gateway?.close();
  await processor?.close();
  await redis?.stop();
});

describe("e2e over Upstash REST", () => {
  it("a burst of 5 inside the window is delivered as exactly one batch, in order", async () => {
    const conv = `upstash:${prefix}`;
    for (let i = 1; i <= 5; i++) {
      const res = await fetch(`${fns.lullUrl}/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
        body: JSON.stringify({ conversation: conv, id: `u${i}`, text: `u${i}` }),
      });
      expect(res.status).toBe(202);
      expect(await res.json()).toMatchObject({ accepted: 1, buffers: [{ size: i }] });
      await new Promise((r) => setTimeout(r, 30));
    }
    await eventually(() => processor.of(conv).length === 1, "the batch");
    const health = await (await fetch(`${fns.lullUrl}/health`)).json();
    expect(health).toMatchObject({ status: "ok", store: { kind: "upstash", ok: true } });
    // Acked: nothing left in Redis for the conversation but the dedup set and fence counter.
    await eventually(async () => {
      const keys = await redis.client.keys(`${prefix}:*`);
      return keys.every((k) => /:(seen|fence|done:[^:]+|stats|daily|events|due|leases)$/.test(k));
    }, "the ack");
    expect(processor.of(conv)).toHaveLength(1);
    expect(processor.of(conv)[0]!.batch.messages.map((m) => m.id)).toEqual([
      "u1",
      "u2",
      "u3",
      "u4",
      "u5",
    ]);
  });
});
