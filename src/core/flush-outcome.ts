/**
 * What a flush step comes to: the flusher's configuration slice, the outcome of one
 * claim-and-deliver step and the report each delivery makes. Shared by the flusher
 * (src/core/flusher.ts: sweep and timer) and the lease-held delivery (lease-delivery.ts).
 */
import type { Config } from "./config.ts";
import { LullError } from "./errors.ts";

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

/** What one delivery came to, reported through `FlusherOptions.onOutcome`. */
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

/** The result of one claim-and-deliver step (`Flusher.flushConversation`). */
export type FlushOutcome =
  | {
    status: "delivered";
    batchId: string;
    fence: number;
    attempt: number;
    size: number;
    /** The conversation has a newer buffer, claimable at this store time. */
    dueAgainAtMs: number | null;
    /**
     * The ack, asked to probe, found the conversation's partition holding nothing else (no due
     * entry, no lease): `AckResult.partitionIdle` (src/core/types.ts).
     */
    partitionIdle?: boolean;
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
  constructor(readonly batchId: string, readonly timeoutMs: number) {
    super("delivery_timeout", `delivery timed out after ${timeoutMs} ms`);
  }
}

/** An error's message (or the thrown value) for logs and outcomes. */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
