/**
 * In-process parts of `npm run bench`, all on one private redis-server: append throughput of
 * lull against its contenders (interleaved, repeated), commands billed per message / duplicate /
 * burst life, memory per buffered message, sweep cost by open buffers, flush lateness.
 * Everything goes through lull's public store and flusher APIs, so it measures whatever the
 * scripts are at run time.
 */
import { Queue } from "bullmq";
import IORedis from "ioredis";
import { type Config, parseConfig } from "../src/core/config.ts";
import { Flusher } from "../src/core/flusher.ts";
import { partitionOf } from "../src/core/keys.ts";
import type { DatabaseWakeIndex } from "../src/core/ports.ts";
import type { AppendResult, Batch } from "../src/core/types.ts";
import { createTcpClient } from "../src/redis/tcp-client.ts";
import { scripts } from "../src/scripts/generated.ts";
import { bufferSettings } from "../src/store/create-store.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import {
  benchMessage,
  capturingClient,
  compatibleEnv,
  countCommands,
  quantile,
  type ScriptCall,
  type SendCommand,
  shuffle,
  sleep,
  type Spread,
  spread,
  throughput,
  usedMemory,
} from "./lib.ts";
import { naiveFlush, naiveIngest } from "./naive.ts";

/** Contenders of the append race. */
export const CONTENDERS = ["lull", "raw", "bullmqDedup", "bullmqList", "naive"] as const;
export type Contender = (typeof CONTENDERS)[number];

/** Throughput race result: ops/s per contender and concurrency, per repetition. */
export interface RaceResult {
  opsPerRun: number;
  /** concurrency -> contender -> ops/s per repetition */
  opsPerSecond: Record<string, Record<Contender, number[]>>;
  /** concurrency -> "lull/<contender>" -> ratio spread over repetitions (paired by rep) */
  ratios: Record<string, Record<string, Spread>>;
}

let idCounter = 0;
const uid = () => `m${Date.now().toString(36)}${(idCounter++).toString(36)}`;

function settingsFor(keyPrefix: string, config: Config = parseConfig({})) {
  // Never full: the steady "append to an open buffer" path is what is raced.
  return { ...bufferSettings(config), keyPrefix, maxMessages: 1_000_000, maxBytes: 1 << 30 };
}

/** Races the contenders at each concurrency, `reps` times, order shuffled per round. */
export async function raceAppends(
  redisUrl: string,
  options: { reps: number; ops: number; concurrencies: number[] },
): Promise<RaceResult> {
  const tcp = createTcpClient({ url: redisUrl, timeoutMs: 10_000 });
  const prefix = `race${Date.now().toString(36)}`;
  const store = new RedisStore({ client: tcp, settings: settingsFor(prefix) });
  const capture = capturingClient(scripts.appendMessage, tcp);
  const capturer = new RedisStore({ client: capture.client, settings: settingsFor(`${prefix}r`) });
  const url = new URL(redisUrl);
  const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
  const dedupQueue = new Queue("lull-bench-dedup", { connection, prefix: `${prefix}bq` });
  const listQueue = new Queue("lull-bench-list", { connection, prefix: `${prefix}bl` });
  const listRedis = new IORedis(redisUrl);
  const send: SendCommand = (name, ...args) => tcp.command(name, ...args);
  const windowMs = 8000;
  const conv = (i: number) => `whatsapp:1555000:${i % 200}`;
  const payload = (c: string, id: string) => JSON.stringify(benchMessage(c, id));
  const debounce = (c: string) => ({
    deduplication: { id: c, ttl: windowMs, extend: true, replace: true },
    delay: windowMs,
    removeOnComplete: true,
  });

  /** Prepared per run: the raw contender's exact EVALSHAs, captured from store.append. */
  const prepareRaw = async (n: number): Promise<ScriptCall[]> => {
    const calls: ScriptCall[] = [];
    for (let i = 0; i < n; i++) {
      await capturer.append(benchMessage(conv(i), uid())).catch(() => undefined);
      calls.push(capture.take());
    }
    return calls;
  };

  const runOne = async (who: Contender, c: number, n: number): Promise<number> => {
    switch (who) {
      case "lull":
        return await throughput(n, c, (i) => store.append(benchMessage(conv(i), uid())));
      case "raw": {
        const calls = await prepareRaw(n);
        return await throughput(n, c, (i) => {
          const call = calls[i]!;
          return tcp.evalsha(call.sha1, call.keys, call.args);
        });
      }
      case "bullmqDedup":
        return await throughput(n, c, (i) => {
          const id = uid();
          return dedupQueue.add("message", payload(conv(i), id), debounce(conv(i)));
        });
      case "bullmqList":
        return await throughput(n, c, async (i) => {
          const id = uid();
          await listRedis.rpush(`${prefix}bl:burst:${conv(i)}`, payload(conv(i), id));
          await listQueue.add("burst", conv(i), debounce(conv(i)));
        });
      case "naive":
        return await throughput(n, c, (i) => {
          const id = uid();
          return naiveIngest(send, `${prefix}nv`, conv(i), id, payload(conv(i), id));
        });
    }
  };

  try {
    // Warm-up: load scripts, JIT, connections.
    for (const who of CONTENDERS) await runOne(who, 8, 200);
    const opsPerSecond: RaceResult["opsPerSecond"] = {};
    for (const c of options.concurrencies) {
      opsPerSecond[`c${c}`] = Object.fromEntries(
        CONTENDERS.map((w) => [w, []]),
      ) as unknown as Record<
        Contender,
        number[]
      >;
    }
    for (let rep = 0; rep < options.reps; rep++) {
      for (const c of options.concurrencies) {
        for (const who of shuffle([...CONTENDERS])) {
          opsPerSecond[`c${c}`]![who].push(await runOne(who, c, options.ops));
        }
      }
    }
    const ratios: RaceResult["ratios"] = {};
    for (const [c, byWho] of Object.entries(opsPerSecond)) {
      ratios[c] = {};
      for (const who of CONTENDERS) {
        if (who === "lull") continue;
        ratios[c]![`lull/${who}`] = spread(byWho.lull.map((v, i) => v / byWho[who][i]!));
      }
    }
    return { opsPerRun: options.ops, opsPerSecond, ratios };
  } finally {
    await dedupQueue.close();
    await listQueue.close();
    listRedis.disconnect();
    await store.close();
  }
}

/** Commands billed (Upstash counting) per case, spread over repetitions. */
export interface CommandCosts {
  perNewMessage: Spread;
  perDuplicate: Spread;
  /** A 5-message burst from first append to ack (timer-triggered claim, delivery, ack) / 5. */
  perMessageBurstLife: Spread;
  /**
   * The same with the partitions' wake-ups in Postgres (lull.wake_index: a deployment with a
   * database), measured in the same repetitions; and the Postgres statements that burst ran.
   * Absent where the code measured has no database wake index (the baseline).
   */
  perMessageBurstLifeDatabaseWakes?: Spread;
  postgresStatementsPerBurst?: Spread;
  /** The durable trigger's sweep after a burst its timer delivered (the wake-up still passed). */
  sweepAfterBurst: Spread;
  /** Same for the contenders' ingest of one message (one rep each, steady state). */
  contenders: Record<string, number>;
  naiveBurstLifePerMessage: number;
  breakdownNewMessage: Record<string, number>;
}

function fastConfig(partitions?: number): Config {
  return parseConfig({
    LULL_WINDOW_MS: "300",
    LULL_GRACE_MS: "100",
    LULL_MAX_WAIT_MS: "5000",
    ...(partitions === undefined ? {} : { LULL_PARTITIONS: String(partitions) }),
  });
}

/** The database wake index of the code measured, counting its statements; null if it has none. */
async function countingWakeIndex(databaseUrl: string | undefined) {
  if (databaseUrl === undefined) return null;
  // Imported when asked for: the baseline's tree may have no src/wakeup/ at all.
  let module: { createPostgresWakeup(o: { url: string }): { close(): Promise<void> } };
  try {
    module = await import("../src/wakeup/postgres-wakeup.ts");
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error;
    return null;
  }
  const wakeup = module.createPostgresWakeup({ url: databaseUrl }) as
    & { close(): Promise<void> }
    & Partial<DatabaseWakeIndex>;
  if (typeof wakeup.lowerPartition !== "function") {
    await wakeup.close();
    return null;
  }
  const index = wakeup as unknown as DatabaseWakeIndex;
  let statements = 0;
  const counted: DatabaseWakeIndex = {
    lowerPartition: (...args) => (statements++, index.lowerPartition(...args)),
    partitionEpoch: (...args) => (statements++, index.partitionEpoch(...args)),
    duePartitions: (...args) => (statements++, index.duePartitions(...args)),
    settlePartition: (...args) => (statements++, index.settlePartition(...args)),
  };
  return { index: counted, statements: () => statements, close: () => wakeup.close() };
}

/** Steady state: every partition has delivered a batch today (see {@link commandCosts}). */
async function warmPartitions(store: RedisStore, flusher: Flusher, config: Config) {
  const warmed = new Set<number>();
  for (let i = 0; warmed.size < config.partitions; i++) {
    const conversation = `generic:warm:${i}`;
    const partition = partitionOf(conversation, config.partitions);
    if (warmed.has(partition)) continue;
    warmed.add(partition);
    const first = await store.append(benchMessage(conversation, uid()));
    await flusher.runTimer(conversation, first);
  }
}

/** Burst life: 5 messages, the timer the first append armed, claim, delivery, ack; per message. */
async function burstLife(
  send: SendCommand,
  store: RedisStore,
  flusher: Flusher,
  rep: number,
): Promise<number> {
  const life = await countCommands(send, async () => {
    const conversation = `generic:life:${rep}:${uid()}`;
    let first: AppendResult | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await store.append(benchMessage(conversation, uid()));
      first ??= r;
    }
    if (!first!.armTimer) throw new Error("the first append of a burst did not arm a timer");
    await flusher.runTimer(conversation, first!);
  });
  return life.total / 5;
}

/**
 * Per message, per duplicate, per burst life; `reps` repetitions of 100 appends each. With
 * `databaseUrl` (a PostgreSQL with lull's migrations) also the burst life with the wake index
 * there, interleaved with the Redis-only one.
 */
export async function commandCosts(
  redisUrl: string,
  reps: number,
  databaseUrl?: string,
): Promise<CommandCosts> {
  const tcp = createTcpClient({ url: redisUrl, timeoutMs: 10_000 });
  const send: SendCommand = (name, ...args) => tcp.command(name, ...args);
  const prefix = `cost${Date.now().toString(36)}`;
  const config = fastConfig();
  const store = new RedisStore({
    client: tcp,
    settings: { ...bufferSettings(config), keyPrefix: prefix },
  });
  const flusher = new Flusher({ store, processor: async () => ({ kind: "delivered" }), config });
  const database = await countingWakeIndex(databaseUrl);
  const dbStore = database &&
    new RedisStore({
      client: tcp,
      settings: { ...bufferSettings(config), keyPrefix: `${prefix}db` },
      wakeIndex: database.index,
    });
  const dbFlusher = dbStore &&
    new Flusher({ store: dbStore, processor: async () => ({ kind: "delivered" }), config });
  const perNew: number[] = [];
  const perDup: number[] = [];
  const perLife: number[] = [];
  const perLifeDb: number[] = [];
  const statementsDb: number[] = [];
  const perSweepAfter: number[] = [];
  let breakdown: Record<string, number> = {};
  try {
    // Steady state: every partition has delivered a batch today, so the day's first `ingested`
    // of a partition (which folds the week-old day buckets, once a day) is not charged to a burst.
    await warmPartitions(store, flusher, config);
    if (dbStore && dbFlusher) await warmPartitions(dbStore, dbFlusher, config);
    // ... and the sweep their wake-ups asked for has run, so each measured sweep is one burst's.
    await new Promise((r) => setTimeout(r, config.windowMs + config.graceMs + 50));
    await flusher.flushDue();
    for (let rep = 0; rep < reps; rep++) {
      // Open buffers first, so the measured appends are "a new message into an open buffer".
      const convs = Array.from({ length: 20 }, (_, i) => `generic:cost:${rep}:${i}`);
      const longStore = new RedisStore({
        client: tcp,
        settings: settingsFor(`${prefix}o`),
      });
      for (const c of convs) await longStore.append(benchMessage(c, uid()));
      const ids = Array.from({ length: 100 }, () => uid());
      const fresh = await countCommands(send, async () => {
        for (let i = 0; i < ids.length; i++) {
          await longStore.append(benchMessage(convs[i % convs.length]!, ids[i]!));
        }
      });
      perNew.push(fresh.total / ids.length);
      breakdown = Object.fromEntries(
        Object.entries(fresh.byCommand).map(([k, v]) => [k, v / ids.length]),
      );
      const dup = await countCommands(send, async () => {
        for (let i = 0; i < ids.length; i++) {
          await longStore.append(benchMessage(convs[i % convs.length]!, ids[i]!));
        }
      });
      perDup.push(dup.total / ids.length);

      perLife.push(await burstLife(send, store, flusher, rep));
      if (database && dbStore && dbFlusher) {
        const before = database.statements();
        perLifeDb.push(await burstLife(send, dbStore, dbFlusher, rep));
        statementsDb.push(database.statements() - before);
      }
      // The sweep the durable trigger runs once the burst's wake-up has passed, with nothing
      // left to do: the timer already delivered the burst.
      await new Promise((r) => setTimeout(r, config.windowMs + config.graceMs + 50));
      const sweep = await countCommands(send, () => flusher.flushDue());
      perSweepAfter.push(sweep.total);
    }
    // Contenders' ingest cost, one message, steady state.
    const naivePrefix = `${prefix}nv`;
    const naiveOne = await countCommands(send, async () => {
      for (let i = 0; i < 50; i++) {
        const id = uid();
        await naiveIngest(send, naivePrefix, `c${i % 5}`, id, "x");
      }
    });
    const naiveLife = await countCommands(send, async () => {
      const ids = Array.from({ length: 5 }, () => uid());
      for (const id of ids) await naiveIngest(send, naivePrefix, "life", id, "x");
      for (const id of ids) await naiveFlush(send, naivePrefix, "life", id);
    });
    return {
      perNewMessage: spread(perNew),
      perDuplicate: spread(perDup),
      perMessageBurstLife: spread(perLife),
      ...(perLifeDb.length > 0
        ? {
          perMessageBurstLifeDatabaseWakes: spread(perLifeDb),
          postgresStatementsPerBurst: spread(statementsDb),
        }
        : {}),
      sweepAfterBurst: spread(perSweepAfter),
      contenders: { naive: naiveOne.total / 50 },
      naiveBurstLifePerMessage: naiveLife.total / 5,
      breakdownNewMessage: breakdown,
    };
  } finally {
    await store.close();
    await database?.close();
  }
}

/** Bytes of Redis per buffered message. */
export interface MemoryCost {
  payloadBytes: number;
  bytesPerMessage: Spread;
  /** Per message of 2-message buffers (per-buffer overhead counts twice as much). */
  bytesPerMessageTwoMessageBuffers: Spread;
  /**
   * The same two figures without the dedup records: what the buffer itself (list entry, meta,
   * due index entry) holds per message. The records outlive the buffer (LULL_DEDUP_TTL_MS).
   */
  bufferBytesPerMessage?: Spread;
  bufferBytesPerMessageTwoMessageBuffers?: Spread;
  /** Dedup record per message id, its conversation's share of the ZSET key included. */
  dedupBytesPerId?: Spread;
  dedupBytesPerIdTwoMessageBuffers?: Spread;
  /** Length of the message ids measured (WhatsApp-like `wamid.` ids). */
  idLength?: number;
}

/**
 * used_memory delta / messages over `messages` appends into 5- and 2-message buffers; then the
 * dedup records are unlinked, and the drop is their share.
 */
export async function memoryCost(
  redisUrl: string,
  reps: number,
  messages: number,
): Promise<MemoryCost> {
  const tcp = createTcpClient({ url: redisUrl, timeoutMs: 10_000 });
  const send: SendCommand = (name, ...args) => tcp.command(name, ...args);
  const total = { 5: [] as number[], 2: [] as number[] };
  const buffer = { 5: [] as number[], 2: [] as number[] };
  const dedup = { 5: [] as number[], 2: [] as number[] };
  // Message ids as long as WhatsApp's (`wamid.` + base64 of the chat and message), so the dedup
  // record is measured at its real size.
  const wamid = () => `wamid.HBgLOTY2NTAwMDAwMDAwFQIAERgS${uid().padStart(24, "0")}`;
  const payloadBytes = JSON.stringify(benchMessage("generic:mem:0000", wamid())).length;
  const idLength = wamid().length;
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const size of [5, 2] as const) {
        const prefix = `mem${rep}s${size}${Date.now().toString(36)}`;
        const store = new RedisStore({ client: tcp, settings: settingsFor(prefix) });
        // The partition keys (events stream, stats) exist before the measurement.
        await store.append(benchMessage("generic:mem:warm", wamid()));
        const conversation = (i: number) => `generic:mem:${i}`;
        const before = await usedMemory(send);
        await throughput(
          messages,
          16,
          (i) => store.append(benchMessage(conversation(Math.floor(i / size)), wamid())),
        );
        const filled = await usedMemory(send);
        const conversations = Math.ceil(messages / size);
        for (let c = 0; c < conversations; c += 500) {
          const keys = [];
          for (let j = c; j < Math.min(conversations, c + 500); j++) {
            keys.push(store.keys.conversation(conversation(j)).seen);
          }
          await send("UNLINK", ...keys);
        }
        const withoutDedup = await usedMemory(send);
        total[size].push((filled - before) / messages);
        buffer[size].push((withoutDedup - before) / messages);
        dedup[size].push((filled - withoutDedup) / messages);
      }
    }
    return {
      payloadBytes,
      bytesPerMessage: spread(total[5]),
      bytesPerMessageTwoMessageBuffers: spread(total[2]),
      bufferBytesPerMessage: spread(buffer[5]),
      bufferBytesPerMessageTwoMessageBuffers: spread(buffer[2]),
      dedupBytesPerId: spread(dedup[5]),
      dedupBytesPerIdTwoMessageBuffers: spread(dedup[2]),
      idLength,
    };
  } finally {
    await tcp.close();
  }
}

/** Cost of one sweep with nothing due, by number of open (not yet due) buffers. */
export interface SweepCost {
  openBuffers: number;
  commands: Spread;
  ms: Spread;
}

/** Seeds `sizes` open buffers (cumulative) and times `reps` sweeps at each size. */
export async function sweepCost(
  redisUrl: string,
  sizes: number[],
  reps: number,
): Promise<SweepCost[]> {
  const tcp = createTcpClient({ url: redisUrl, timeoutMs: 30_000 });
  const send: SendCommand = (name, ...args) => tcp.command(name, ...args);
  const prefix = `sweep${Date.now().toString(36)}`;
  // A window far longer than the seeding, so no seeded buffer falls due: the sweep finds
  // nothing to claim, which is the cost being measured.
  const config = parseConfig(compatibleEnv({
    LULL_WINDOW_MS: "3600000",
    LULL_MAX_WAIT_MS: "7200000",
    LULL_TIMER_TTL_MS: "7200000",
  }));
  const store = new RedisStore({ client: tcp, settings: settingsFor(prefix, config) });
  const flusher = new Flusher({ store, processor: async () => ({ kind: "delivered" }), config });
  const out: SweepCost[] = [];
  let seeded = 0;
  try {
    for (const size of [...sizes].sort((a, b) => a - b)) {
      await throughput(
        size - seeded,
        64,
        (i) => store.append(benchMessage(`generic:sweep:${seeded + i}`, uid())),
      );
      seeded = size;
      const commands: number[] = [];
      const ms: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        const c = await countCommands(send, () => flusher.flushDue());
        ms.push(performance.now() - t);
        commands.push(c.total);
      }
      out.push({ openBuffers: size, commands: spread(commands), ms: spread(ms) });
    }
    return out;
  } finally {
    await store.close();
  }
}

/** How late batches reach the processor after their due time. */
export interface Lateness {
  trigger: "timer" | "sweep";
  /** Batches received, over all runs. */
  batches: number;
  /** Medians over the runs of each run's p50, p99 and max. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Each run's p50, p99 and max as a spread over the runs (absent in results before it). */
  runs?: { p50Ms: Spread; p99Ms: Spread; maxMs: Spread };
  sweepIntervalMs?: number;
}

/** One lateness run: its batches' lateness, ms. */
async function latenessRun(
  redisUrl: string,
  trigger: "timer" | "sweep",
  conversations: number,
): Promise<number[]> {
  const tcp = createTcpClient({ url: redisUrl, timeoutMs: 10_000 });
  const prefix = `late${trigger}${Date.now().toString(36)}`;
  const config = fastConfig();
  const store = new RedisStore({
    client: tcp,
    settings: { ...bufferSettings(config), keyPrefix: prefix },
  });
  const dueAfterMs = config.windowMs + config.graceMs;
  const late: number[] = [];
  const processor = async (batch: Batch) => {
    late.push(Date.now() - (Date.parse(batch.lastAt) + dueAfterMs));
    return { kind: "delivered" as const };
  };
  const flusher = new Flusher({ store, processor, config, concurrency: 16 });
  const timers: Promise<void>[] = [];
  let sweeping = true;
  const sweeps = trigger === "sweep"
    ? (async () => {
      while (sweeping) {
        await flusher.flushDue();
        if (sweeping) await sleep(config.sweepIntervalMs);
      }
    })()
    : Promise.resolve();
  try {
    for (let i = 0; i < conversations; i++) {
      const conversation = `generic:late:${i}`;
      const r = await store.append(benchMessage(conversation, uid()));
      if (trigger === "timer" && r.armTimer) timers.push(flusher.runTimer(conversation, r));
      await sleep(1000 / conversations);
    }
    const deadline = Date.now() + dueAfterMs + config.sweepIntervalMs * 2 + 5000;
    while (late.length < conversations && Date.now() < deadline) await sleep(50);
    await Promise.all(timers);
  } finally {
    sweeping = false;
    await sweeps;
    await store.close();
  }
  return late;
}

/**
 * `reps` runs of `conversations` one-message bursts appended over ~1 s; lateness = arrival at the
 * processor - (lastAt + window + grace). Timer: the in-isolate timer the append armed. Sweep: no
 * timers, `flushDue` every LULL_SWEEP_INTERVAL_MS (its default), as Cron would call it. A run's
 * p99 over 40 batches is its slowest batch, so one stall moves it: hence the spread over runs.
 */
export async function flushLateness(
  redisUrl: string,
  trigger: "timer" | "sweep",
  conversations: number,
  reps: number,
): Promise<Lateness> {
  const p50: number[] = [];
  const p99: number[] = [];
  const max: number[] = [];
  let batches = 0;
  for (let rep = 0; rep < reps; rep++) {
    const late = await latenessRun(redisUrl, trigger, conversations);
    batches += late.length;
    p50.push(quantile(late, 0.5));
    p99.push(quantile(late, 0.99));
    max.push(quantile(late, 1));
  }
  const runs = { p50Ms: spread(p50), p99Ms: spread(p99), maxMs: spread(max) };
  return {
    trigger,
    batches,
    p50Ms: runs.p50Ms.median,
    p99Ms: runs.p99Ms.median,
    maxMs: runs.maxMs.median,
    runs,
    ...(trigger === "sweep" ? { sweepIntervalMs: fastConfig().sweepIntervalMs } : {}),
  };
}
