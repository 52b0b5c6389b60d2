/**
 * Quotas end to end (issue: one flooding sender must not drown the processor or the Redis bill):
 * the real function on Deno and a real redis-server. The message over the quota is refused with
 * 429 and Retry-After before it is acknowledged; nothing of it is buffered; what was accepted
 * flushes as usual.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type FunctionsServer, startFunctions } from "../harness/functions.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { fastEnv } from "./env.ts";
import { eventually, type ProcessorServer, startProcessorServer } from "./processor-server.ts";

const INGEST = "ingest-quota";
let redis: RedisServer;
let processor: ProcessorServer;
let fns: FunctionsServer;

beforeAll(async () => {
  [redis, processor] = await Promise.all([startRedisServer(), startProcessorServer()]);
  fns = await startFunctions({
    env: {
      ...fastEnv,
      LULL_WINDOW_MS: "300",
      LULL_GRACE_MS: "100",
      LULL_REDIS_URL: redis.url,
      LULL_KEY_PREFIX: testPrefix("quota"),
      LULL_INGEST_TOKEN: INGEST,
      LULL_PROCESSOR_URL: processor.url,
      LULL_MAX_MESSAGES_PER_MINUTE: "2",
    },
  });
});

afterAll(async () => {
  await fns?.stop();
  await processor?.close();
  await redis?.stop();
});

const send = (id: string) =>
  fetch(`${fns.lullUrl}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${INGEST}` },
    body: JSON.stringify({ conversation: "quota:flood", id, text: id }),
  });

it("the third message of a minute gets 429 with Retry-After and is not buffered", async () => {
  expect((await send("f1")).status).toBe(202);
  expect((await send("f2")).status).toBe(202);
  const refused = await send("f3");
  expect(refused.status).toBe(429);
  const retryAfter = Number(refused.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  const body = await refused.json() as { error: { code: string; message: string } };
  expect(body.error.code).toBe("quota_exceeded");
  expect(body.error.message).toContain("LULL_MAX_MESSAGES_PER_MINUTE");
  // A redelivery of an accepted message is still a 2xx duplicate.
  const again = await send("f1");
  expect(again.status).toBe(202);
  expect(await again.json()).toMatchObject({ duplicates: 1 });
  const delivery = await eventually(() => processor.of("quota:flood")[0], "the batch");
  expect(delivery.batch.messages.map((m) => m.id)).toEqual(["f1", "f2"]);
});
