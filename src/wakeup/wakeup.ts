/**
 * The durable trigger's wake-up time, kept next to the Cron that reads it (the project's
 * Postgres, table lull.wakeup, supabase/migrations/*_lull_wakeup.sql). The function lowers it per
 * burst and resets it after each sweep, and after a timer delivered the burst that lowered it;
 * pg_cron calls the sweep only once it has passed (plus a heartbeat a minute). Only an
 * optimisation of *when* the sweep runs: the heartbeat sweep reads
 * the Redis wake index itself, so a lowering lost with a killed isolate delays, never loses.
 */

/** Where the trigger stands (GET /lull/health). */
export interface WakeupStatus {
  /** Earliest time the sweep has work, ms; null when idle. */
  dueAtMs: number | null;
  /**
   * Last call of the sweep by the trigger, and last settle, ms: a sweep that reported back, or a
   * timer that delivered the burst whose append lowered the wake-up (Flusher.runTimer).
   */
  firedAtMs: number | null;
  sweptAtMs: number | null;
  nowMs: number;
  /**
   * A migration the function needs is not applied (its file name): the wake index is missing, so
   * every wake-up falls back to Redis's index. Absent when all are there.
   */
  missingMigration?: string;
}

/** The migration that creates lull.wake_index (supabase/migrations/). */
export const WAKE_INDEX_MIGRATION = "20261204120000_lull_wake_index.sql";

/** The wake-up port; one per isolate. */
export interface Wakeup {
  /** The sweep has work at `atMs` at the latest. */
  lower(atMs: number): Promise<void>;
  /** Before a sweep: the row's version, to settle against. */
  version(): Promise<string>;
  /** After a sweep (or a timer's delivery) begun at `version`: the next wake-up (null: idle). */
  settle(version: string, nextAtMs: number | null): Promise<void>;
  /** For the trigger itself (`lull dev` plays pg_cron): whether to call the sweep now. */
  take(throttleMs: number, heartbeatMs: number): Promise<boolean>;
  status(): Promise<WakeupStatus>;
  close(): Promise<void>;
}

/**
 * The wake-up to settle on: `nextAtMs` (the store's earliest), but no later than one sweep
 * interval from now while outbox rows wait, since the sweep is what replays them.
 */
export function settledWakeAt(
  nextAtMs: number | null,
  outboxPending: boolean,
  nowMs: number,
  sweepIntervalMs: number,
): number | null {
  return outboxPending ? Math.min(nextAtMs ?? Infinity, nowMs + sweepIntervalMs) : nextAtMs;
}

/** The heartbeat: the trigger calls the sweep at least this often, even when idle. */
export const HEARTBEAT_MS = 60_000;
