/**
 * One delivery under the conversation's flush lease, as the flusher runs it for both triggers:
 * the processor is called with the claimed batch while the lease is renewed every lockTtlMs/2;
 * the call is aborted at deliveryTimeoutMs, or as soon as the lease is lost (the new owner
 * redelivers the same batchId); then the outcome is recorded in the store (ack, fail with
 * backoff, supersede) and reported. The sweep loop and the in-isolate timer are in flusher.ts.
 */
import { backoffDelayMs } from "./backoff.ts";
import type { BreakerPermit } from "./breaker.ts";
import type { Clock, Random } from "./clock.ts";
import {
  BatchNotFoundError,
  CircuitOpenError,
  LockLostError,
  LullError,
  RedisTimeoutError,
  RedisUnavailableError,
} from "./errors.ts";
import {
  type DeliveryReport,
  DeliveryTimeoutError,
  describe,
  type FlusherConfig,
  type FlushOutcome,
} from "./flush-outcome.ts";
import type { Logger } from "./ports.ts";
import type { BufferStore, Claim, DeliveryOutcome, Processor } from "./types.ts";

/** What a delivery needs from its flusher. */
export interface LeaseDeliveryDeps {
  readonly store: BufferStore;
  readonly processor: Processor;
  readonly clock: Clock;
  readonly random: Random;
  readonly config: FlusherConfig;
  readonly logger: Logger;
  readonly onOutcome?: (report: DeliveryReport) => void;
  /** The conversation as logs show it (masked unless LULL_LOG_PII). */
  label(conversation: string): string;
  /** Lowers the partition's wake-up to a due time the outcome just set (best effort). */
  wake(conversation: string, atMs: number | null): Promise<void>;
}

/**
 * Runs the processor under the lease: renews it every lockTtlMs/2, aborts at
 * deliveryTimeoutMs, and on a lost lease aborts without acking (the new owner redelivers the
 * same batchId). Then records the outcome in the store.
 */
export async function deliverUnderLease(
  deps: LeaseDeliveryDeps,
  claim: Claim,
  permit: BreakerPermit,
  claimedLocalMs: number,
  /** Ask the ack whether the partition is left empty (a timer that will settle its wake-up). */
  probePartition = false,
): Promise<FlushOutcome> {
  const { batch, token } = claim;
  const { conversation, batchId, attempt } = batch;
  const label = deps.label(conversation);
  const startedMs = deps.clock.now();
  const storeNow = () => claim.nowMs + (deps.clock.now() - claimedLocalMs);

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

  deps.clock.sleep(deps.config.deliveryTimeoutMs, stopTimers.signal).then(() => {
    timedOut = true;
    delivery.abort(new DeliveryTimeoutError(batchId, deps.config.deliveryTimeoutMs));
  }, () => {});

  const renewal = renewLease(deps, claim, stopTimers.signal, (error) => {
    lockLost = error;
    delivery.abort(error);
  });

  let outcome: DeliveryOutcome | undefined;
  let thrown: unknown;
  try {
    // Racing the abort means a processor that ignores its signal cannot hold the flusher.
    outcome = await Promise.race([deps.processor(batch, delivery.signal), aborted]);
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
    const durationMs = deps.clock.now() - startedMs;
    const fields = { conversation: label, batchId, attempt, durationMs, error };
    if (status === "delivered" || status === "superseded") {
      deps.logger.info(`batch ${status}`, { ...fields, size: batch.messages.length });
    } else if (status === "retry" || status === "lock_lost") {
      deps.logger.warn(`batch ${status}`, fields);
    } else deps.logger.error(`batch ${status}`, fields);
    try {
      deps.onOutcome?.({
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
      await deps.store.recordEvent(conversation, "lock_lost", {
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
      ? `delivery timed out after ${deps.config.deliveryTimeoutMs} ms`
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
  const recordDeadlineMs = deps.clock.now() + deps.config.lockTtlMs / 4;
  const record = async <T>(write: () => Promise<T>, idempotent = false): Promise<T> => {
    for (let delayMs = 50;; delayMs = Math.min(delayMs * 2, 1000)) {
      try {
        return await write();
      } catch (error) {
        const retryable = error instanceof RedisUnavailableError ||
          error instanceof CircuitOpenError ||
          (idempotent && error instanceof RedisTimeoutError);
        if (!retryable || deps.clock.now() + delayMs > recordDeadlineMs) throw error;
        await deps.clock.sleep(delayMs);
      }
    }
  };

  try {
    if (retryError === undefined && outcome?.kind === "delivered") {
      const ack = await record(
        () =>
          deps.store.ack(conversation, batchId, token, {
            messages: batch.messages,
            probePartition,
          }),
        true,
      );
      await deps.wake(conversation, ack.dueAgainAtMs);
      report("delivered");
      return {
        status: "delivered",
        batchId,
        fence: batch.fence,
        attempt,
        size: batch.messages.length,
        dueAgainAtMs: ack.dueAgainAtMs,
        partitionIdle: ack.partitionIdle,
        nowMs: storeNow(),
      };
    }
    if (retryError === undefined && outcome?.kind === "permanent") {
      const failed = await record(() =>
        deps.store.fail(conversation, batchId, token, {
          error: outcome.error,
          delayMs: 0,
          permanent: true,
          ...(outcome.responseBody === undefined ? {} : { responseBody: outcome.responseBody }),
        })
      );
      if (failed.status === "dead") await deps.wake(conversation, failed.dueAgainAtMs);
      report("dead", outcome.error);
      return { status: "dead", batchId, attempt: failed.attempt, error: outcome.error };
    }
    if (retryError === undefined && outcome?.kind === "supersede") {
      const merged = await record(() => deps.store.supersede(conversation, batchId, token));
      if (merged.status === "merged") {
        await deps.wake(conversation, merged.flushAtMs);
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
      baseMs: deps.config.retryBaseMs,
      maxMs: deps.config.retryMaxMs,
      random: deps.random,
      retryAfterMs,
    });
    const failed = await record(() =>
      deps.store.fail(conversation, batchId, token, {
        error,
        delayMs,
        permanent: false,
        ...(responseBody === undefined ? {} : { responseBody }),
      })
    );
    if (failed.status === "dead") {
      await deps.wake(conversation, failed.dueAgainAtMs);
      report("dead", error);
      return { status: "dead", batchId, attempt: failed.attempt, error };
    }
    await deps.wake(conversation, failed.retryAtMs);
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

/** Renews the lease every lockTtlMs/2 until `stop`; reports a lost lock once and returns. */
async function renewLease(
  deps: LeaseDeliveryDeps,
  claim: Claim,
  stop: AbortSignal,
  onLost: (error: LullError) => void,
): Promise<void> {
  const { conversation, batchId } = claim.batch;
  const intervalMs = Math.max(1, Math.floor(deps.config.lockTtlMs / 2));
  while (!stop.aborted) {
    try {
      await deps.clock.sleep(intervalMs, stop);
    } catch {
      return;
    }
    if (stop.aborted) return;
    try {
      await deps.store.extend(conversation, batchId, claim.token);
    } catch (error) {
      if (error instanceof LockLostError || error instanceof BatchNotFoundError) {
        onLost(error);
        return;
      }
      // A transient store error: the lease is still valid for a while; try again next tick.
      deps.logger.warn("lease renewal failed", {
        conversation: deps.label(conversation),
        batchId,
        error: describe(error),
      });
    }
  }
}
