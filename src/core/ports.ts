/**
 * The ports the core talks through, declared here (the lowest layer that uses them) so that
 * nothing below the composition root (src/app.ts) imports a layer above it. Implementations:
 * src/observability/logger.ts and metrics.ts; `Clock` lives in ./clock.ts with the system clock.
 */
export type { Clock, Random } from "./clock.ts";

/**
 * A wake index outside Redis (lull.wake_index in the project's Postgres, src/wakeup/): per
 * partition, a lower bound of every due and lease time there, with an epoch counting lowerings.
 * With one, the Redis store lowers and settles partitions here instead of in Redis (no Redis
 * command on a burst's way), keeps its Redis index only for a lowering this one refused, and its
 * sweep reads both. Every call may throw; the store decides (none of them can lose a message).
 */
export interface DatabaseWakeIndex {
  /**
   * Lowers `partition`'s wake-up to `atMs` at the latest; answers the epoch this left. `scope`
   * is the store's key prefix: deployments sharing a database keep apart wake-ups.
   */
  lowerPartition(scope: string, partition: number, atMs: number): Promise<string>;
  /** The partition's epoch ("0": never lowered). */
  partitionEpoch(scope: string, partition: number): Promise<string>;
  /** Partitions whose wake-up is at or before `uptoMs` (store time), earliest first. */
  duePartitions(
    scope: string,
    uptoMs: number,
    limit: number,
  ): Promise<{ partition: number; epoch: string }[]>;
  /** Sets the wake-up to `nextAtMs` (null: nothing there), or only lowers it if the epoch moved. */
  settlePartition(
    scope: string,
    partition: number,
    epoch: string,
    nextAtMs: number | null,
  ): Promise<void>;
}

/**
 * The durable trigger's wake-up (lull.wakeup, src/wakeup/wakeup.ts) as the flusher settles it
 * after a timer delivered the burst that lowered it: the version before, the next wake-up after.
 */
export interface TriggerWakeup {
  version(): Promise<string>;
  settle(version: string, nextAtMs: number | null): Promise<void>;
}

/** Minimal structured logger (JSON lines). Implementation: src/observability/logger.ts. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** In-process metrics (Prometheus names, e.g. `lull_http_requests_total`). */
export interface MetricsSink {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  observe(name: string, value: number, labels?: Record<string, string>): void;
}

/**
 * The host's keep-alive hook for work after a response: Supabase Edge Runtime's global
 * `EdgeRuntime`. Handed in by the function entry (supabase/functions/lull/index.ts), never read
 * from globals by the core.
 */
export interface EdgeRuntimeLike {
  waitUntil(work: Promise<unknown>): void;
}
