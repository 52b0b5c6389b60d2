/**
 * The concurrency scenario shared by the race test (test/race/race.test.ts) and the chaos run
 * (chaos/run.ts): many appenders over a few conversations, several Flushers sweeping and
 * timer-flushing concurrently against one real Redis, a processor that fails, throws, stalls
 * and supersedes at random. Afterwards it drains and does the books: every accepted message
 * must be in exactly one delivered (or dead) batch, in per-sender order, with fences
 * increasing and never two deliveries of one conversation at once.
 *
 * Chaos hooks: a flusher can "crash" mid-delivery (its store calls hang forever and its
 * in-flight processor calls are cut, as if the process died), and the caller can kill Redis.
 */
import { CircuitBreaker } from "../../src/core/breaker.ts";
import { systemClock } from "../../src/core/clock.ts";
import type { BufferSettings } from "../../src/core/config.ts";
import { type DeliveryReport, Flusher } from "../../src/core/flusher.ts";
import type {
  AppendResult,
  Batch,
  BufferStore,
  DeliveryOutcome,
  InboundMessage,
} from "../../src/core/types.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { RedisStore } from "../../src/store/redis-store.ts";

/**
 * Seeded PRNG (mulberry32). Timing still varies run to run, but the seed pins the mix of
 * processor answers and traffic shape, which is what a failing run's report needs.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How the fake processor misbehaves (probabilities per call). */
export interface ProcessorMix {
  throwRate: number;
  retryRate: number;
  supersedeRate: number;
  /** Stalls past the delivery timeout (the flusher aborts it). */
  stallRate: number;
  /** Slow but within the timeout. */
  slowRate: number;
}

/** Options of {@link runScenario}. */
export interface ScenarioOptions {
  redisUrl: string;
  prefix: string;
  seed: number;
  appenders: number;
  conversations: number;
  messagesPerAppender: number;
  /** Each appender waits up to this long (uniform) before each send. @default 12 */
  appendPauseMs?: number;
  flushers: number;
  settings?: Partial<BufferSettings>;
  deliveryTimeoutMs?: number;
  mix?: Partial<ProcessorMix>;
  /** Per Redis call timeout of every client. @default 1000 */
  redisTimeoutMs?: number;
  /** Retry a failed append like a messaging provider retries a 503. @default false */
  retryFailedAppends?: boolean;
  /** Runs alongside the appenders (chaos: kill Redis, crash flushers). */
  chaos?: (control: ChaosControl) => Promise<void>;
  /** How long draining may take after the appenders stop. @default 15000 */
  drainTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Where in a delivery a flusher dies. */
export type CrashPoint = "call" | "answer";

/** What the chaos hook can do. */
export interface ChaosControl {
  /** True once every appender has finished. */
  appendersDone(): boolean;
  /**
   * Crashes a random live flusher during its next delivery: at `call` the process dies while
   * the processor call is in flight (the call is cut, no answer); at `answer` it dies right
   * after the processor answered, before it could ack or fail. Either way: no ack, no renewal,
   * in-flight calls cut, the lease lapses. A fresh flusher with a new connection takes its
   * place, as a restarted isolate would. Resolves true after the crash, or false if no
   * delivery reached that point within `timeoutMs`.
   */
  crashFlusherMidDelivery(at: CrashPoint, timeoutMs: number): Promise<boolean>;
  /**
   * Stalls a random flusher's store calls for `ms` (longer than the lease): its deliveries in
   * progress outlive their lease, another flusher takes the batch over, and the stalled one
   * must find its lock lost and not ack. Resolves when the stall ends.
   */
  freezeFlusher(ms: number): Promise<void>;
  random(): number;
  sleep(ms: number): Promise<void>;
}

/** The books after draining. */
export interface Accounting {
  seed: number;
  /** Distinct messages answered appended/duplicate (i.e. 2xx) at least once. */
  accepted: number;
  /** Redelivered webhooks answered `duplicate` (as they should be). */
  duplicatesAnswered: number;
  /** Redelivered webhooks that were buffered again (must be 0). */
  duplicatesBuffered: number;
  appendErrors: number;
  processorCalls: number;
  /** Processor answers that were not "delivered" (retry, throw, stall, supersede). */
  failedCalls: number;
  supersedes: number;
  /** Distinct batchIds the processor accepted. */
  batches: number;
  /** Messages in those batches. */
  deliveredMessages: number;
  /** Extra deliveries of an already delivered batchId (at-least-once after a crash). */
  redeliveries: number;
  /** Messages sitting in the DLQ. */
  deadMessages: number;
  /** Accepted but neither delivered nor dead. */
  lost: string[];
  /** Delivered in two *different* batches (or twice in one). */
  duplicated: string[];
  /** Delivered but never accepted (only legitimate after an append that timed out). */
  unexpected: string[];
  orderViolations: string[];
  fenceViolations: string[];
  /** Two deliveries of one conversation overlapping in time. */
  concurrentDeliveries: number;
  crashes: number;
  sweep: {
    reaped: number;
    lockLost: number;
    /** Claims that found another flusher holding the lock (contention actually happened). */
    locked: number;
    notDue: number;
    errors: number;
    skippedBreakerOpen: number;
  };
  /** In-isolate timers started (armTimer). */
  timers: number;
  /** Every delivery's outcome as the flushers reported it (sweeps and timers). */
  outcomes: Record<DeliveryReport["outcome"], number>;
  /** Conversations still holding data at the drain deadline. */
  undrained: string[];
  durationMs: number;
}

interface Delivery {
  batch: Batch;
  atMs: number;
}

const sleep = (ms: number) => systemClock.sleep(ms);

/**
 * A store whose calls hang forever once `crashed` (a dead process talks to nobody), and are
 * held back while `frozenUntilMs` is ahead (a stalled isolate: GC pause, CPU starvation).
 */
class CrashableStore {
  crashed = false;
  frozenUntilMs = 0;
  readonly store: BufferStore;
  constructor(inner: BufferStore) {
    this.store = new Proxy(inner, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        return async (...args: unknown[]) => {
          if (this.crashed) return await new Promise(() => {});
          const frozenMs = this.frozenUntilMs - Date.now();
          if (frozenMs > 0) await sleep(frozenMs);
          return await value.apply(target, args);
        };
      },
    });
  }
}

interface FlusherSlot {
  index: number;
  generation: number;
  flusher: Flusher;
  crashable: CrashableStore;
  close: () => Promise<void>;
  /** Aborted when this flusher "dies": cuts its in-flight processor calls. */
  death: AbortController;
  /** Armed by the chaos hook: die when a delivery reaches `at`. */
  crash: { at: CrashPoint; now: () => void } | null;
  loop: Promise<void>;
}

/** Runs the scenario and returns the books. Cleans up every client it opened. */
export async function runScenario(options: ScenarioOptions): Promise<Accounting> {
  const started = Date.now();
  const random = seededRandom(options.seed);
  const log = options.log ?? (() => {});
  const deliveryTimeoutMs = options.deliveryTimeoutMs ?? 200;
  const settings: BufferSettings = {
    keyPrefix: options.prefix,
    partitions: 4,
    windowMs: 30,
    maxWaitMs: 250,
    maxMessages: 12,
    maxBytes: 65536,
    graceMs: 10,
    timerTtlMs: 2_000,
    processedTtlMs: 60_000,
    lockTtlMs: 600,
    dedupTtlMs: 3_600_000,
    retryMaxAttempts: 1000,
    retryMaxAgeMs: 3_600_000,
    logPii: true,
    ...options.settings,
  };
  const mix: ProcessorMix = {
    throwRate: 0.04,
    retryRate: 0.1,
    supersedeRate: 0.04,
    stallRate: 0.02,
    slowRate: 0.1,
    ...options.mix,
  };
  const redisTimeoutMs = options.redisTimeoutMs ?? 1000;
  const openStore = () => {
    const client = createTcpClient({ url: options.redisUrl, timeoutMs: redisTimeoutMs });
    return new RedisStore({ client, settings });
  };

  // ---- the processor: records everything, checks per-conversation exclusivity ----
  const deliveries: Delivery[] = [];
  const inFlight = new Map<string, number>();
  let concurrentDeliveries = 0;
  let processorCalls = 0;
  let failedCalls = 0;
  let supersedes = 0;

  const acceptedBatches = new Set<string>();
  const processBatch = async (
    batch: Batch,
    signal: AbortSignal,
    slot: FlusherSlot,
  ): Promise<DeliveryOutcome> => {
    processorCalls++;
    const conv = batch.conversation;
    if ((inFlight.get(conv) ?? 0) > 0) concurrentDeliveries++;
    inFlight.set(conv, (inFlight.get(conv) ?? 0) + 1);
    // A dying flusher's calls die with it.
    const cut = AbortSignal.any([signal, slot.death.signal]);
    const crashAt = (at: CrashPoint) => {
      const crash = slot.crash;
      if (crash?.at !== at) return;
      slot.crash = null;
      crash.now();
    };
    const afterAnswer = (outcome: DeliveryOutcome) => {
      // Die right after the processor answered, before the flusher can ack or fail.
      crashAt("answer");
      return outcome;
    };
    // Die while the call is in flight: `cut` aborts, the call below fails without an answer.
    crashAt("call");
    try {
      if (acceptedBatches.has(batch.batchId)) {
        // Like a real processor keyed on Idempotency-Key: a batch it already took is "done"
        // (409), whatever mood it is in. Answering 425 here would have it merged and delivered
        // again under a new batchId; that would be the processor's bug, not the buffer's.
        await systemClock.sleep(random() * 4, cut);
        deliveries.push({ batch: structuredClone(batch), atMs: Date.now() });
        return afterAnswer({ kind: "delivered" });
      }
      const r = random();
      let outcome: DeliveryOutcome;
      if (r < mix.throwRate) {
        await systemClock.sleep(1 + random() * 5, cut);
        throw new Error("ECONNRESET");
      } else if (r < mix.throwRate + mix.retryRate) {
        outcome = {
          kind: "retry",
          error: "HTTP 503",
          retryAfterMs: random() < 0.3 ? 20 : undefined,
        };
      } else if (r < mix.throwRate + mix.retryRate + mix.supersedeRate) {
        outcome = { kind: "supersede" };
      } else if (r < mix.throwRate + mix.retryRate + mix.supersedeRate + mix.stallRate) {
        await systemClock.sleep(deliveryTimeoutMs * 5, cut);
        outcome = { kind: "delivered" };
      } else {
        const slow = r < mix.throwRate + mix.retryRate + mix.supersedeRate + mix.stallRate +
            mix.slowRate;
        await systemClock.sleep(slow ? 20 + random() * 60 : random() * 4, cut);
        outcome = { kind: "delivered" };
      }
      if (outcome.kind === "delivered") {
        acceptedBatches.add(batch.batchId);
        deliveries.push({ batch: structuredClone(batch), atMs: Date.now() });
      } else {
        failedCalls++;
        if (outcome.kind === "supersede") supersedes++;
      }
      return afterAnswer(outcome);
    } catch (error) {
      failedCalls++;
      throw error;
    } finally {
      inFlight.set(conv, (inFlight.get(conv) ?? 1) - 1);
    }
  };

  // ---- flushers ----
  let stopFlushers = false;
  const sweep = {
    reaped: 0,
    lockLost: 0,
    locked: 0,
    notDue: 0,
    errors: 0,
    skippedBreakerOpen: 0,
  };
  const outcomes: Record<DeliveryReport["outcome"], number> = {
    delivered: 0,
    retry: 0,
    dead: 0,
    superseded: 0,
    lock_lost: 0,
    error: 0,
  };
  const slots: FlusherSlot[] = [];
  const abandoned: FlusherSlot[] = [];
  let crashes = 0;

  const startSlot = (index: number, generation: number): FlusherSlot => {
    const redisStore = openStore();
    const crashable = new CrashableStore(redisStore);
    const slot = {
      index,
      generation,
      crashable,
      close: () => redisStore.close(),
      death: new AbortController(),
      crash: null,
    } as unknown as FlusherSlot;
    slot.flusher = new Flusher({
      store: crashable.store,
      processor: (batch, signal) => processBatch(batch, signal, slot),
      config: {
        partitions: settings.partitions,
        retryBaseMs: 10,
        retryMaxMs: 60,
        lockTtlMs: settings.lockTtlMs,
        deliveryTimeoutMs,
        graceMs: settings.graceMs,
        logPii: true,
      },
      processorBreaker: new CircuitBreaker({
        name: `processor-${index}`,
        failureThreshold: 5,
        openMs: 50,
      }),
      random,
      onOutcome: (report) => {
        outcomes[report.outcome]++;
      },
    });
    slot.loop = (async () => {
      while (!stopFlushers && !crashable.crashed) {
        const counts = await slot.flusher.flushDue({ maxBatches: 20, budgetMs: 2000 });
        sweep.reaped += counts.reaped;
        sweep.lockLost += counts.lockLost;
        sweep.locked += counts.locked;
        sweep.notDue += counts.notDue;
        sweep.errors += counts.errors;
        sweep.skippedBreakerOpen += counts.skippedBreakerOpen;
        await sleep(5 + random() * 15);
      }
    })();
    return slot;
  };
  for (let i = 0; i < options.flushers; i++) slots.push(startSlot(i, 0));

  // ---- appenders ----
  const appendStore = openStore();
  const acceptedIds = new Map<string, Set<string>>(); // conversation -> ids answered 2xx
  const timers: Promise<void>[] = [];
  let duplicatesAnswered = 0;
  let duplicatesBuffered = 0;
  let appendErrors = 0;
  let appendersFinished = 0;
  const convName = (c: number) => `race:${c}`;

  const appendOnce = async (message: InboundMessage): Promise<AppendResult | null> => {
    for (let tries = 0;; tries++) {
      try {
        return await appendStore.append(message);
      } catch {
        appendErrors++;
        if (!options.retryFailedAppends || tries > 200) return null;
        await sleep(50 + random() * 100); // the provider retries a 503 later
      }
    }
  };

  const appender = async (a: number) => {
    const sent: { conversation: string; id: string }[] = [];
    for (let n = 0; n < options.messagesPerAppender; n++) {
      await sleep(random() * (options.appendPauseMs ?? 12));
      const redeliver = sent.length > 0 && random() < 0.05;
      const target = redeliver ? sent[Math.floor(random() * sent.length)]! : {
        conversation: convName(Math.floor(random() * options.conversations)),
        id: `a${a}-${n}`,
      };
      const message: InboundMessage = {
        conversation: target.conversation,
        id: target.id,
        provider: "generic",
        text: `${target.id}`,
      };
      const res = await appendOnce(message);
      if (!res) continue;
      if (redeliver) {
        if (res.status === "duplicate") duplicatesAnswered++;
        else duplicatesBuffered++;
        continue;
      }
      sent.push(target);
      let ids = acceptedIds.get(target.conversation);
      if (!ids) acceptedIds.set(target.conversation, ids = new Set());
      ids.add(target.id);
      if (res.armTimer) {
        const slot = slots[Math.floor(random() * slots.length)]!;
        timers.push(slot.flusher.runTimer(target.conversation, res));
      }
    }
    appendersFinished++;
  };

  const control: ChaosControl = {
    appendersDone: () => appendersFinished === options.appenders,
    random,
    sleep,
    freezeFlusher: async (ms) => {
      const slot = slots[Math.floor(random() * slots.length)]!;
      slot.crashable.frozenUntilMs = Date.now() + ms;
      log(`froze flusher ${slot.index}/${slot.generation} for ${ms} ms`);
      await sleep(ms);
    },
    crashFlusherMidDelivery: (at, timeoutMs) =>
      new Promise<boolean>((resolve) => {
        const slot = slots[Math.floor(random() * slots.length)]!;
        const timer = setTimeout(() => {
          if (slot.crash?.now === now) slot.crash = null;
          resolve(false);
        }, timeoutMs);
        const now = () => {
          clearTimeout(timer);
          slot.crashable.crashed = true;
          slot.death.abort(new Error("flusher crashed"));
          crashes++;
          abandoned.push(slot);
          slots[slot.index] = startSlot(slot.index, slot.generation + 1);
          log(`crashed flusher ${slot.index}/${slot.generation} mid-delivery (at ${at})`);
          resolve(true);
        };
        slot.crash = { at, now };
      }),
  };

  const chaos = options.chaos ? options.chaos(control) : Promise.resolve();
  await Promise.all(Array.from({ length: options.appenders }, (_, a) => appender(a)));
  await chaos;
  for (const slot of slots) slot.crash = null;
  log(`appenders done after ${Date.now() - started} ms; draining`);

  // ---- drain ----
  const conversations = Array.from({ length: options.conversations }, (_, c) => convName(c));
  const drainDeadline = Date.now() + (options.drainTimeoutMs ?? 15_000);
  let undrained: string[] = conversations;
  while (Date.now() < drainDeadline) {
    const states = await Promise.all(
      undrained.map((c) => appendStore.inspect(c).catch(() => null)),
    );
    undrained = undrained.filter((_, i) => {
      const s = states[i];
      return s === null || s === undefined || s.buffer !== null || s.batch !== null;
    });
    if (undrained.length === 0) break;
    await sleep(50);
  }
  stopFlushers = true;
  await Promise.all(slots.map((s) => s.loop));
  // Timers of crashed flushers hang with them; the others finish promptly once drained.
  const giveUp = new AbortController();
  await Promise.race([
    Promise.allSettled(timers),
    systemClock.sleep(3000, giveUp.signal).catch(() => {}),
  ]);
  giveUp.abort();
  const dead = await appendStore.dlqList({ limit: 10_000 });
  for (const slot of [...slots, ...abandoned]) await slot.close().catch(() => {});
  await appendStore.close();

  // ---- the books ----
  const byBatch = new Map<string, Delivery>();
  let redeliveries = 0;
  for (const d of deliveries) {
    if (byBatch.has(d.batch.batchId)) redeliveries++;
    else byBatch.set(d.batch.batchId, d);
  }
  const seenIn = new Map<string, Set<string>>(); // conv|id -> batchIds
  let deliveredMessages = 0;
  const duplicated = new Set<string>();
  for (const { batch } of byBatch.values()) {
    const inThisBatch = new Set<string>();
    for (const m of batch.messages) {
      deliveredMessages++;
      const key = `${batch.conversation}|${m.id}`;
      if (inThisBatch.has(key)) duplicated.add(key);
      inThisBatch.add(key);
      const set = seenIn.get(key) ?? new Set<string>();
      set.add(batch.batchId);
      seenIn.set(key, set);
      if (set.size > 1) duplicated.add(key);
    }
  }
  const deadKeys = new Set<string>();
  for (const d of dead) {
    for (const m of d.messages) {
      const key = `${d.conversation}|${m.id}`;
      if (seenIn.has(key) || deadKeys.has(key)) duplicated.add(key);
      deadKeys.add(key);
    }
  }
  const lost: string[] = [];
  let accepted = 0;
  for (const [conv, ids] of acceptedIds) {
    for (const id of ids) {
      accepted++;
      const key = `${conv}|${id}`;
      if (!seenIn.has(key) && !deadKeys.has(key)) lost.push(key);
    }
  }
  const unexpected = [...seenIn.keys(), ...deadKeys].filter((key) => {
    const [conv, id] = key.split("|") as [string, string];
    return !acceptedIds.get(conv)?.has(id);
  });

  // Order and fences, per conversation: batches in first-delivery order must carry strictly
  // increasing fences, and each sender's messages must come out in the order it sent them.
  const orderViolations: string[] = [];
  const fenceViolations: string[] = [];
  const perConv = new Map<string, Delivery[]>();
  for (const d of byBatch.values()) {
    const list = perConv.get(d.batch.conversation) ?? [];
    list.push(d);
    perConv.set(d.batch.conversation, list);
  }
  for (const [conv, list] of perConv) {
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.batch.fence <= list[i - 1]!.batch.fence) {
        fenceViolations.push(
          `${conv}: fence ${list[i]!.batch.fence} after ${list[i - 1]!.batch.fence}`,
        );
      }
    }
    const lastSeq = new Map<string, number>();
    const ordered = [...list].sort((x, y) => x.batch.fence - y.batch.fence);
    for (const { batch } of ordered) {
      for (const m of batch.messages) {
        const [sender, seqText] = m.id.split("-") as [string, string];
        const seq = Number(seqText);
        const prev = lastSeq.get(sender) ?? -1;
        if (seq <= prev) orderViolations.push(`${conv}: ${m.id} after ${sender}-${prev}`);
        lastSeq.set(sender, Math.max(prev, seq));
      }
    }
  }

  return {
    seed: options.seed,
    accepted,
    duplicatesAnswered,
    duplicatesBuffered,
    appendErrors,
    processorCalls,
    failedCalls,
    supersedes,
    batches: byBatch.size,
    deliveredMessages,
    redeliveries,
    deadMessages: deadKeys.size,
    lost,
    duplicated: [...duplicated],
    unexpected,
    orderViolations,
    fenceViolations,
    concurrentDeliveries,
    crashes,
    sweep,
    timers: timers.length,
    outcomes,
    undrained,
    durationMs: Date.now() - started,
  };
}

/** One line per number, for logs and the chaos report. */
export function formatAccounting(a: Accounting): string {
  return [
    `seed                 ${a.seed}`,
    `accepted messages    ${a.accepted}  (append errors ${a.appendErrors})`,
    `redelivered webhooks ${a.duplicatesAnswered} answered duplicate, ${a.duplicatesBuffered} buffered again`,
    `processor calls      ${a.processorCalls}  (failed/retried ${a.failedCalls}, supersede ${a.supersedes})`,
    `batches delivered    ${a.batches}  (${a.deliveredMessages} messages)`,
    `same-batch redeliver ${a.redeliveries}`,
    `dead-lettered msgs   ${a.deadMessages}`,
    `flusher crashes      ${a.crashes}`,
    `sweeps               reaped ${a.sweep.reaped}, lock lost ${a.sweep.lockLost}, ` +
    `locked ${a.sweep.locked}, not due ${a.sweep.notDue}, store errors ${a.sweep.errors}, ` +
    `breaker skips ${a.sweep.skippedBreakerOpen}`,
    `timers armed         ${a.timers}`,
    `delivery outcomes    ${Object.entries(a.outcomes).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `LOST                 ${a.lost.length}`,
    `DUPLICATED           ${a.duplicated.length}`,
    `unexpected           ${a.unexpected.length}`,
    `order violations     ${a.orderViolations.length}`,
    `fence violations     ${a.fenceViolations.length}`,
    `concurrent delivery  ${a.concurrentDeliveries}`,
    `undrained convs      ${a.undrained.length}`,
    `duration             ${a.durationMs} ms`,
  ].join("\n");
}
