/**
 * The Redis store with its partitions' wake-ups in the project's Postgres (lull.wake_index,
 * RedisStoreOptions.wakeIndex), on a real redis-server and a real PostgreSQL: a burst's
 * wake-up goes to the database and nothing of the wake index runs in Redis; the sweep finds it
 * there and settles it; a timer that delivered its burst settles it; a retry's wake-up goes
 * there too; and with the database killed, the Redis wake index stands in and the sweep still
 * delivers everything.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { Flusher } from "../../src/core/flusher.ts";
import type { DatabaseWakeIndex } from "../../src/core/ports.ts";
import type { Batch, DeliveryOutcome } from "../../src/core/types.ts";
import { createTcpClient, type TcpRedisClient } from "../../src/redis/tcp-client.ts";
import { bufferSettings } from "../../src/store/create-store.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { createApp } from "../../src/app.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { withWakeupMirror } from "../../src/wakeup/mirror.ts";
import { createPostgresWakeup } from "../../src/wakeup/postgres-wakeup.ts";
import { WAKE_INDEX_MIGRATION } from "../../src/wakeup/wakeup.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { type PostgresServer, startPostgresServer } from "../harness/postgres-server.ts";

let redis: RedisServer;
let tcp: TcpRedisClient;
let pg: PostgresServer;
let index: ReturnType<typeof createPostgresWakeup>;

beforeAll(async () => {
  [redis, pg] = await Promise.all([startRedisServer(), startPostgresServer()]);
  tcp = createTcpClient({ url: redis.url });
  index = createPostgresWakeup({ url: pg.url, timeoutMs: 1000 });
});
afterAll(async () => {
  await index?.close();
  await tcp?.close();
  await Promise.all([redis?.stop(), pg?.stop()]);
});

const config = parseConfig({ LULL_WINDOW_MS: "150", LULL_GRACE_MS: "50" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(
  name: string,
  outcomes: DeliveryOutcome[] = [],
  wakeIndex: DatabaseWakeIndex = index,
) {
  const errors: string[] = [];
  const keyPrefix = testPrefix(name);
  const store = new RedisStore({
    client: tcp,
    settings: { ...bufferSettings(config), keyPrefix },
    wakeIndex,
    onWakeIndexError: (operation) => errors.push(operation),
  });
  const delivered: Batch[] = [];
  const flusher = new Flusher({
    store,
    config,
    processor: (batch) => {
      delivered.push(batch);
      return Promise.resolve(outcomes.shift() ?? { kind: "delivered" });
    },
  });
  const redisWakes = async () => {
    const w = store.keys.wake();
    return {
      partitions: Number(await tcp.command("ZCARD", w.wake)),
      epochs: Number(await tcp.command("HLEN", w.epoch)),
    };
  };
  return { store, flusher, delivered, errors, redisWakes, keyPrefix };
}

const msg = (conversation: string, id: string) => ({
  conversation,
  id,
  provider: "generic" as const,
  text: `text of ${id}`,
});

/** Everything the store's scope of the wake index holds that is due by an hour from now. */
async function databaseDue(store: RedisStore) {
  return await index.duePartitions(store.keys.prefix, Date.now() + 3_600_000, 1000);
}

describe("the wake index in the database", () => {
  it("a burst's wake-up goes to the database, none to Redis; the sweep delivers and settles it", async () => {
    const { store, flusher, delivered, redisWakes, errors } = setup("dbwake-sweep");
    const first = await store.append(msg("generic:db:a", "a1"));
    await store.append(msg("generic:db:a", "a2"));
    expect(first.wake).toMatchObject({ index: "database", partition: first.wake!.partition });
    expect(await redisWakes()).toEqual({ partitions: 0, epochs: 0 });
    expect(await databaseDue(store)).toEqual([{ partition: first.wake!.partition, epoch: "1" }]);
    // Not due yet: the sweep visits the partition (its wake-up is the due time, not yet passed)
    // only once that time has passed.
    const early = await flusher.flushDue();
    expect(early.claimed).toBe(0);
    await sleep(config.windowMs + config.graceMs + 50);
    const swept = await flusher.flushDue();
    expect(swept).toMatchObject({ claimed: 1, delivered: 1, partitions: 1, errors: 0 });
    // The Redis index is empty, so is what the trigger's own row must hold.
    expect(swept.nextWakeAtMs).toBeNull();
    expect(delivered.map((b) => b.messages.map((m) => m.id))).toEqual([["a1", "a2"]]);
    expect(await databaseDue(store)).toEqual([]);
    expect(await redisWakes()).toEqual({ partitions: 0, epochs: 0 });
    expect(errors).toEqual([]);
  });

  it("a timer that delivered its burst settles the partition in the database", async () => {
    const { store, flusher, delivered, redisWakes } = setup("dbwake-timer");
    const first = await store.append(msg("generic:db:t", "t1"));
    await store.append(msg("generic:db:t", "t2"));
    expect(first.armTimer).toBe(true);
    await flusher.runTimer("generic:db:t", first);
    expect(delivered).toHaveLength(1);
    expect(await databaseDue(store)).toEqual([]);
    expect(await redisWakes()).toEqual({ partitions: 0, epochs: 0 });
    // Its epoch moved on from the append's: the row remains, holding nothing.
    expect(await index.partitionEpoch(store.keys.prefix, first.wake!.partition)).toBe(
      first.wake!.epoch,
    );
  });

  it("a timer does not drop a wake-up another burst lowered in the same partition meanwhile", async () => {
    const { store, flusher } = setup("dbwake-race");
    // Two conversations of one partition.
    const p = store.keys.partitionOf("generic:race:0");
    let other = "";
    for (let i = 1; other === ""; i++) {
      if (store.keys.partitionOf(`generic:race:${i}`) === p) other = `generic:race:${i}`;
    }
    const first = await store.append(msg("generic:race:0", "r1"));
    await sleep(config.windowMs + config.graceMs + 20);
    const second = await store.append(msg(other, "o1")); // lowers the same partition again
    expect(second.wake?.epoch).not.toBe(first.wake!.epoch);
    await flusher.runTimer("generic:race:0", first);
    // The other burst's wake-up is still there for the sweep.
    const due = await index.duePartitions(store.keys.prefix, second.flushAtMs!, 1000);
    expect(due.map((d) => d.partition)).toContain(p);
  });

  it("a retry's wake-up goes to the database, and the sweep redelivers the batch", async () => {
    const { store, flusher, delivered, redisWakes } = setup("dbwake-retry", [
      { kind: "retry", error: "down", retryAfterMs: 100 },
    ]);
    const first = await store.append(msg("generic:db:r", "r1"));
    await sleep(config.windowMs + config.graceMs + 50);
    expect(await flusher.flushDue()).toMatchObject({ retried: 1 });
    const due = await index.duePartitions(store.keys.prefix, Date.now() + 60_000, 1000);
    expect(due.map((d) => d.partition)).toEqual([first.wake!.partition]);
    await sleep(1500); // the retry's backoff (at least the processor's 100 ms, plus jitter)
    let swept = await flusher.flushDue();
    for (let i = 0; i < 20 && swept.delivered === 0; i++) {
      await sleep(250);
      swept = await flusher.flushDue();
    }
    expect(swept.delivered).toBe(1);
    expect(delivered.map((b) => b.attempt)).toEqual([1, 2]);
    expect(await databaseDue(store)).toEqual([]);
    expect(await redisWakes()).toEqual({ partitions: 0, epochs: 0 });
  });

  it("with the database down the Redis wake index stands in; the sweep still delivers, and both end empty", async () => {
    const { store, flusher, delivered, redisWakes, errors } = setup("dbwake-down");
    // One burst noted in the database before it goes down.
    const before = await store.append(msg("generic:down:before", "b1"));
    expect(before.wake?.index).toBe("database");
    await pg.kill();
    try {
      const during = await store.append(msg("generic:down:during", "d1"));
      expect(during.wake?.index).toBeUndefined();
      expect(errors).toContain("lower");
      expect((await redisWakes()).partitions).toBe(1);
      await sleep(config.windowMs + config.graceMs + 50);
      // The database's partitions cannot be read: the Redis index's are swept.
      const swept = await flusher.flushDue();
      expect(errors).toContain("due");
      expect(swept).toMatchObject({ delivered: 1, errors: 0 });
      expect(delivered.map((b) => b.conversation)).toEqual(["generic:down:during"]);
      expect(await redisWakes()).toMatchObject({ partitions: 0 });
    } finally {
      await pg.start();
    }
    // Back: the burst noted there before the outage is found and delivered.
    let swept = await flusher.flushDue();
    for (let i = 0; i < 20 && swept.delivered === 0; i++) {
      await sleep(250);
      swept = await flusher.flushDue();
    }
    expect(delivered.map((b) => b.conversation)).toEqual([
      "generic:down:during",
      "generic:down:before",
    ]);
    expect(await databaseDue(store)).toEqual([]);
  });

  it("a partition due in both indexes is visited once and settled in both", async () => {
    const { store, flusher, delivered, redisWakes, keyPrefix } = setup("dbwake-both");
    // The same prefix without the database index: its lowerings land in Redis.
    const redisOnly = new RedisStore({
      client: tcp,
      settings: { ...bufferSettings(config), keyPrefix },
    });
    const conversation = "generic:both:0";
    const a = await store.append(msg(conversation, "x1"));
    await redisOnly.noteWake(conversation, a.flushAtMs!);
    expect((await redisWakes()).partitions).toBe(1);
    await sleep(config.windowMs + config.graceMs + 50);
    const swept = await flusher.flushDue();
    expect(swept).toMatchObject({ partitions: 1, delivered: 1, errors: 0, nextWakeAtMs: null });
    expect(delivered).toHaveLength(1);
    expect(await databaseDue(store)).toEqual([]);
    expect((await redisWakes()).partitions).toBe(0);
  });

  it("a database that accepts but never answers: the lowering gives up and Redis takes it", async () => {
    // A stalled server (a hung pooler): it accepts connections and says nothing.
    const held: Socket[] = [];
    const stalled = createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => stalled.listen(0, "127.0.0.1", resolve));
    const port = (stalled.address() as { port: number }).port;
    const hung = createPostgresWakeup({
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      timeoutMs: 5000,
      lowerTimeoutMs: 300,
    });
    try {
      const { store, errors } = setup("dbwake-hung", [], hung);
      const appended = await store.append(msg("generic:hung:0", "h1"));
      expect(appended.status).toBe("appended");
      expect(appended.wake?.index).toBeUndefined();
      expect(errors).toEqual(["lower"]);
      const w = store.keys.wake();
      expect(Number(await tcp.command("ZCARD", w.wake))).toBe(1);
    } finally {
      for (const socket of held) socket.destroy();
      stalled.close();
      await hung.close().catch(() => {});
    }
  });

  it("two deployments on one database (two key prefixes): one's sweep never settles the other's wake-up", async () => {
    const staging = setup("dbwake-staging");
    const production = setup("dbwake-production");
    const appended = await production.store.append(msg("generic:scoped:0", "p1"));
    expect(appended.wake?.index).toBe("database");
    await sleep(config.windowMs + config.graceMs + 50);
    // Staging's sweep comes first: nothing of its own is due, and production's is not its own.
    expect(await staging.flusher.flushDue()).toMatchObject({ partitions: 0, claimed: 0 });
    expect(await production.flusher.flushDue()).toMatchObject({ delivered: 1, partitions: 1 });
    expect(production.delivered.map((b) => b.conversation)).toEqual(["generic:scoped:0"]);
    expect(staging.delivered).toEqual([]);
  });
});

/** `store` behind the wake-up mirror of a function with a database, recording its lowerings. */
function recordingMirror(store: RedisStore, wakeup: ReturnType<typeof createPostgresWakeup>) {
  const lowered: number[] = [];
  const mirrored = withWakeupMirror(store, {
    wakeup: { ...wakeup, lower: (atMs: number) => (lowered.push(atMs), Promise.resolve()) },
    waitUntil: (work) => void work,
    onError: () => {},
  });
  return { mirrored, lowered };
}

/** GET /lull/health's reasons, for an app whose trigger reads `wakeup`. */
async function healthReasons(wakeup: ReturnType<typeof createPostgresWakeup>): Promise<string[]> {
  const appConfig = parseConfig({
    LULL_INGEST_TOKEN: "i",
    LULL_ADMIN_TOKEN: "admin",
    LULL_PROCESSOR_URL: "http://127.0.0.1:9/unused",
  });
  const app = createApp({
    config: appConfig,
    store: new MemoryStore({ settings: bufferSettings(appConfig) }),
    storeKind: "memory",
    wakeup: { ...wakeup, close: () => Promise.resolve() },
    waitUntil: () => {},
  });
  try {
    const res = await app.handler(
      new Request("http://127.0.0.1/lull/health", { headers: { authorization: "Bearer admin" } }),
    );
    return ((await res.json()) as { reasons?: string[] }).reasons ?? [];
  } finally {
    await app.close();
  }
}

describe("a function deployed before its migration", () => {
  it("without lull.wake_index (the migration not applied): wake-ups land in Redis, and status names the migration", async () => {
    // A database holding only the migrations before the wake index.
    const url = await pg.createDatabase(`nowakeindex_${Date.now()}`);
    const older = postgres(url, { max: 1, prepare: false, onnotice: () => {} });
    const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "supabase", "migrations");
    try {
      for (
        const f of readdirSync(dir).filter((f) => /_lull_(outbox|wakeup)\.sql$/.test(f)).sort()
      ) {
        await older.unsafe(readFileSync(join(dir, f), "utf8"));
      }
    } finally {
      await older.end({ timeout: 1 });
    }
    const wakeup = createPostgresWakeup({ url });
    try {
      const status = await wakeup.status();
      expect(status.missingMigration).toBe(WAKE_INDEX_MIGRATION);
      expect(status.dueAtMs).toBeNull();
      const { store, errors } = setup("dbwake-nomigration", [], wakeup);
      const appended = await store.append(msg("generic:nomig:0", "n1"));
      expect(appended.wake?.index).toBeUndefined();
      expect(errors).toEqual(["lower"]);
      // The mirror lowers the trigger's row for it, so the trigger still comes on time.
      const { mirrored, lowered } = recordingMirror(store, wakeup);
      const second = await mirrored.append(msg("generic:nomig:1", "n2"));
      expect(lowered).toEqual([second.wakeAtMs]);
      // And health says what to do.
      expect(await healthReasons(wakeup)).toContain(
        `the migration ${WAKE_INDEX_MIGRATION} is not applied (supabase db push): ` +
          "wake-ups fall back to the Redis wake index",
      );
      expect(await healthReasons(index)).not.toContainEqual(
        expect.stringContaining(WAKE_INDEX_MIGRATION),
      );
    } finally {
      await wakeup.close();
    }
  });

  it("with the wake index there, an append's lowering is not mirrored into lull.wakeup", async () => {
    const { store } = setup("dbwake-mirror");
    const { mirrored, lowered } = recordingMirror(store, index);
    const appended = await mirrored.append(msg("generic:mirror:0", "m1"));
    expect(appended.wake?.index).toBe("database");
    // A retry's lowering is mirrored: the store does not say where it landed.
    await mirrored.noteWake("generic:mirror:0", appended.flushAtMs! + 1000);
    expect(lowered).toEqual([appended.flushAtMs! + 1000]);
  });
});
