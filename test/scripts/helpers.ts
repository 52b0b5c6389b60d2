/**
 * Shared set-up for the script tests: settings, a RedisStore on the test file's redis-server,
 * and direct state manipulation (backdating meta, reading keys) so branches that depend on time
 * are reached deterministically instead of by sleeping.
 */
import type Redis from "ioredis";
import type { BufferSettings } from "../../src/core/config.ts";
import { Keys } from "../../src/core/keys.ts";
import type { Claim, InboundMessage } from "../../src/core/types.ts";
import type { RedisClient } from "../../src/redis/redis-client.ts";
import { createTcpClient, type TcpRedisClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { type RedisServer, testPrefix } from "../harness/redis-server.ts";

/** Settings with long windows (nothing due by itself) unless overridden. */
export function settings(prefix: string, overrides: Partial<BufferSettings> = {}): BufferSettings {
  return {
    keyPrefix: prefix,
    partitions: 4,
    windowMs: 60_000,
    maxWaitMs: 120_000,
    maxMessages: 50,
    maxBytes: 65_536,
    graceMs: 2_000,
    timerTtlMs: 70_000,
    processedTtlMs: 400_000,
    lockTtlMs: 30_000,
    dedupTtlMs: 86_400_000,
    retryMaxAttempts: 3,
    retryMaxAgeMs: 86_400_000,
    logPii: false,
    // The script tests read the per-message events too (deployed, they are off by default).
    messageEvents: true,
    ...overrides,
  };
}

/** A store, its keys, and a raw client for assertions. */
export interface Fixture {
  store: RedisStore;
  keys: Keys;
  s: BufferSettings;
  client: TcpRedisClient;
  raw: Redis;
  close(): Promise<void>;
}

/** A RedisStore with its own key prefix on `server`. */
export function fixture(
  server: RedisServer,
  name: string,
  overrides: Partial<BufferSettings> = {},
  wrap: (c: RedisClient) => RedisClient = (c) => c,
): Fixture {
  const s = settings(testPrefix(name), overrides);
  const client = createTcpClient({ url: server.url });
  const store = new RedisStore({ client: wrap(client), settings: s });
  return {
    store,
    keys: new Keys(s.keyPrefix, s.partitions),
    s,
    client,
    raw: server.client,
    close: () => store.close(),
  };
}

/** A generic inbound message. */
export function msg(conversation: string, id: string, text = `text of ${id}`): InboundMessage {
  return { conversation, id, provider: "generic", text };
}

/** The meta's BITFIELD layout (src/scripts/includes/flush.lua): field -> slot (#n, i64). */
const META_SLOTS = {
  firstAt: 0,
  lastAt: 1,
  count: 2,
  bytes: 3,
  createdAt: 4,
  attempts: 5,
  counted: 6,
} as const;
export type MetaField = keyof typeof META_SLOTS;

/** The open buffer's meta as Redis holds it, read with BITFIELD (all zero: no meta). */
export async function readMeta(
  f: Fixture,
  conversation: string,
): Promise<Record<MetaField, number>> {
  const key = f.keys.conversation(conversation).meta;
  const fields = Object.keys(META_SLOTS) as MetaField[];
  const args = fields.flatMap((name) => ["GET", "i64", `#${META_SLOTS[name]}`]);
  const values = (await f.raw.call("BITFIELD_RO", key, ...args)) as number[];
  return Object.fromEntries(fields.map((name, i) => [name, Number(values[i])])) as Record<
    MetaField,
    number
  >;
}

/** Overwrites some fields of the open buffer's meta (to reach time-dependent branches). */
export async function patchMeta(
  f: Fixture,
  conversation: string,
  patch: Partial<Record<MetaField, number>>,
): Promise<void> {
  const key = f.keys.conversation(conversation).meta;
  const args = Object.entries(patch).flatMap(([name, value]) => [
    "SET",
    "i64",
    `#${META_SLOTS[name as MetaField]}`,
    String(value),
  ]);
  await f.raw.call("BITFIELD", key, ...args);
}

/**
 * Moves the open buffer's firstAt/lastAt `ms` into the past, as if the burst had happened
 * earlier, so the claim sees it due without the test sleeping.
 */
export async function backdate(f: Fixture, conversation: string, ms: number): Promise<void> {
  const { firstAt, lastAt } = await readMeta(f, conversation);
  await patchMeta(f, conversation, { firstAt: firstAt - ms, lastAt: lastAt - ms });
}

/** Events of a partition stream as plain objects (oldest first). */
export async function streamEvents(
  f: Fixture,
  partition: number,
): Promise<Record<string, string>[]> {
  const entries = await f.raw.xrange(f.keys.partition(partition).events, "-", "+");
  return entries.map(([, fields]) => {
    const o: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) o[fields[i]!] = fields[i + 1]!;
    return o;
  });
}

/** Counter totals of a partition. */
export async function counters(f: Fixture, partition: number): Promise<Record<string, string>> {
  // A total is what was folded out of old day buckets plus every bucket kept.
  const p = f.keys.partition(partition);
  const sums = new Map<string, number>();
  for (const [name, value] of Object.entries(await f.raw.hgetall(p.stats))) {
    sums.set(name, (sums.get(name) ?? 0) + Number(value));
  }
  for (const [field, value] of Object.entries(await f.raw.hgetall(p.daily))) {
    const name = field.slice(field.indexOf(":") + 1);
    sums.set(name, (sums.get(name) ?? 0) + Number(value));
  }
  return Object.fromEntries([...sums].map(([name, n]) => [name, String(n)]));
}

/**
 * Appends `ids` to `conversation` and force-claims them as one batch.
 * @default ids two messages, `<conversation>-0` and `<conversation>-1`
 */
export async function claimOne(
  f: Fixture,
  conversation: string,
  ids: string[] = [`${conversation}-0`, `${conversation}-1`],
): Promise<Claim> {
  for (const id of ids) await f.store.append(msg(conversation, id));
  const r = await f.store.claim(conversation, { force: true });
  if (r.status !== "claimed") throw new Error(`expected a claim, got ${r.status}`);
  return r.claim;
}
