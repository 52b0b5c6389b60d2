/** createStore picks the store the configuration names, and the TCP one really works. */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { createStore } from "../../src/store/create-store.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { testPrefix, useRedisServer } from "../harness/redis-server.ts";
import { msg } from "../scripts/helpers.ts";

const server = useRedisServer();

describe("createStore", () => {
  it("LULL_REDIS_URL: a RedisStore over TCP, with the configured prefix", async () => {
    const prefix = testPrefix("factory");
    const config = parseConfig({ LULL_REDIS_URL: server.url, LULL_KEY_PREFIX: prefix });
    const { store, kind } = createStore(config);
    expect(kind).toBe("tcp");
    expect(store).toBeInstanceOf(RedisStore);
    const r = await store.append(msg("support:1", "m-1"));
    expect(r.status).toBe("appended");
    expect((await server.client.keys(`${prefix}:*`)).length).toBeGreaterThan(0);
    await store.close();
  });

  it("LULL_REDIS_URL wins over Upstash; Upstash alone gives the REST store", async () => {
    const both = parseConfig({
      LULL_REDIS_URL: server.url,
      UPSTASH_REDIS_REST_URL: "https://example.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "t",
    });
    const tcp = createStore(both);
    expect(tcp.kind).toBe("tcp");
    await tcp.store.close();
    const upstash = createStore(parseConfig({
      UPSTASH_REDIS_REST_URL: "https://example.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "t",
    }));
    expect(upstash.kind).toBe("upstash");
    expect(upstash.store).toBeInstanceOf(RedisStore);
    await upstash.store.close();
  });

  it("no Redis configured: the in-memory store", async () => {
    const { store, kind } = createStore(parseConfig({}));
    expect(kind).toBe("memory");
    expect(store).toBeInstanceOf(MemoryStore);
    expect((await store.append(msg("support:1", "m-1"))).status).toBe("appended");
    await store.close();
  });
});
