/**
 * A replayed append is a no-op. The `@upstash/redis` client retries a request whose connection
 * failed, even when Redis already ran it. Here the gateway runs the append script, then drops
 * the connection without answering; the client retries; the message must be buffered once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BufferSettings } from "../../src/core/config.ts";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { createUpstashClient } from "../../src/redis/upstash-client.ts";
import { scripts } from "../../src/scripts/generated.ts";
import { contractSettings } from "../contract/store-contract.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

const TOKEN = "replay-token";
let server: RedisServer;
let gateway: UpstashGateway;
/** Message ids whose append is dropped once after it committed, and what was dropped. */
const dropOnce = new Set<string>();
const dropped: string[][] = [];

beforeAll(async () => {
  server = await startRedisServer();
  gateway = await startUpstashGateway({
    redisUrl: server.url,
    token: TOKEN,
    dropAfterCommit: (command) => {
      const name = command[0]!.toUpperCase();
      const isAppend = (name === "EVALSHA" && command[1] === scripts.appendMessage.sha1) ||
        (name === "EVAL" && command[1] === scripts.appendMessage.source);
      const id = command.find((arg) => dropOnce.has(arg));
      if (!isAppend || id === undefined) return false;
      dropOnce.delete(id);
      dropped.push(command);
      return true;
    },
  });
});

afterAll(async () => {
  await gateway?.close();
  await server?.stop();
});

function settings(keyPrefix: string): BufferSettings {
  return { ...contractSettings, keyPrefix };
}

describe.each([
  { label: "EVALSHA (script cached)", flushFirst: false, dropped: "EVALSHA" },
  { label: "EVAL (after NOSCRIPT)", flushFirst: true, dropped: "EVAL" },
])("append committed, answer lost: $label", ({ flushFirst, dropped: droppedName }) => {
  it("the client retries and the message is buffered exactly once", async () => {
    const prefix = testPrefix("replay");
    const store = new RedisStore({
      client: createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000 }),
      settings: settings(prefix),
    });
    const conversation = "support:replay";
    try {
      await store.append({ conversation, id: "m-0", provider: "generic", text: "before" });
      if (flushFirst) await server.client.script("FLUSH");
      const before = dropped.length;
      const id = `${prefix}-m-1`;
      dropOnce.add(id);

      const result = await store.append({ conversation, id, provider: "generic", text: "once" });

      // The first attempt really ran on Redis and its answer really was lost.
      expect(dropped.length).toBe(before + 1);
      expect(dropped.at(-1)![0]!.toUpperCase()).toBe(droppedName);
      // The replay found the id already seen: from the caller's side it is a duplicate, which
      // is still answered 2xx (and the buffered copy is the committed first attempt).
      expect(result.status).toBe("duplicate");
      expect(result.size).toBe(2);

      const state = await store.inspect(conversation);
      expect(state.buffer?.messages.map((m) => m.id)).toEqual(["m-0", id]);

      const claim = await store.claim(conversation, { force: true });
      expect(claim.status).toBe("claimed");
      if (claim.status === "claimed") {
        expect(claim.claim.batch.messages.map((m) => m.text)).toEqual(["before", "once"]);
      }
    } finally {
      await store.close();
      const keys = await server.client.keys(`${prefix}:*`);
      if (keys.length > 0) await server.client.del(...keys);
    }
  });
});

it("without the client's retry the same drop is an unknown outcome, not a false failure", async () => {
  const prefix = testPrefix("noretry");
  const store = new RedisStore({
    client: createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000, retries: 0 }),
    settings: settings(prefix),
  });
  const conversation = "support:noretry";
  const id = `${prefix}-m-1`;
  dropOnce.add(id);
  try {
    const err = await store.append({ conversation, id, provider: "generic", text: "x" })
      .catch((e: unknown) => e);
    // RedisTimeoutError: it may have committed (it did), so the caller answers 503 and the
    // provider's redelivery is deduped, instead of falling back to a direct delivery.
    expect((err as { code?: string }).code).toBe("redis_timeout");
    const again = await store.append({ conversation, id, provider: "generic", text: "x" });
    expect(again.status).toBe("duplicate");
    expect((await store.inspect(conversation)).buffer?.size).toBe(1);
  } finally {
    await store.close();
    const keys = await server.client.keys(`${prefix}:*`);
    if (keys.length > 0) await server.client.del(...keys);
  }
});
