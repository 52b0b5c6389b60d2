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
import { backoffDelayMs } from "./backoff.ts";
import type { BreakerPermit, CircuitBreaker } from "./breaker.ts";
import { type Clock, type Random, systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import {
  BatchNotFoundError,
  CircuitOpenError,
  LockLostError,
  LullError,
  RedisTimeoutError,
  RedisUnavailableError,
} from "./errors.ts";
import type {
  AppendResult,
  BufferStore,
  Claim,
  ClaimResult,
  DeliveryOutcome,
  PartitionWake,
  Processor,
} from "./types.ts";
import type { Logger } from "../http/context.ts";
import { ConcurrencyLimiter } from "./limiter.ts";
import { maskConversation } from "../observability/mask.ts";

/**
 * The configuration the flusher reads. The grace-period double check itself lives in the
 * store's due rule (flushAt = lastAt + window + grace, re-checked atomically at claim); the
 * flusher follows the due times the store hands back, so `graceMs` is informational here.
 */
export type FlusherConfig = Pick<
  Config,
  | "partitions"
  | "retryBaseMs"
  | "retryMaxMs"
  | "lockTtlMs"
  | "deliveryTimeoutMs"
  | "graceMs"
  | "logPii"
>;

/** What one delivery came to, reported through {@link FlusherOptions.onOutcome}. */
export interface DeliveryReport {
  /** Conversation label, PII-masked unless LULL_LOG_PII (it is meant for logs and alerts). */
  conversation: string;
  batchId: string;
  outcome: "delivered" | "retry" | "dead" | "superseded" | "lock_lost" | "error";
  /** The attempt this delivery was (1 = first). */
  attempt: number;
  /** Why it did not succeed (retry, dead, lock_lost, error). */
  error?: string;
  /** From handing the batch to the processor to recording the outcome. */
  durationMs: number;
}

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

/** The result of one claim-and-deliver step ({@link Flusher.flushConversation}). */
export type FlushOutcome =
  | {
    status: "delivered";
    batchId: string;
    fence: number;
    attempt: number;
    size: number;
    /** The conversation has a newer buffer, claimable at this store time. */
    dueAgainAtMs: number | null;
    /** Estimated store time after the ack (claim time + local elapsed). */
    nowMs: number;
  }
  | {
    status: "retry";
    batchId: string;
    attempt: number;
    retryAtMs: number;
    error: string;
    /** Estimated store time after the fail. */
    nowMs: number;
  }
  | { status: "dead"; batchId: string; attempt: number; error: string }
  | {
    status: "superseded";
    batchId: string;
    attempt: number;
    size: number;
    flushAtMs: number;
    /** Estimated store time after the supersede. */
    nowMs: number;
  }
  /** Our lease was lost mid-flight: the batch belongs to another flusher now; nothing acked. */
  | { status: "lock_lost"; batchId: string; attempt: number; error: string }
  /** Delivered or not, the outcome could not be recorded; the lease will lapse and be reaped. */
  | { status: "error"; batchId: string; attempt: number; error: string }
  | { status: "not_due"; dueAtMs: number; nowMs: number }
  | { status: "locked"; nowMs: number }
  | { status: "empty"; nowMs: number }
  /** The processor breaker is open: nothing was claimed. */
  | { status: "breaker_open"; retryAtMs: number | null };

/** The processor did not answer within LULL_DELIVERY_TIMEOUT_MS. */
export class DeliveryTimeoutError extends LullError {
  constructor(batchId: string, timeoutMs: number) {
    super("delivery_timeout", `delivery timed out after ${timeoutMs} ms`, { batchId, timeoutMs });
  }
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
    counts.partitions = wakes.length;
    const partitions = wakes.map((w) => w.partition);

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
    counts.nextWakeAtMs = null;
    let settledAll = true;
    for (const wake of wakes) {
      try {
        counts.nextWakeAtMs = (await this.#store.settleWake(wake)).nextWakeAtMs;
      } catch (error) {
        settledAll = false;
        counts.errors++;
        this.#logger.warn("sweep: settling the wake index failed", {
          partition: wake.partition,
          error: describe(error),
        });
      }
    }
    // Nothing visited: the index as read. A settle failed: that partition is still due, and the
    // index as read (its earliest wake-up had passed) says so.
    if (wakes.length === 0 || !settledAll) counts.nextWakeAtMs = earliestWakeAtMs;
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
    options: { force?: boolean } = {},
  ): Promise<FlushOutcome> {
    let permit = NO_PERMIT;
    if (this.#breaker) {
      try {
        permit = this.#breaker.acquire();
      } catch (error) {
        if (error instanceof CircuitOpenError) {
          const retryAtMs = error.context.retryAtMs;
          return {
            status: "breaker_open",
            retryAtMs: typeof retryAtMs === "number" ? retryAtMs : null,
          };
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
    return await this.#deliver(result.claim, permit, claimedLocalMs);
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
        const outcome = await this.#timerSlots.run(() => this.flushConversation(conversation));
        switch (outcome.status) {
          case "not_due":
            waitMs = Math.max(1, outcome.dueAtMs - outcome.nowMs);
            continue;
          case "delivered":
            if (outcome.dueAgainAtMs === null) return;
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
   * Runs the processor under the lease: renews it every lockTtlMs/2, aborts at
   * deliveryTimeoutMs, and on a lost lease aborts without acking (the new owner redelivers the
   * same batchId). Then records the outcome in the store.
   */
  async #deliver(
    claim: Claim,
    permit: BreakerPermit,
    claimedLocalMs: number,
  ): Promise<FlushOutcome> {
    const { batch, token } = claim;
    const { conversation, batchId, attempt } = batch;
    const label = this.#label(conversation);
    const startedMs = this.#clock.now();
    const storeNow = () => claim.nowMs + (this.#clock.now() - claimedLocalMs);

    const delivery = new AbortController();
    const stopTimers = new AbortController();
    let lockLost: LullError | null = null;
    let timedOut = false;

    const aborted = new Promise<never>((_, reject) => {
      delivery.signal.addEventListener("abort", () => reject(delivery.signal.reason), {
        once: true,
      });
    });
    aborted.catch(() => {});

    this.#clock.sleep(this.#config.deliveryTimeoutMs, stopTimers.signal).then(() => {
      timedOut = true;
      delivery.abort(new DeliveryTimeoutError(batchId, this.#config.deliveryTimeoutMs));
    }, () => {});

    const renewal = this.#renewLease(claim, stopTimers.signal, (error) => {
      lockLost = error;
      delivery.abort(error);
    });

    let outcome: DeliveryOutcome | undefined;
    let thrown: unknown;
    try {
      // Racing the abort means a processor that ignores its signal cannot hold the flusher.
      outcome = await Promise.race([this.#processor(batch, delivery.signal), aborted]);
    } catch (error) {
      thrown = error;
    } finally {
      stopTimers.abort();
    }
    // An extend still in flight must land before the ack/fail, not after it.
    await renewal;

    const report = (
      status: DeliveryReport["outcome"],
      error?: string,
    ) => {
      const durationMs = this.#clock.now() - startedMs;
      const fields = { conversation: label, batchId, attempt, durationMs, error };
      if (status === "delivered" || status === "superseded") {
        this.#logger.info(`batch ${status}`, { ...fields, size: batch.messages.length });
      } else if (status === "retry" || status === "lock_lost") {
        this.#logger.warn(`batch ${status}`, fields);
      } else this.#logger.error(`batch ${status}`, fields);
      try {
        this.#onOutcome?.({
          conversation: label,
          batchId,
          outcome: status,
          attempt,
          error,
          durationMs,
        });
      } catch {
        // Metrics must not change what happened to the batch.
      }
    };

    const onLockLost = async (error: unknown): Promise<FlushOutcome> => {
      permit.release();
      const message = describe(error);
      try {
        await this.#store.recordEvent(conversation, "lock_lost", {
          batchId,
          attempt: String(attempt),
          error: message,
        });
      } catch {
        // Best effort: the event is diagnostics, the state machine is already consistent.
      }
      report("lock_lost", message);
      return { status: "lock_lost", batchId, attempt, error: message };
    };

    if (lockLost) return await onLockLost(lockLost);

    let retryAfterMs: number | undefined;
    let retryError: string | undefined;
    let responseBody: string | undefined;
    if (thrown !== undefined || outcome === undefined) {
      retryError = timedOut
        ? `delivery timed out after ${this.#config.deliveryTimeoutMs} ms`
        : `processor threw: ${describe(thrown)}`;
      permit.failure();
    } else if (outcome.kind === "retry") {
      retryError = outcome.error;
      retryAfterMs = outcome.retryAfterMs;
      responseBody = outcome.responseBody;
      permit.failure();
    } else {
      // delivered, permanent and supersede are all answers from a healthy processor.
      permit.success();
    }

    // Recording the outcome is retried for a quarter of the lease, which is still ours: a
    // redelivery avoided. Calls that surely never reached Redis (a blip, an open Redis breaker)
    // are retried; an ambiguous one (timeout, dropped answer) only for the ack, which is
    // idempotent (the processed record answers a repeat). A fail or supersede that may have
    // committed is never replayed.
    const recordDeadlineMs = this.#clock.now() + this.#config.lockTtlMs / 4;
    const record = async <T>(write: () => Promise<T>, idempotent = false): Promise<T> => {
      for (let delayMs = 50;; delayMs = Math.min(delayMs * 2, 1000)) {
        try {
          return await write();
        } catch (error) {
          const retryable = error instanceof RedisUnavailableError ||
            error instanceof CircuitOpenError ||
            (idempotent && error instanceof RedisTimeoutError);
          if (!retryable || this.#clock.now() + delayMs > recordDeadlineMs) throw error;
          await this.#clock.sleep(delayMs);
        }
      }
    };

    try {
      if (retryError === undefined && outcome?.kind === "delivered") {
        const ack = await record(() => this.#store.ack(conversation, batchId, token), true);
        await this.#wake(conversation, ack.dueAgainAtMs);
        report("delivered");
        return {
          status: "delivered",
          batchId,
          fence: batch.fence,
          attempt,
          size: batch.messages.length,
          dueAgainAtMs: ack.dueAgainAtMs,
          nowMs: storeNow(),
        };
      }
      if (retryError === undefined && outcome?.kind === "permanent") {
        const failed = await record(() =>
          this.#store.fail(conversation, batchId, token, {
            error: outcome.error,
            delayMs: 0,
            permanent: true,
            ...(outcome.responseBody === undefined ? {} : { responseBody: outcome.responseBody }),
          })
        );
        if (failed.status === "dead") await this.#wake(conversation, failed.dueAgainAtMs);
        report("dead", outcome.error);
        return { status: "dead", batchId, attempt: failed.attempt, error: outcome.error };
      }
      if (retryError === undefined && outcome?.kind === "supersede") {
        const merged = await record(() => this.#store.supersede(conversation, batchId, token));
        if (merged.status === "merged") {
          await this.#wake(conversation, merged.flushAtMs);
          report("superseded");
          return {
            status: "superseded",
            batchId,
            attempt,
            size: merged.size,
            flushAtMs: merged.flushAtMs,
            nowMs: storeNow(),
          };
        }
        if (merged.status === "expired") {
          // Supersedes count toward MAX_AGE: past it, the fail below dead-letters the batch.
          retryError = "processor kept superseding past LULL_RETRY_MAX_AGE_MS";
        } else retryError = "processor asked to supersede, but nothing newer is pending";
      }
      const error = retryError ?? "unknown delivery outcome";
      const delayMs = backoffDelayMs({
        attempt,
        baseMs: this.#config.retryBaseMs,
        maxMs: this.#config.retryMaxMs,
        random: this.#random,
        retryAfterMs,
      });
      const failed = await record(() =>
        this.#store.fail(conversation, batchId, token, {
          error,
          delayMs,
          permanent: false,
          ...(responseBody === undefined ? {} : { responseBody }),
        })
      );
      if (failed.status === "dead") {
        await this.#wake(conversation, failed.dueAgainAtMs);
        report("dead", error);
        return { status: "dead", batchId, attempt: failed.attempt, error };
      }
      await this.#wake(conversation, failed.retryAtMs);
      report("retry", error);
      return {
        status: "retry",
        batchId,
        attempt: failed.attempt,
        retryAtMs: failed.retryAtMs,
        error,
        nowMs: storeNow(),
      };
    } catch (error) {
      if (error instanceof LockLostError || error instanceof BatchNotFoundError) {
        return await onLockLost(error);
      }
      // The outcome is unknown to the store; the lease lapses, the sweep reaps and redelivers
      // the same batchId (at-least-once, deduped by the processor's Idempotency-Key).
      const message = describe(error);
      report("error", message);
      return { status: "error", batchId, attempt, error: message };
    }
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

  /** Renews the lease every lockTtlMs/2 until `stop`; reports a lost lock once and returns. */
  async #renewLease(
    claim: Claim,
    stop: AbortSignal,
    onLost: (error: LullError) => void,
  ): Promise<void> {
    const { conversation, batchId } = claim.batch;
    const intervalMs = Math.max(1, Math.floor(this.#config.lockTtlMs / 2));
    while (!stop.aborted) {
      try {
        await this.#clock.sleep(intervalMs, stop);
      } catch {
        return;
      }
      if (stop.aborted) return;
      try {
        await this.#store.extend(conversation, batchId, claim.token);
      } catch (error) {
        if (error instanceof LockLostError || error instanceof BatchNotFoundError) {
          onLost(error);
          return;
        }
        // A transient store error: the lease is still valid for a while; try again next tick.
        this.#logger.warn("lease renewal failed", {
          conversation: this.#label(conversation),
          batchId,
          error: describe(error),
        });
      }
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

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
