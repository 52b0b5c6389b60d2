/**
 * The burst scenario again, set up the way a Supabase deployment is: the function talks to
 * Redis through the Upstash REST protocol (UPSTASH_REDIS_REST_URL/TOKEN -> the local
 * Upstash-compatible gateway -> a real redis-server), and delivers to another Supabase function
 * (LULL_PROCESSOR_FUNCTION=lull-processor, through supabase-js `functions.invoke`): the example
 * processor, which verifies the signature and logs each batch as one JSON line.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import {
  freePort,
  type RedisServer,
  startRedisServer,
  testPrefix,
} from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { eventually } from "./processor-server.ts";

const INGEST = "ingest-upstash";
let redis: RedisServer;
let gateway: UpstashGateway;
let fns: FunctionsServer;
const prefix = testPrefix("e2eupstash");

beforeAll(async () => {
  redis = await startRedisServer();
  gateway = await startUpstashGateway({ redisUrl: redis.url, token: "gateway-token" });
  const port = await freePort();
  fns = await startFunctions({
    port,
    env: {
      ...fastEnv,
      UPSTASH_REDIS_REST_URL: gateway.url,
      UPSTASH_REDIS_REST_TOKEN: "gateway-token",
      LULL_KEY_PREFIX: prefix,
      LULL_INGEST_TOKEN: INGEST,
      LULL_PROCESSOR_FUNCTION: "lull-processor",
      SUPABASE_URL: `http://127.0.0.1:${port}`,
      SUPABASE_SERVICE_ROLE_KEY: "service-role-key-local",
      LULL_PROCESSOR_SECRET: "proc-upstash",
    },
  });
});

afterAll(async () => {
  await fns?.stop();
  await gateway?.close();
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
    const batchLines = () =>
      fns.lines.filter((l) => l.startsWith('{"msg":"batch"')).map((l) => JSON.parse(l))
        .filter((b) => b.conversation === conv);
    await eventually(() => batchLines().length === 1, "the batch line of the example processor");
    const health = await (await fetch(`${fns.lullUrl}/health`)).json();
    expect(health).toMatchObject({ status: "ok", store: { kind: "upstash", ok: true } });
    // Acked: nothing left in Redis for the conversation but the dedup set and fence counter.
    await eventually(async () => {
      const keys = await redis.client.keys(`${prefix}:*`);
      return keys.every((k) =>
        /:(seen|fence|done:[^:]+|stats|daily|events|due|leases|layout|partitions|epoch)$/.test(k)
      );
    }, "the ack");
    expect(batchLines()).toHaveLength(1);
    expect(batchLines()[0]).toMatchObject({
      reason: "quiet",
      attempt: 1,
      size: 5,
      degraded: false,
      text: "u1\nu2\nu3\nu4\nu5",
    });
  });
});
