/**
 * The Upstash adapter (`createUpstashClient`) against the local gateway on a real redis-server:
 * raw reply shapes, the NOSCRIPT contract, error mapping (timeout, unreachable, unauthorized,
 * connection lost after commit) and what the client's retry does to a dropped call.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisTimeoutError, RedisUnavailableError } from "../../src/core/errors.ts";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { createUpstashClient } from "../../src/redis/upstash-client.ts";
import {
  freePort,
  type RedisServer,
  startRedisServer,
  testPrefix,
} from "../harness/redis-server.ts";

const TOKEN = "client-token";
let server: RedisServer;
let gateway: UpstashGateway;
/** Commands the drop hook should fail on, matched by a marker argument. */
const dropMarkers = new Map<string, number>();
let dropping: UpstashGateway;

beforeAll(async () => {
  server = await startRedisServer();
  gateway = await startUpstashGateway({ redisUrl: server.url, token: TOKEN });
  dropping = await startUpstashGateway({
    redisUrl: server.url,
    token: TOKEN,
    // Drops the answer while the marker's budget lasts: executed on Redis, never answered.
    dropAfterCommit: (command) => {
      const marker = command.find((a) => dropMarkers.has(a));
      if (marker === undefined) return false;
      const left = dropMarkers.get(marker)!;
      if (left <= 0) return false;
      dropMarkers.set(marker, left - 1);
      return true;
    },
  });
});

afterAll(async () => {
  await dropping?.close();
  await gateway?.close();
  await server?.stop();
});

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe.each([true, false])("replies with base64=%s", (base64) => {
  it("come back raw: JSON-looking and numeric strings stay strings", async () => {
    const client = createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000, base64 });
    const p = testPrefix("raw");
    const reply = await client.eval(
      "redis.call('SET', KEYS[1], ARGV[1]) " +
        "return {redis.call('GET', KEYS[1]), ARGV[2], 42, redis.status_reply('OK'), false, " +
        "{ARGV[3], {7}}}",
      [`${p}:k`],
      ['{"id":"m-1","n":1}', "007", "é😀"],
    );
    expect(reply).toEqual(['{"id":"m-1","n":1}', "007", 42, "OK", null, ["é😀", [7]]]);
    expect(await client.eval("return redis.call('GET', KEYS[1])", [`${p}:none`], [])).toBeNull();
    expect(await client.eval("return 'true'", [], [])).toBe("true");
    expect(await client.eval("return 12", [], [])).toBe(12);
  });

  it("EVALSHA of an unloaded script fails with a message starting NOSCRIPT", async () => {
    const client = createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000, base64 });
    const source = `return '${testPrefix("noscript")}'`;
    const err = await client.evalsha(await sha1(source), [], []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^NOSCRIPT /);
    // After EVAL the script is cached and EVALSHA works: the runScript fallback path.
    expect(await client.eval(source, [], [])).toBe(source.slice(8, -1));
    expect(await client.evalsha(await sha1(source), [], [])).toBe(source.slice(8, -1));
  });
});

it("a script error reply keeps the server's text and does not echo the arguments", async () => {
  const client = createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000 });
  const err = await client
    .eval("return redis.error_reply('LULL_BAD something broke')", [], ["secret message text"])
    .catch((e: unknown) => e) as Error;
  expect(err).toBeInstanceOf(Error);
  expect(err).not.toBeInstanceOf(RedisUnavailableError);
  expect(err.message).toBe("LULL_BAD something broke");
  expect(err.message).not.toContain("secret");

  const runtime = await client.eval("return redis.call('NOPE')", [], []).catch((e: unknown) => e);
  expect((runtime as Error).message).toMatch(/^ERR /);
});

it("carries a 1 MB argument and reply", async () => {
  const client = createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 10_000 });
  const big = "ü".repeat(512 * 1024);
  const p = testPrefix("big");
  const reply = await client.eval(
    "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])",
    [`${p}:k`],
    [big],
  );
  expect(reply).toBe(big);
  expect(await server.client.strlen(`${p}:k`)).toBe(1024 * 1024);
});

it("a wrong token is RedisUnavailableError (nothing ran)", async () => {
  const client = createUpstashClient({ url: gateway.url, token: "wrong", timeoutMs: 5000 });
  const p = testPrefix("auth");
  const err = await client.eval("return redis.call('SET', KEYS[1], 1)", [`${p}:k`], [])
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RedisUnavailableError);
  expect(await server.client.exists(`${p}:k`)).toBe(0);
});

it("nothing listening is RedisUnavailableError (the request never left)", async () => {
  const port = await freePort();
  const client = createUpstashClient({
    url: `http://127.0.0.1:${port}`,
    token: TOKEN,
    timeoutMs: 5000,
  });
  const err = await client.eval("return 1", [], []).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RedisUnavailableError);
  expect((err as RedisUnavailableError).code).toBe("redis_unavailable");
});

describe("a server that never answers", () => {
  let silent: Server;
  let url: string;
  beforeAll(async () => {
    // Accepts the request and holds it: the only way out is the client's timeout.
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it("is RedisTimeoutError at timeoutMs", async () => {
    const client = createUpstashClient({ url, token: TOKEN, timeoutMs: 150 });
    const err = await client.evalsha("0".repeat(40), [], []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisTimeoutError);
    expect(err as RedisTimeoutError).toMatchObject({ op: "evalsha", timeoutMs: 150 });
  });
});

describe("connection dropped after the command committed", () => {
  const counterScript = "return redis.call('INCR', KEYS[1])";

  it("RedisTimeoutError (outcome unknown), it did commit, and it is never replayed", async () => {
    // Replay policy (src/redis/redis-client.ts): one attempt per call. The Upstash client's
    // own retry would run this non-idempotent script twice.
    const p = testPrefix("drop0");
    dropMarkers.set(`${p}:n`, 1);
    const client = createUpstashClient({ url: dropping.url, token: TOKEN, timeoutMs: 5000 });
    const err = await client.eval(counterScript, [`${p}:n`], []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisTimeoutError);
    expect(await server.client.get(`${p}:n`)).toBe("1");
  });
});
