/**
 * The store contract against RedisStore over plain TCP (ioredis adapter) on a real
 * redis-server. Store time is Redis TIME, so `advance` really sleeps.
 */
import { afterAll, beforeAll } from "vitest";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { type RedisServer, startRedisServer } from "../harness/redis-server.ts";
import { bufferStoreContract } from "./store-contract.ts";

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

bufferStoreContract("RedisStore over TCP", async (settings) => {
  const store = new RedisStore({ client: createTcpClient({ url: server.url }), settings });
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
