/**
 * The flusher: claims due batches from a {@link BufferStore} and hands them to the
 * {@link Processor}, one batch per conversation at a time, under the conversation's flush lock.
 *
 * Two triggers drive the same claim-and-deliver step (DESIGN.md "Flush rules"):
 * - {@link Flusher.flushDue}: the durable sweep (`POST /lull/flush`, Supabase Cron). It also
 *   reaps leases of crashed flushers and picks up retries whose backoff has elapsed.
 * - {@link Flusher.runTimer}: the opportunistic in-isolate timer, kept alive by `waitUntil`.
 *
 * Every wait is computed from store time (the claim/append results), never from the isolate's
 * wall clock: the local clock only measures relative sleeps. The store's claim re-checks the
 * due time atomically, so a trigger that fires early costs one `not_due` round trip, no more.
 */
import type { BreakerPermit, CircuitBreaker } from "./breaker.ts";
import { type Clock, type Random, systemClock } from "./clock.ts";
import { CircuitOpenError } from "./errors.ts";
import type {
  AppendResult,
  BufferStore,
  Claim,
  ClaimResult,
  PartitionWake,
  Processor,
} from "./types.ts";
import type { Logger, TriggerWakeup } from "./ports.ts";
import {
  type DeliveryReport,
  describe,
  type FlusherConfig,
  type FlushOutcome,
} from "./flush-outcome.ts";
import { deliverUnderLease, type LeaseDeliveryDeps } from "./lease-delivery.ts";
import { ConcurrencyLimiter } from "./limiter.ts";

export {
  type DeliveryReport,
  DeliveryTimeoutError,
  type FlusherConfig,
  type FlushOutcome,
} from "./flush-outcome.ts";
import { maskConversation } from "./mask.ts";

/** Options of {@link Flusher}. */
export interface FlusherOptions {
  store: BufferStore;
  processor: Processor;
  config: FlusherConfig;
  /** Measures relative waits (sleeps, timeouts, lease renewal). @default systemClock */
  clock?: Clock;
  /** Jitter source for backoff. @default Math.random */
  random?: Random;
  logger?: Logger;
  /** While open, the flusher claims nothing, so a down processor burns no attempts. */
  processorBreaker?: CircuitBreaker;
  /** Called after every delivery (metrics, alerts). Must not throw; errors are swallowed. */
  onOutcome?: (report: DeliveryReport) => void;
  /** Deliveries of different conversations run at most this many at once. @default 4 */
  concurrency?: number;
  /**
   * Flushes fired by in-isolate timers ({@link Flusher.runTimer}) run at most this many at once
   * in this isolate; the others wait their turn (in due order), so a thousand bursts falling
   * due together do not crowd out the webhooks arriving meanwhile. @default 4
   */
  timerConcurrency?: number;
  /** Longest a {@link Flusher.runTimer} keeps following one burst. @default 120000 */
  timerMaxMs?: number;
  /**
   * The durable trigger's wake-up, settled by a timer that delivered the burst whose append
   * lowered it (see {@link Flusher.runTimer}). Without it only the store's wake index is settled.
   */
  trigger?: TriggerWakeup;
}

/** Counts returned by {@link Flusher.flushDue} (the `POST /lull/flush` answer). */
export interface SweepCounts {
  /** Leases of crashed flushers made claimable again. */
  reaped: number;
  /** Batches claimed (each became one delivery). */
  claimed: number;
  delivered: number;
  /** Deliveries that failed and were scheduled for a retry. */
  retried: number;
  /** Batches moved to the DLQ. */
  dead: number;
  superseded: number;
  /** Deliveries whose lock was lost mid-flight (another flusher owns the batch now). */
  lockLost: number;
  /** Conversations another flusher held the lock of. */
  locked: number;
  /** Conversations listed as due whose claim found them not due (grace re-check). */
  notDue: number;
  /** Conversations not claimed because the processor breaker was open. */
  skippedBreakerOpen: number;
  /** Store calls that failed (the conversation stays due; the next sweep retries it). */
  errors: number;
  /** Partitions whose wake-up had passed, the only ones this sweep looked at. */
  partitions: number;
  /**
   * The earliest wake-up left after the sweep (store ms): when the durable trigger must call
   * the sweep next. null: nothing is buffered, pending or leased anywhere (idle).
   */
  nextWakeAtMs: number | null;
}

const NO_PERMIT: BreakerPermit = { success() {}, failure() {}, release() {} };

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Claims and delivers batches. One instance per isolate is enough; it holds no batch state. */
export class Flusher {
  readonly #store: BufferStore;
  readonly #processor: Processor;
  readonly #config: FlusherConfig;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #logger: Logger;
  readonly #breaker?: CircuitBreaker;
  readonly #onOutcome?: (report: DeliveryReport) => void;
  readonly #concurrency: number;
  readonly #timerSlots: ConcurrencyLimiter;
  readonly #timerMaxMs: number;
  readonly #trigger?: TriggerWakeup;
  /** This flusher's parts as the lease-held delivery takes them. */
  readonly #leaseDeps: LeaseDeliveryDeps;
  /** Rotates the partition a sweep starts from, so a busy partition cannot starve the rest. */
  #sweepRound = 0;

  constructor(options: FlusherOptions) {
    this.#store = options.store;
    this.#processor = options.processor;
    this.#config = options.config;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger ?? silent;
    this.#breaker = options.processorBreaker;
    this.#onOutcome = options.onOutcome;
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#timerSlots = new ConcurrencyLimiter({
      limit: options.timerConcurrency ?? 4,
      // A zero sleep hands each freed slot on through a macrotask: ingest reads first.
      yieldToIo: () => this.#clock.sleep(0),
    });
    this.#timerMaxMs = Math.max(0, options.timerMaxMs ?? 120_000);
    this.#trigger = options.trigger;
    this.#leaseDeps = {
      store: this.#store,
      processor: this.#processor,
      clock: this.#clock,
      random: this.#random,
      config: this.#config,
      logger: this.#logger,
      onOutcome: this.#onOutcome,
      label: (conversation) => this.#label(conversation),
      wake: (conversation, atMs) => this.#wake(conversation, atMs),
    };
  }

  /**
   * The durable sweep: reap expired leases, then claim and deliver due conversations across all
   * partitions. Bounded per call: at most `maxBatches` claims, and no new claim after `budgetMs`
   * (deliveries already started finish). Never throws for store errors: they are counted, and
   * the conversations stay due for the next sweep.
   */
  async flushDue(options: { maxBatches?: number; budgetMs?: number } = {}): Promise<SweepCounts> {
    const maxBatches = Math.max(0, options.maxBatches ?? 50);
    const budgetMs = Math.max(0, options.budgetMs ?? 20_000);
    const startedMs = this.#clock.now();
    const counts: SweepCounts = {
      reaped: 0,
      claimed: 0,
      delivered: 0,
      retried: 0,
      dead: 0,
      superseded: 0,
      lockLost: 0,
      locked: 0,
      notDue: 0,
      skippedBreakerOpen: 0,
      errors: 0,
      partitions: 0,
      nextWakeAtMs: null,
    };
    if (maxBatches === 0) return counts;
    // O(1) when idle: only partitions whose wake-up has passed are visited.
    let wakes: PartitionWake[];
    let earliestWakeAtMs: number | null;
    try {
      ({ partitions: wakes, earliestWakeAtMs } = await this.#store.dueWakes(
        this.#config.partitions,
      ));
    } catch (error) {
      counts.errors++;
      this.#logger.warn("sweep: reading the wake index failed", { error: describe(error) });
      // Unknown: the durable trigger must come back soon rather than wait for a heartbeat.
      counts.nextWakeAtMs = this.#clock.now();
      return counts;
    }
    // A partition can be due in both wake indexes (a database one and Redis's fallback).
    const partitions = [...new Set(wakes.map((w) => w.partition))];
    counts.partitions = partitions.length;

    await mapLimit(partitions, 8, async (p) => {
      try {
        counts.reaped += (await this.#store.reapExpired(p, maxBatches)).length;
      } catch (error) {
        counts.errors++;
        this.#logger.warn("sweep: reaping leases failed", { partition: p, error: describe(error) });
      }
    });
    const lists = await mapLimit(partitions, 8, async (p) => {
      try {
        return await this.#store.listDue(p, maxBatches);
      } catch (error) {
        counts.errors++;
        this.#logger.warn("sweep: listing due failed", { partition: p, error: describe(error) });
        return [];
      }
    });
    const queue = interleave(lists, this.#sweepRound++ % Math.max(1, partitions.length))
      .slice(0, maxBatches);

    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        if (this.#clock.now() - startedMs >= budgetMs) return;
        const conversation = queue[next++];
        if (conversation === undefined) return;
        await this.#sweepOne(conversation, counts);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, queue.length) }, worker));
    // Each visited partition's wake-up moves to what is left there (or goes, if nothing is).
    // The next wake-up reported is the Redis index's, read by its last settle: a database wake
    // index is read by the durable trigger itself.
    counts.nextWakeAtMs = null;
    let settledAll = true;
    let settledRedis = false;
    for (const wake of wakes) {
      try {
        const { nextWakeAtMs } = await this.#store.settleWake(wake);
        if (wake.index !== "database") {
          counts.nextWakeAtMs = nextWakeAtMs;
          settledRedis = true;
        }
      } catch (error) {
        settledAll = false;
        counts.errors++;
        this.#logger.warn("sweep: settling the wake index failed", {
          partition: wake.partition,
          error: describe(error),
        });
      }
    }
    // Nothing of Redis's visited: its index as read. A settle failed: that partition is still
    // due, and the index as read (its earliest wake-up had passed) or the database's says so.
    if (!settledRedis || !settledAll) counts.nextWakeAtMs = earliestWakeAtMs;
    if (counts.claimed > 0 || counts.errors > 0 || counts.reaped > 0) {
      this.#logger.info("sweep done", { ...counts, durationMs: this.#clock.now() - startedMs });
    }
    return counts;
  }

  async #sweepOne(conversation: string, counts: SweepCounts): Promise<void> {
    let outcome: FlushOutcome;
    try {
      outcome = await this.flushConversation(conversation);
    } catch (error) {
      counts.errors++;
      this.#logger.warn("sweep: claim failed", {
        conversation: this.#label(conversation),
        error: describe(error),
      });
      return;
    }
    switch (outcome.status) {
      case "delivered":
        counts.claimed++;
        counts.delivered++;
        break;
      case "retry":
        counts.claimed++;
        counts.retried++;
        break;
      case "dead":
        counts.claimed++;
        counts.dead++;
        break;
      case "superseded":
        counts.claimed++;
        counts.superseded++;
        break;
      case "lock_lost":
        counts.claimed++;
        counts.lockLost++;
        break;
      case "error":
        counts.claimed++;
        counts.errors++;
        break;
      case "not_due":
        counts.notDue++;
        break;
      case "locked":
        counts.locked++;
        break;
      case "breaker_open":
        counts.skippedBreakerOpen++;
        break;
      case "empty":
        break;
    }
  }

  /**
   * Claims the conversation's next batch (a retry-due batch first, else the open buffer if due;
   * `force` claims regardless, reason `manual`) and delivers it. Claim failures (store down)
   * throw; everything after the claim is reported in the outcome.
   */
  async flushConversation(
    conversation: string,
    options: { force?: boolean; probePartition?: boolean } = {},
  ): Promise<FlushOutcome> {
    let permit = NO_PERMIT;
    if (this.#breaker) {
      try {
        permit = this.#breaker.acquire();
      } catch (error) {
        if (error instanceof CircuitOpenError) {
          return { status: "breaker_open", retryAtMs: error.retryAtMs };
        }
        throw error;
      }
    }
    let result: ClaimResult;
    const claimedLocalMs = this.#clock.now();
    try {
      result = await this.#store.claim(conversation, { force: options.force === true });
    } catch (error) {
      permit.release();
      throw error;
    }
    if (result.status !== "claimed") {
      permit.release();
      return result;
    }
    return await this.#deliver(
      result.claim,
      permit,
      claimedLocalMs,
      options.probePartition === true,
    );
  }

  /**
   * The opportunistic trigger, run after the response via `waitUntil` when an append armed the
   * timer. Sleeps until the burst is due, claims, and keeps following the conversation: a
   * message that arrived during the grace moves the due time (sleep again), a burst that
   * arrived during the delivery is flushed right after it, a failed delivery is retried when its
   * backoff ends, an open processor breaker is waited out, and a delivery whose outcome could
   * not be recorded is taken over once its lease lapses. So the timer alone is correct, retries
   * included, for as long as the isolate lives. Stops when another flusher holds the lock or
   * took the batch over, nothing is left, the batch is dead, or after `timerMaxMs`. Never
   * rejects: failures are logged and left to the durable sweep. At most `timerConcurrency`
   * timers of this flusher claim and deliver at once; the others wait their turn.
   */
  async runTimer(conversation: string, appended: AppendResult): Promise<void> {
    if (appended.flushAtMs === null) return;
    const deadlineMs = this.#clock.now() + this.#timerMaxMs;
    let waitMs = appended.flushAtMs - appended.nowMs;
    try {
      // Each pass either claims (and the lock serialises it) or learns a later due time, so
      // the loop is bounded by the deadline; the counter is a belt against a store that lies.
      for (let pass = 0; pass < 1000; pass++) {
        if (waitMs > 0) {
          if (this.#clock.now() + waitMs > deadlineMs) return;
          await this.#clock.sleep(waitMs);
        }
        // Bounded per isolate (timerConcurrency); waiting for a slot only delays the claim,
        // which re-checks the due time anyway.
        // A timer that will settle the wake-up its burst lowered asks the ack whether the
        // partition is left empty: then the settle needs no epoch or due-index read.
        const outcome = await this.#timerSlots.run(() =>
          this.flushConversation(conversation, { probePartition: appended.wake !== undefined })
        );
        switch (outcome.status) {
          case "not_due":
            waitMs = Math.max(1, outcome.dueAtMs - outcome.nowMs);
            continue;
          case "delivered":
            if (outcome.dueAgainAtMs === null) {
              if (appended.wake) {
                await this.#settleAfterTimer(appended.wake, outcome.partitionIdle === true);
              }
              return;
            }
            waitMs = outcome.dueAgainAtMs - outcome.nowMs;
            continue;
          case "superseded":
            waitMs = outcome.flushAtMs - outcome.nowMs;
            continue;
          case "retry":
            waitMs = Math.max(1, outcome.retryAtMs - outcome.nowMs);
            continue;
          case "breaker_open":
            waitMs = Math.max(
              1,
              (outcome.retryAtMs ?? this.#clock.now() + 1000) - this.#clock.now(),
            );
            continue;
          case "error":
            // The lease lapses by itself; the claim then takes the batch over.
            waitMs = this.#config.lockTtlMs;
            continue;
          default:
            return;
        }
      }
    } catch (error) {
      this.#logger.warn("timer flush failed; the sweep will pick it up", {
        conversation: this.#label(conversation),
        error: describe(error),
      });
    }
  }

  /**
   * The burst this timer followed lowered its partition's wake-up, and the timer delivered it:
   * settle the wake-up now (the store's wake index, then the durable trigger), so the trigger
   * does not call a sweep that would find nothing to do. Only when nobody lowered that wake-up
   * since: then a sweep is due anyway, and it settles. Best effort: on any failure the trigger
   * calls the sweep as before.
   *
   * `partitionIdle`: the ack found the partition holding nothing (read after the burst's epoch
   * was, as a sweep's nextDue is), so the settle drops the wake-up unless the epoch moved, with
   * no read of the epoch or the due index first: 4 commands instead of 9 in a quiet deployment
   * (the probe itself took the place of the ack's read of the meta).
   */
  async #settleAfterTimer(wake: PartitionWake, partitionIdle: boolean): Promise<void> {
    try {
      if (
        !partitionIdle &&
        (await this.#store.wakeEpoch(wake.partition, wake.index)) !== wake.epoch
      ) return;
      // A wake-up in the database wake index: the trigger reads it there, nothing else to settle.
      if (wake.index === "database") {
        await this.#store.settleWake(wake, partitionIdle ? { nextDueAtMs: null } : undefined);
        return;
      }
      // The trigger's version before the store's settle, as the sweep reads it: a lowering that
      // races this settle is kept.
      const version = this.#trigger ? await this.#trigger.version() : null;
      const { nextWakeAtMs } = await this.#store.settleWake(
        wake,
        partitionIdle ? { nextDueAtMs: null } : undefined,
      );
      if (this.#trigger && version !== null) await this.#trigger.settle(version, nextWakeAtMs);
    } catch (error) {
      this.#logger.warn("could not settle the wake-up after the timer; the sweep settles it", {
        partition: wake.partition,
        error: describe(error),
      });
    }
  }

  /** The lease-held delivery (src/core/lease-delivery.ts) with this flusher's parts. */
  #deliver(
    claim: Claim,
    permit: BreakerPermit,
    claimedLocalMs: number,
    probePartition = false,
  ): Promise<FlushOutcome> {
    return deliverUnderLease(this.#leaseDeps, claim, permit, claimedLocalMs, probePartition);
  }

  /**
   * Lowers the partition's wake-up to a due time a state change just set, so the durable
   * trigger comes back for it. Best effort: until then the wake-up is still at or before the
   * batch's lease end (it was a lower bound of the lease), so a failure here only delays.
   */
  async #wake(conversation: string, atMs: number | null): Promise<void> {
    if (atMs === null) return;
    try {
      await this.#store.noteWake(conversation, atMs);
    } catch (error) {
      this.#logger.warn("could not lower the wake-up; the lease end bounds the delay", {
        conversation: this.#label(conversation),
        error: describe(error),
      });
    }
  }

  #label(conversation: string): string {
    return maskConversation(conversation, this.#config.logPii);
  }
}

/** Round-robin over per-partition lists starting at `offset`, dropping repeats. */
function interleave(lists: string[][], offset: number): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) {
    for (let k = 0; k < lists.length; k++) {
      const item = lists[(offset + k) % lists.length]?.[i];
      if (item !== undefined && !seen.has(item)) {
        seen.add(item);
        out.push(item);
      }
    }
  }
  return out;
}

/** `Promise.all(items.map(fn))` with at most `limit` calls in flight. */
async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
