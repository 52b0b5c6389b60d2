/**
 * An append whose answer was lost. The gateway runs the append script, then drops the connection
 * without answering. lull's Upstash adapter never replays (src/redis/redis-client.ts, "Replay
 * policy"): the call is an unknown outcome (RedisTimeoutError, answered 503 at the edge), and the
 * provider's redelivery of the same id is a duplicate: the message is buffered once.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
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
      // The Upstash adapter sends the key-locking variant; the plain one is matched too.
      const forms = [scripts.appendMessage, scripts.appendMessage.keyLocking!];
      const isAppend = forms.some((f) =>
        (name === "EVALSHA" && command[1] === f.sha1) ||
        (name === "EVAL" && command[1] === f.source)
      );
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

it("append committed, answer lost: an unknown outcome, never replayed; the redelivery is a duplicate", async () => {
  const prefix = testPrefix("noretry");
  const store = new RedisStore({
    client: createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000 }),
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
    expect(dropped.length).toBe(1);
    const again = await store.append({ conversation, id, provider: "generic", text: "x" });
    expect(again.status).toBe("duplicate");
    expect((await store.inspect(conversation)).buffer?.size).toBe(1);
  } finally {
    await store.close();
    const keys = await server.client.keys(`${prefix}:*`);
    if (keys.length > 0) await server.client.del(...keys);
  }
});
