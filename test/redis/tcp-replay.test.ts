/**
 * The replay policy over TCP (src/redis/redis-client.ts): a connection that drops after the
 * request reached Redis is an unknown outcome (RedisTimeoutError), never "not written", and the
 * adapter never sends the script again. A TCP proxy between the client and a real redis-server
 * forwards the request, lets Redis run it, and cuts the client off before the answer.
 */
import { createServer, type Server, type Socket, Socket as NetSocket } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { RedisTimeoutError, RedisUnavailableError } from "../../src/core/errors.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { contractSettings } from "../contract/store-contract.ts";
import {
  freePort,
  type RedisServer,
  startRedisServer,
  testPrefix,
} from "../harness/redis-server.ts";

let server: RedisServer;
let proxy: Server;
let proxyPort = 0;
/** When set, the next reply that contains this marker is swallowed and the client cut off. */
let cutOnReplyAfter: string | null = null;
let requestsSeen = 0;
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = await startRedisServer();
  proxy = createServer((client) => {
    sockets.add(client);
    const upstream = new NetSocket();
    upstream.connect(server.port, "127.0.0.1");
    let armed = false;
    client.on("data", (chunk: Buffer) => {
      if (cutOnReplyAfter !== null && chunk.toString("latin1").includes(cutOnReplyAfter)) {
        armed = true;
        requestsSeen++;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (armed) {
        // Redis ran it and answered; the answer never reaches the client.
        armed = false;
        cutOnReplyAfter = null;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  });
  proxyPort = await freePort();
  await new Promise<void>((resolve) => proxy.listen(proxyPort, "127.0.0.1", resolve));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => proxy.close(() => resolve()));
  await server.stop();
});

it("an append whose answer is lost: RedisTimeoutError, committed once, never replayed", async () => {
  const prefix = testPrefix("tcpdrop");
  const store = new RedisStore({
    client: createTcpClient({ url: `redis://127.0.0.1:${proxyPort}` }),
    settings: { ...contractSettings, keyPrefix: prefix },
  });
  const conversation = "support:tcp-drop";
  try {
    await store.append({ conversation, id: "warm", provider: "generic", text: "warm" });
    const id = `${prefix}-lost-answer`;
    cutOnReplyAfter = id;
    const err = await store.append({ conversation, id, provider: "generic", text: "x" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisTimeoutError);
    expect(err).not.toBeInstanceOf(RedisUnavailableError);
    expect(requestsSeen).toBe(1);
    // It did commit, once; a redelivery (after reconnecting) is a duplicate.
    let again;
    for (let i = 0; i < 50 && again === undefined; i++) {
      again = await store.append({ conversation, id, provider: "generic", text: "x" })
        .catch(() => new Promise((r) => setTimeout(r, 50)).then(() => undefined));
    }
    expect(again?.status).toBe("duplicate");
    expect(requestsSeen).toBe(1);
    const state = await store.inspect(conversation);
    expect(state.buffer?.messages.map((m) => m.id)).toEqual(["warm", id]);
  } finally {
    await store.close();
    const keys = await server.client.keys(`${prefix}:*`);
    if (keys.length > 0) await server.client.del(...keys);
  }
});
