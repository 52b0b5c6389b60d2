/**
 * The store contract against RedisStore over Upstash REST: the real `@upstash/redis` client
 * (createUpstashClient) -> the local Upstash-compatible gateway -> a real redis-server.
 * `advance` really sleeps (store time is Redis TIME).
 */
import { afterAll, beforeAll } from "vitest";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { createUpstashClient } from "../../src/redis/upstash-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { type RedisServer, startRedisServer } from "../harness/redis-server.ts";
import { bufferStoreContract } from "./store-contract.ts";

const TOKEN = "contract-token";
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

bufferStoreContract("RedisStore over Upstash REST (gateway)", async (settings) => {
  const store = new RedisStore({
    client: createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000 }),
    settings,
  });
  return {
    store,
    advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    cleanup: async () => {
      await store.close();
      // Every key of the test starts with its unique prefix.
      const keys = await server.client.keys(`${settings.keyPrefix}:*`);
      if (keys.length > 0) await server.client.del(...keys);
    },
  };
});
