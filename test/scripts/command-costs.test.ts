/**
 * What a message costs on a metered Redis (Upstash bills every command a script runs, plus the
 * EVALSHA): counted from INFO commandstats on a real redis-server, the way bench/ reports it.
 * Regression guards for the budgets of issue "Free when idle, lean per message" (a new message 6, a
 * duplicate 4): a new message costs 5 (its meta is one BITFIELD), a duplicate 4 (no TIME: its
 * dedup test uses the caller's provisional score, which a new id's TIME corrects, so no isolate
 * clock can shorten the dedup window).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { Flusher } from "../../src/core/flusher.ts";
import type { AppendResult } from "../../src/core/types.ts";
import { createTcpClient, type TcpRedisClient } from "../../src/redis/tcp-client.ts";
import { bufferSettings } from "../../src/store/create-store.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { countCommands, type SendCommand } from "../../bench/lib.ts";
import { createPostgresWakeup } from "../../src/wakeup/postgres-wakeup.ts";
import { startPostgresServer } from "../harness/postgres-server.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

let server: RedisServer;
let tcp: TcpRedisClient;
let send: SendCommand;
beforeAll(async () => {
  server = await startRedisServer();
  tcp = createTcpClient({ url: server.url });
  send = (name, ...args) => tcp.command(name, ...args);
});
afterAll(async () => {
  await tcp.close();
  await server.stop();
});

const config = parseConfig({
  LULL_WINDOW_MS: "300",
  LULL_GRACE_MS: "100",
  LULL_MAX_WAIT_MS: "5000",
});

function storeFor(name: string, messageEvents = false): RedisStore {
  return new RedisStore({
    client: tcp,
    settings: { ...bufferSettings(config), keyPrefix: testPrefix(name), messageEvents },
  });
}

const message = (conversation: string, id: string) => ({
  conversation,
  id,
  provider: "generic" as const,
  text: "I want to order a pizza",
});

/** Commands per append of `ids` (round-robin over `convs`), after the scripts are loaded. */
async function perAppend(store: RedisStore, convs: string[], ids: string[]): Promise<number> {
  const counted = await countCommands(send, async () => {
    for (let i = 0; i < ids.length; i++) {
      await store.append(message(convs[i % convs.length]!, ids[i]!));
    }
  });
  return counted.total / ids.length;
}

describe("commands billed", () => {
  for (const messageEvents of [false, true]) {
    const extra = messageEvents ? 1 : 0;
    it(
      `a new message into an open buffer costs <= ${5 + extra}, a duplicate <= ${
        4 + extra
      } (per-message events ${messageEvents ? "on" : "off"})`,
      async () => {
        const store = storeFor(`cost-${messageEvents}`, messageEvents);
        const convs = Array.from({ length: 10 }, (_, i) => `generic:cost:${i}`);
        for (const c of convs) await store.append(message(c, `${c}:open`));
        const ids = Array.from({ length: 40 }, (_, i) => `id-${i}`);
        expect(await perAppend(store, convs, ids)).toBeLessThanOrEqual(5 + extra);
        expect(await perAppend(store, convs, ids)).toBeLessThanOrEqual(4 + extra);
      },
    );
  }

  it("an ack reads Redis TIME only for a buffer that opened during the flight (its due time)", async () => {
    // The isolate's clock an hour ahead, so the event shows which clock it took.
    const skew = 3_600_000;
    const store = new RedisStore({
      client: tcp,
      settings: { ...bufferSettings(config), keyPrefix: testPrefix("cost-ack") },
      now: () => Date.now() + skew,
    });
    const ackCost = async (conversation: string, openBehind: boolean) => {
      await store.append(message(conversation, `${conversation}:1`));
      const claimed = await store.claim(conversation, { force: true });
      if (claimed.status !== "claimed") throw new Error(`expected a claim, got ${claimed.status}`);
      if (openBehind) await store.append(message(conversation, `${conversation}:2`));
      const { batch, token } = claimed.claim;
      let acked: Awaited<ReturnType<RedisStore["ack"]>> | undefined;
      const counted = await countCommands(send, async () => {
        acked = await store.ack(conversation, batch.batchId, token);
      });
      return { counted, acked: acked!, batchId: batch.batchId, redisNow: claimed.claim.nowMs };
    };
    await ackCost("generic:ack:warm", false); // scripts loaded: the counts are the steady state's
    const quiet = await ackCost("generic:ack:quiet", false);
    expect(quiet.acked.dueAgainAtMs).toBeNull();
    expect(quiet.counted.byCommand["time"]).toBeUndefined();
    // EVALSHA, GET of the lock (whose value names the batch and its size: no read of the batch
    // hash), BITFIELD_RO of the meta, DEL, ZREM of the lease, SET of the processed record, the
    // delivered event and two day counters.
    expect(quiet.counted.byCommand["hmget"]).toBeUndefined();
    expect(quiet.counted.total).toBe(9);
    const behind = await ackCost("generic:ack:behind", true);
    expect(behind.counted.byCommand["time"]).toBe(1);
    // The due time of the buffer behind is a flush rule: on Redis time, not the skewed clock.
    expect(behind.acked.dueAgainAtMs).toBeGreaterThanOrEqual(
      behind.redisNow + config.windowMs + config.graceMs,
    );
    expect(behind.acked.dueAgainAtMs).toBeLessThan(behind.redisNow + skew / 2);
    // The quiet ack's delivered event took the isolate's clock; the other one Redis time.
    const { events } = await store.latestEvents({ limit: 50, type: "delivered" });
    const at = (batchId: string) =>
      Date.parse(events.find((e) => e.fields["batchId"] === batchId)!.at);
    expect(at(quiet.batchId)).toBeGreaterThanOrEqual(quiet.redisNow + skew - 60_000);
    expect(at(behind.batchId)).toBeLessThan(behind.redisNow + skew / 2);
  });

  /** Commands per message over three 5-message bursts' lives, each after a warm-up. */
  async function burstLife(store: RedisStore): Promise<number[]> {
    const flusher = new Flusher({ store, processor: async () => ({ kind: "delivered" }), config });
    // Warm-up, as in steady state: every script loaded, and every partition has delivered a batch
    // today (a partition's first batch of the day also folds the week-old day buckets).
    const warmed = new Map<number, string>();
    for (let i = 0; warmed.size < config.partitions; i++) {
      const conversation = `generic:warm:${i}`;
      const p = store.keys.partitionOf(conversation);
      if (!warmed.has(p)) warmed.set(p, conversation);
    }
    await Promise.all([...warmed.values()].map(async (conversation) => {
      await flusher.runTimer(conversation, await store.append(message(conversation, "w")));
    }));
    const perMessage: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const conversation = `generic:life:${rep}`;
      const life = await countCommands(send, async () => {
        let first: AppendResult | undefined;
        for (let i = 0; i < 5; i++) {
          const appended = await store.append(message(conversation, `m${i}`));
          first ??= appended;
        }
        expect(first!.armTimer).toBe(true);
        await flusher.runTimer(conversation, first!);
      });
      perMessage.push(life.total / 5);
      const done = await store.inspect(conversation);
      expect(done.buffer).toBeNull();
      expect(done.batch).toBeNull();
    }
    return perMessage;
  }

  it("a 5-message burst costs <= 11.4 per message over its life (appends, timer, claim, ack, settle)", async () => {
    const perMessage = await burstLife(storeFor("cost-life"));
    // 54 commands to deliver it (its ack reads no TIME: nothing opened behind it) less the
    // ack's read of the meta, which its probe of the partition replaces (one EXISTS of meta, due
    // index and leases finds none of them), and 4 for the timer to settle the wake-up its first
    // append lowered (so the durable trigger calls no sweep for it), with no epoch or due-index
    // read first; and the claim's RENAMENX, which spares it the EXISTS of lock and batch: 57 (63
    // before the probe, 58 before RENAMENX).
    for (const n of perMessage) expect(n).toBeLessThanOrEqual(11.4);
  });

  it("with the wake index in Postgres a 5-message burst costs <= 10 per message over its life", async () => {
    const pg = await startPostgresServer();
    const index = createPostgresWakeup({ url: pg.url });
    try {
      const keyPrefix = testPrefix("cost-life-db");
      const store = new RedisStore({
        client: tcp,
        settings: { ...bufferSettings(config), keyPrefix },
        wakeIndex: index,
      });
      const perMessage = await burstLife(store);
      // The same 57 less the 3 of the burst's noteWake (EVALSHA, HINCRBY, ZADD) and the 4 of the
      // timer's settle (EVALSHA, HGET, ZREM, ZRANGE): both are one statement in Postgres now.
      for (const n of perMessage) expect(n).toBeLessThanOrEqual(10);
      // And the wake-up really went there, and was settled there.
      expect(await index.duePartitions(keyPrefix, Date.now() + 3_600_000, 100)).toEqual([]);
      const [row] = await pg.sql`select count(*)::int as n from lull.wake_index where epoch > 0`;
      expect(row!.n).toBeGreaterThan(0);
    } finally {
      await index.close();
      await pg.stop();
    }
  });
});
