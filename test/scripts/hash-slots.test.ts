/**
 * Every script touches one hash slot, whatever the conversation id contains. Checked twice: by
 * computing CRC16 slots of every key list sent, and by running the whole lifecycle on a
 * single-node Redis Cluster, which refuses cross-slot scripts (CROSSSLOT).
 */
import type Redis from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { Keys } from "../../src/core/keys.ts";
import type { RedisClient } from "../../src/redis/redis-client.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { testPrefix, useRedisServer } from "../harness/redis-server.ts";
import { msg, settings } from "./helpers.ts";

/** CRC16-XMODEM, as Redis Cluster uses for key slots. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The cluster slot of a key (hash tag rules of the Redis Cluster spec). */
function keySlot(key: string): number {
  return crc16(new TextEncoder().encode(Keys.hashTag(key))) % 16384;
}

const WEIRD = [
  "support:42",
  "{evil}:x",
  "a}b{c}",
  "spaces in id",
  "whatsapp:+966 50 123 4567",
  "テレグラム:チャット🙂",
  "::::",
  "{}",
  "%7B",
];

// A single-node cluster: it refuses scripts whose keys span slots.
const server = useRedisServer({
  args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
});
let port: number;
let admin: Redis;

beforeAll(async () => {
  port = server.port;
  admin = server.client;
  await admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
  for (let i = 0; i < 200; i++) {
    const info = String(await admin.call("CLUSTER", "INFO"));
    if (info.includes("cluster_state:ok")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
});

describe("hash slots", () => {
  it("CRC16 matches Redis' own slot numbers", async () => {
    expect(crc16(new TextEncoder().encode("123456789"))).toBe(0x31c3);
    for (const key of ["foo", "{user1000}.following", "a{b}c", "{}x"]) {
      expect(keySlot(key)).toBe(Number(await admin.call("CLUSTER", "KEYSLOT", key)));
    }
    // The node really refuses cross-slot scripts, so the lifecycle test below is meaningful.
    await expect(admin.eval("return 1", 2, "foo", "bar")).rejects.toThrow(/CROSSSLOT/);
  });

  it("every script call of a full lifecycle stays in one slot, on a real cluster node", async () => {
    const calls: string[][] = [];
    const inner = createTcpClient({ url: `redis://127.0.0.1:${port}` });
    const recording: RedisClient = {
      evalsha: (sha, keys, args) => {
        calls.push(keys);
        return inner.evalsha(sha, keys, args);
      },
      eval: (src, keys, args) => inner.eval(src, keys, args),
      close: () => inner.close(),
    };
    const s = settings(testPrefix("slots"), { partitions: 16, retryMaxAttempts: 1 });
    const store = new RedisStore({ client: recording, settings: s });
    for (const conv of WEIRD) {
      await store.append(msg(conv, "m{1}"));
      await store.append(msg(conv, "m 2"));
      const c = await store.claim(conv, { force: true });
      if (c.status !== "claimed") throw new Error(`claim ${conv}: ${c.status}`);
      expect(c.claim.batch.conversation).toBe(conv);
      await store.extend(conv, c.claim.batch.batchId, c.claim.token);
      await store.append(msg(conv, "m3"));
      await store.fail(conv, c.claim.batch.batchId, c.claim.token, {
        error: "x",
        delayMs: 0,
        permanent: false,
      });
      await store.dlqRequeue(c.claim.batch.batchId);
      const again = await store.claim(conv, { force: true });
      if (again.status !== "claimed") throw new Error(`reclaim ${conv}: ${again.status}`);
      const sup = await store.supersede(conv, again.claim.batch.batchId, again.claim.token);
      expect(sup.status).toBe("merged");
      const fin = await store.claim(conv, { force: true });
      if (fin.status !== "claimed") throw new Error(`final claim ${conv}: ${fin.status}`);
      expect(fin.claim.batch.messages.map((m) => m.id)).toEqual(["m{1}", "m 2", "m3"]);
      await store.ack(conv, fin.claim.batch.batchId, fin.claim.token, {
        messages: fin.claim.batch.messages,
      });
      await store.inspect(conv);
      await store.recordEvent(conv, "lock_lost", { k: "v" });
    }
    for (let p = 0; p < s.partitions; p++) {
      await store.listDue(p, 10);
      await store.reapExpired(p, 10);
      await store.listConversations(p, 10);
    }
    await store.stats();
    await store.readEvents({});
    await store.latestEvents({ type: "delivered" });
    await store.dlqList();
    expect(calls.length).toBeGreaterThan(WEIRD.length * 10);
    for (const keys of calls) {
      expect(new Set(keys.map(keySlot)).size).toBeLessThanOrEqual(1);
    }
    // Distinct conversations never share keys, even when their ids look alike after escaping.
    const keys = new Keys(s.keyPrefix, s.partitions);
    const buffers = new Set(WEIRD.map((c) => keys.conversation(c).buffer));
    expect(buffers.size).toBe(WEIRD.length);
    await store.close();
  });
});
