/**
 * Differential property test: the two implementations of the buffer state machine, MemoryStore
 * (TypeScript) and RedisStore (the Lua scripts, on a real redis-server), run the same random
 * operation sequences in lock-step and must answer alike, call by call: appends (duplicates
 * included) on several conversations across partitions, claims (forced or not), acks, failures
 * (retry now, retry later, permanent, dead by attempts), supersedes, lease extensions, dead
 * letters (list, requeue, delete), listConversations with a limit, listDue, inspect, stats and
 * purges. Stale claims stay in play, so lost-lock and already-acked answers are compared too.
 *
 * What legitimately differs is normalised, nothing else:
 * - time: RedisStore reads Redis `TIME`, which nothing here controls, so the MemoryStore's
 *   ManualClock is moved to the Redis clock before every step; the two then differ by the few
 *   milliseconds a call takes, and every `...Ms` number and ISO `...At` string is compared
 *   within {@link TIME_TOLERANCE_MS}. Windows, TTLs and leases are minutes long, so no deadline
 *   falls inside that tolerance and every time-based decision is the same on both.
 * - batch ids and lock tokens: random on each side; compared through a one-to-one mapping
 *   built as they first appear (the same id must keep mapping to the same id).
 * - errors: compared by class and code, not by message text.
 */
import fc from "fast-check";
import { expect, it } from "vitest";
import type { BufferSettings } from "../../src/core/config.ts";
import { LullError } from "../../src/core/errors.ts";
import type { BufferStore, InboundMessage } from "../../src/core/types.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { ManualClock } from "../harness/clock.ts";
import { testPrefix, useRedisServer } from "../harness/redis-server.ts";

const server = useRedisServer();

/** How far apart the two stores' clocks may be in one answer (a call's duration, with slack). */
const TIME_TOLERANCE_MS = 1_000;

const baseSettings: Omit<BufferSettings, "keyPrefix"> = {
  partitions: 2,
  // Nothing is due by time within a run; flushes come from maxMessages/maxBytes or force.
  windowMs: 600_000,
  maxWaitMs: 1_200_000,
  maxMessages: 3,
  maxBytes: 900,
  graceMs: 5_000,
  timerTtlMs: 700_000,
  processedTtlMs: 400_000,
  lockTtlMs: 600_000,
  dedupTtlMs: 86_400_000,
  retryMaxAttempts: 3,
  retryMaxAgeMs: 86_400_000,
  logPii: false,
};

// Keys that tie in the due index sort alike on both stores here; see the known disagreement below.
const CONVERSATIONS = ["support:1", "{a}:b c", "ü:🙂", "whatsapp:966501234567"];
const TEXTS = ["hi", "", "ünïcödé 🙂 text", "x".repeat(300)];

type Op =
  | { kind: "append"; conv: number; id: number; text: number }
  | { kind: "claim"; conv: number; force: boolean }
  | { kind: "ack"; held: number }
  | { kind: "fail"; held: number; permanent: boolean; later: boolean }
  | { kind: "supersede"; held: number }
  | { kind: "extend"; held: number }
  | { kind: "requeue"; dead: number }
  | { kind: "dlqDelete"; dead: number }
  | { kind: "dlqList"; limit: number }
  | { kind: "dlqGet"; dead: number }
  | { kind: "list"; partition: number; limit: number }
  | { kind: "listDue"; partition: number; limit: number }
  | { kind: "inspect"; conv: number }
  | { kind: "stats" }
  | { kind: "purge"; conv: number };

const conv = fc.nat(CONVERSATIONS.length - 1);
/** Which claim a token-taking step uses: mostly the latest (live), sometimes any (often stale). */
const held = fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, {
  weight: 1,
  arbitrary: fc.nat(7),
});
const dead = fc.nat(3);
const partition = fc.nat(baseSettings.partitions - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  // Appends dominate so buffers fill; a small id pool makes duplicates common.
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      conv,
      id: fc.nat(5),
      text: fc.nat(TEXTS.length - 1),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("claim" as const), conv, force: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("ack" as const), held }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("fail" as const),
      held,
      permanent: fc.nat(4).map((n) => n === 0),
      later: fc.nat(3).map((n) => n === 0),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("supersede" as const), held }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("extend" as const), held }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("requeue" as const), dead }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("dlqDelete" as const), dead }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("dlqList" as const),
      limit: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("dlqGet" as const), dead }) },
  {
    weight: 2,
    // Compared as a set, as listDue below is, for the same reason.
    arbitrary: fc.record({
      kind: fc.constant("list" as const),
      partition,
      limit: fc.constant(CONVERSATIONS.length),
    }),
  },
  {
    weight: 1,
    // Every due conversation (there are no more than CONVERSATIONS), compared as a set: which of
    // two entries due within a few milliseconds of each other comes first is timing, not state
    // (the memory side runs a step at the Redis time read before it when the answer names none,
    // Redis at its own TIME during the script), and it flipped once under load. The contract
    // tests check the oldest-first order and the limit themselves.
    arbitrary: fc.record({
      kind: fc.constant("listDue" as const),
      partition,
      limit: fc.constant(CONVERSATIONS.length),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("inspect" as const), conv }) },
  { weight: 1, arbitrary: fc.constant({ kind: "stats" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("purge" as const), conv }) },
);

/** One side of the comparison: a store and the claims it handed out (stale ones stay). */
interface Side {
  store: BufferStore;
  held: { conversation: string; batchId: string; token: string }[];
}

function message(op: Extract<Op, { kind: "append" }>): InboundMessage {
  return {
    conversation: CONVERSATIONS[op.conv]!,
    id: `m${op.id}`,
    provider: "generic",
    text: TEXTS[op.text]!,
    ...(op.id % 2 === 0 ? { sender: "alice", meta: { n: op.id } } : {}),
  };
}

/** Runs one operation on one side; what it answers (or the error it throws, by class/code). */
async function step(side: Side, op: Op): Promise<unknown> {
  const { store } = side;
  const pick = <T>(list: T[], i: number): T | undefined =>
    list.length === 0 ? undefined : i < 0 ? list[list.length - 1] : list[i % list.length];
  try {
    switch (op.kind) {
      case "append":
        return await store.append(message(op));
      case "claim": {
        const res = await store.claim(CONVERSATIONS[op.conv]!, { force: op.force });
        if (res.status === "claimed") {
          side.held.push({
            conversation: res.claim.batch.conversation,
            batchId: res.claim.batch.batchId,
            token: res.claim.token,
          });
        }
        return res;
      }
      case "ack": {
        const h = pick(side.held, op.held);
        return h ? await store.ack(h.conversation, h.batchId, h.token) : "no claim";
      }
      case "fail": {
        const h = pick(side.held, op.held);
        if (!h) return "no claim";
        return await store.fail(h.conversation, h.batchId, h.token, {
          error: "processor said no",
          delayMs: op.later ? 300_000 : 0,
          permanent: op.permanent,
          responseBody: "nope",
        });
      }
      case "supersede": {
        const h = pick(side.held, op.held);
        return h ? await store.supersede(h.conversation, h.batchId, h.token) : "no claim";
      }
      case "extend": {
        const h = pick(side.held, op.held);
        return h ? await store.extend(h.conversation, h.batchId, h.token) : "no claim";
      }
      case "requeue":
      case "dlqDelete":
      case "dlqGet": {
        const d = pick(await store.dlqList({ limit: 100 }), op.dead);
        if (!d) return "no dead letter";
        if (op.kind === "requeue") return await store.dlqRequeue(d.batchId);
        if (op.kind === "dlqDelete") return await store.dlqDelete(d.batchId);
        return await store.dlqGet(d.batchId);
      }
      case "dlqList":
        return await store.dlqList({ limit: op.limit });
      case "list":
        return (await store.listConversations(op.partition, op.limit)).sort();
      case "listDue":
        return (await store.listDue(op.partition, op.limit)).sort();
      case "inspect":
        return await store.inspect(CONVERSATIONS[op.conv]!);
      case "stats": {
        // `days` are keyed by the UTC date: equal unless a run straddles midnight.
        const { days: _days, ...rest } = await store.stats();
        return rest;
      }
      case "purge":
        return await store.purgeConversation(CONVERSATIONS[op.conv]!);
    }
  } catch (error) {
    if (error instanceof LullError) return { threw: error.constructor.name, code: error.code };
    throw error;
  }
}

/** The Redis store time a step ran at, where its answer tells (else undefined). */
function storeTimeOf(answer: unknown, op: Op, s: BufferSettings): number | undefined {
  if (!answer || typeof answer !== "object") return undefined;
  const a = answer as {
    nowMs?: unknown;
    claim?: { leaseUntilMs: number };
    retryAtMs?: unknown;
    leaseUntilMs?: unknown;
  };
  // A duplicate's answer carries the caller's clock, not store time (appendMessage reads no TIME
  // for it).
  if ((a as { status?: unknown }).status === "duplicate") return undefined;
  if (typeof a.nowMs === "number") return a.nowMs;
  if (a.claim) return a.claim.leaseUntilMs - s.lockTtlMs;
  if (op.kind === "fail" && typeof a.retryAtMs === "number") {
    return a.retryAtMs - (op.later ? 300_000 : 0);
  }
  if (op.kind === "extend" && typeof a.leaseUntilMs === "number") {
    return a.leaseUntilMs - s.lockTtlMs;
  }
  return undefined;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** Keys whose values are random per store: compared through the id mapping. */
const RANDOM_KEYS = new Set(["batchId", "token"]);

/**
 * Compares the memory answer `a` with the Redis answer `b`; returns the differences (path: what
 * differs). `ids` maps memory batch ids/tokens to Redis ones across the whole run.
 */
function differences(
  a: unknown,
  b: unknown,
  ids: { there: Map<string, string>; back: Map<string, string> },
  path = "$",
  key = "",
): string[] {
  if (RANDOM_KEYS.has(key) && typeof a === "string" && typeof b === "string") {
    const mapped = ids.there.get(a);
    const mappedBack = ids.back.get(b);
    if (mapped === undefined && mappedBack === undefined) {
      ids.there.set(a, b);
      ids.back.set(b, a);
      return [];
    }
    return mapped === b ? [] : [`${path}: ${key} ${a} already maps to ${mapped ?? "another"}`];
  }
  if (typeof a === "number" && typeof b === "number" && /Ms$/.test(key) && key !== "delayMs") {
    return Math.abs(a - b) <= TIME_TOLERANCE_MS ? [] : [`${path}: ${a} vs ${b}`];
  }
  if (typeof a === "string" && typeof b === "string" && ISO.test(a) && ISO.test(b)) {
    return Math.abs(Date.parse(a) - Date.parse(b)) <= TIME_TOLERANCE_MS
      ? []
      : [`${path}: ${a} vs ${b}`];
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) {
      return [
        `${path}: ${a.length} items vs ${b.length}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`,
      ];
    }
    return a.flatMap((x, i) => differences(x, b[i], ids, `${path}[${i}]`, key));
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const defined = (o: object) =>
      Object.entries(o).filter(([, v]) => v !== undefined).map(([k]) => k).sort();
    const ka = defined(a);
    const kb = defined(b);
    if (ka.join() !== kb.join()) return [`${path}: keys ${ka.join()} vs ${kb.join()}`];
    return ka.flatMap((k) =>
      differences(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        ids,
        `${path}.${k}`,
        k,
      )
    );
  }
  return Object.is(a, b) ? [] : [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}

it(
  "MemoryStore and RedisStore answer every random operation sequence alike (real redis-server)",
  async () => {
    const client = createTcpClient({ url: server.url });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(opArb, { minLength: 30, maxLength: 80, size: "max" }),
          async (ops) => {
            // A fresh key prefix per run: runs (and shrinking replays) never see each other's keys.
            const settings = { ...baseSettings, keyPrefix: testPrefix("diff") };
            const redis: Side = { store: new RedisStore({ client, settings }), held: [] };
            const clock = new ManualClock(await redis.store.now());
            const memory: Side = { store: new MemoryStore({ settings, clock }), held: [] };
            const ids = { there: new Map<string, string>(), back: new Map<string, string>() };
            for (const [i, op] of ops.entries()) {
              clock.advance((await redis.store.now()) - clock.now());
              const fromRedis = await step(redis, op);
              // Where the Redis answer says when it ran, the memory side runs at that very
              // millisecond: two appends in one millisecond tie in the due index on both or neither.
              const ranAt = storeTimeOf(fromRedis, op, settings);
              if (ranAt !== undefined) clock.advance(ranAt - clock.now());
              const fromMemory = await step(memory, op);
              const diff = differences(fromMemory, fromRedis, ids);
              expect(
                diff,
                `step ${i} ${JSON.stringify(op)}: memory ${JSON.stringify(fromMemory)}, ` +
                  `redis ${JSON.stringify(fromRedis)}`,
              ).toEqual([]);
            }
          },
        ),
        // A fixed seed keeps CI reproducible; LULL_DIFF_SEED explores others.
        { numRuns: 100, seed: Number(process.env.LULL_DIFF_SEED ?? 20261202) },
      );
    } finally {
      await client.close();
    }
  },
  120_000,
);

// A disagreement the test above found (with "～:1" and "🙂:1" among its conversations), fixed:
// when two conversations of one partition have the same due time (two appends in one
// millisecond), Redis orders them by their bytes (UTF-8); MemoryStore ordered them by UTF-16 code
// units, which differ for keys with characters from U+E000 up against ones above U+FFFF, so
// listConversations/listDue with a limit named different conversations. It now compares code
// points (compareMembers), which is UTF-8 byte order.
it("ties in the due index: MemoryStore lists them in Redis' (byte) order", async () => {
  const settings = { ...baseSettings, keyPrefix: testPrefix("ties") };
  const ties = ["\uFF5E:1", "🙂:1"]; // both in partition 0 of 2
  // What Redis does with equal scores, asked directly.
  const zset = `${settings.keyPrefix}:ties`;
  await server.client.zadd(zset, 1, ties[1]!, 1, ties[0]!);
  const redisOrder = await server.client.zrange(zset, 0, -1);
  await server.client.del(zset);
  expect(redisOrder).toEqual(["\uFF5E:1", "🙂:1"]);
  const store = new MemoryStore({ settings, clock: new ManualClock() });
  for (const conversation of [...ties].reverse()) {
    await store.append({ conversation, id: "m", provider: "generic", text: "hi" });
  }
  expect(await store.listConversations(0, 2)).toEqual(redisOrder);
});
