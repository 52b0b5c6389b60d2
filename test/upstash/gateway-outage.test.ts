/**
 * The gateway while its redis-server goes away and comes back: a refusal is a clean 503
 * (RedisUnavailableError in the adapter), a command lost in flight is an unknown outcome
 * (RedisTimeoutError), and the gateway recovers by itself once Redis is back.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { RedisTimeoutError } from "../../src/core/errors.ts";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { createUpstashClient } from "../../src/redis/upstash-client.ts";
import { type RedisServer, startRedisServer } from "../harness/redis-server.ts";

const TOKEN = "outage-token";
let server: RedisServer;
let gateway: UpstashGateway;

beforeAll(async () => {
  server = await startRedisServer();
  gateway = await startUpstashGateway({ redisUrl: server.url, token: TOKEN });
});

afterAll(async () => {
  await gateway?.close();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it("in flight, down, back: unknown outcome, then unavailable, then served again", async () => {
  const client = createUpstashClient({
    url: gateway.url,
    token: TOKEN,
    timeoutMs: 5000,
  });
  expect(await client.eval("return 'up'", [], [])).toBe("up");

  // A script busy for 2 s; Redis dies while it runs, so the command's fate is unknown.
  const busy = client.eval(
    "local t = redis.call('TIME')[1] while redis.call('TIME')[1] - t < 2 do end return 1",
    [],
    [],
  ).catch((e: unknown) => e);
  await sleep(200);
  await server.kill();
  expect(await busy).toBeInstanceOf(RedisTimeoutError);

  // Down: the gateway refuses with a JSON 503. Not a Redis reply, so to the adapter it is an
  // unknown outcome (a proxy's 5xx may come after Redis ran the script): never "not written".
  const raw = await fetch(gateway.url, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(["PING"]),
  });
  expect(raw.status).toBe(503);
  expect((await raw.json()).error).toMatch(/redis unavailable/);
  await expect(client.eval("return 1", [], [])).rejects.toBeInstanceOf(RedisTimeoutError);

  // Back on the same port: the gateway's connection comes back without a restart.
  await server.start();
  let reply: unknown;
  for (let i = 0; i < 50 && reply === undefined; i++) {
    reply = await client.eval("return 'again'", [], []).catch(() => undefined);
    if (reply === undefined) await sleep(100);
  }
  expect(reply).toBe("again");
});
