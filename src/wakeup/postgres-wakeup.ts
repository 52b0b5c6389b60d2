/**
 * {@link Wakeup} on the project's Postgres through porsager's `postgres` (Node and Deno), with
 * the same pooler rules as the outbox: no prepared statements, one tiny pool per isolate, a
 * deadline on every statement. Every call is one statement of a SQL function from the migration.
 */
import postgres from "postgres";
import type { CircuitBreaker } from "../core/breaker.ts";
import { inlineSql, int, text, timestampMs } from "../core/inline-sql.ts";
import type { DatabaseWakeIndex } from "../core/ports.ts";
import { WAKE_INDEX_MIGRATION, type Wakeup, type WakeupStatus } from "./wakeup.ts";

/** PostgreSQL's SQLSTATE for a function that does not exist (a migration not applied). */
const UNDEFINED_FUNCTION = "42883";

/** Options of {@link createPostgresWakeup}. */
export interface PostgresWakeupOptions {
  /** postgres:// URL (LULL_DATABASE_URL, defaulting to SUPABASE_DB_URL). */
  url: string;
  /** Deadline of one statement, ms. @default 3000 */
  timeoutMs?: number;
  /**
   * Deadline of a partition's lowering, which runs before the webhook is answered: past it the
   * Redis wake index takes the lowering instead. @default the smaller of 1000 and `timeoutMs`
   */
  lowerTimeoutMs?: number;
}

/** A failed wake-up statement (the caller decides; none of them can lose a message). */
export class WakeupError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`wake-up ${operation} failed: ${cause instanceof Error ? cause.message : cause}`, {
      cause,
    });
    this.name = "WakeupError";
  }
}

const ms = (v: unknown): number | null =>
  v === null || v === undefined ? null : Math.round(Number(v));

/**
 * Creates the Postgres wake-up; it is also the wake index (lull.wake_index) the Redis store can
 * keep its partitions' wake-ups in ({@link DatabaseWakeIndex}), on the same pool.
 */
export function createPostgresWakeup(
  options: PostgresWakeupOptions,
): Wakeup & DatabaseWakeIndex {
  const timeoutMs = options.timeoutMs ?? 3000;
  const sql = postgres(options.url, {
    prepare: false,
    max: 1,
    idle_timeout: 20,
    connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
    onnotice: () => {},
    connection: { application_name: "lull-wakeup" },
  });
  const lowerTimeoutMs = options.lowerTimeoutMs ?? Math.min(1000, timeoutMs);
  const run = async <T>(
    operation: string,
    work: () => Promise<T>,
    deadlineMs = timeoutMs,
  ): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        work(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${deadlineMs} ms`)), deadlineMs);
        }),
      ]);
    } catch (error) {
      throw new WakeupError(operation, error);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    async lower(atMs) {
      await run(
        "lower",
        () => sql.unsafe(inlineSql`select lull.lower_wakeup(${timestampMs(atMs)})`),
      );
    },
    async version() {
      const rows = await run("version", () => sql`select version from lull.wakeup where id`);
      return String(rows[0]?.version ?? "0");
    },
    async settle(version, nextAtMs) {
      await run("settle", () =>
        sql.unsafe(
          inlineSql`select lull.settle_wakeup(${int(version)}::bigint, ${timestampMs(nextAtMs)})`,
        ));
    },
    async take(throttleMs, heartbeatMs) {
      const rows = await run(
        "take",
        () =>
          sql`select lull.take_wakeup(
            ${`${throttleMs} milliseconds`}::interval,
            ${`${heartbeatMs} milliseconds`}::interval
          ) as fire`,
      );
      return rows[0]?.fire === true;
    },
    async status(): Promise<WakeupStatus> {
      const read = (due: "index" | "row") =>
        run(
          "status",
          () =>
            sql`select extract(epoch from ${
              due === "index" ? sql`lull.wakeup_due_at()` : sql`due_at`
            }) * 1000 as due_ms,
                     extract(epoch from fired_at) * 1000 as fired_ms,
                     extract(epoch from swept_at) * 1000 as swept_ms,
                     extract(epoch from now()) * 1000 as now_ms
                from lull.wakeup where id`,
        );
      let rows;
      let missingMigration: string | undefined;
      try {
        rows = await read("index");
      } catch (error) {
        // The function was deployed before `supabase db push` applied the wake index: say so
        // (health reports it) and read the one row as before.
        const code = (error as { cause?: { code?: string } }).cause?.code;
        if (code !== UNDEFINED_FUNCTION) throw error;
        missingMigration = WAKE_INDEX_MIGRATION;
        rows = await read("row");
      }
      const r = rows[0] ?? {};
      return {
        dueAtMs: ms(r.due_ms),
        firedAtMs: ms(r.fired_ms),
        sweptAtMs: ms(r.swept_ms),
        nowMs: Math.round(Number(r.now_ms ?? Date.now())),
        ...(missingMigration ? { missingMigration } : {}),
      };
    },
    async lowerPartition(scope, partition, atMs) {
      const rows = await run(
        "lower partition",
        () =>
          sql.unsafe(inlineSql`select lull.lower_partition_wake(
            ${text(scope)}, ${int(partition)}::int, ${timestampMs(atMs)}
          ) as e`),
        lowerTimeoutMs,
      );
      return String(rows[0]?.e ?? "0");
    },
    async partitionEpoch(scope, partition) {
      const rows = await run(
        "partition epoch",
        () =>
          sql.unsafe(inlineSql`select epoch from lull.wake_index
                where scope = ${text(scope)} and partition = ${int(partition)}::int`),
      );
      return String(rows[0]?.epoch ?? "0");
    },
    async duePartitions(scope, uptoMs, limit) {
      const rows = await run(
        "due partitions",
        () =>
          sql.unsafe(inlineSql`select partition, epoch
                from lull.due_partition_wakes(${text(scope)}, ${timestampMs(uptoMs)}, ${
            int(limit)
          }::int)`),
      );
      return rows.map((r) => ({ partition: Number(r.partition), epoch: String(r.epoch) }));
    },
    async settlePartition(scope, partition, epoch, nextAtMs) {
      await run(
        "settle partition",
        () =>
          sql.unsafe(inlineSql`select lull.settle_partition_wake(
            ${text(scope)}, ${int(partition)}::int, ${int(epoch)}::bigint, ${
            timestampMs(nextAtMs)
          })`),
      );
    },
    async close() {
      await sql.end({ timeout: 1 });
    },
  };
}

/**
 * `index` behind `breaker`: after a few failures in a row the store's lowerings go straight to
 * the Redis wake index (one fast refusal each) instead of each waiting out a statement deadline
 * on the webhook's path, until a probe finds the database back.
 */
export function withWakeIndexBreaker(
  index: DatabaseWakeIndex,
  breaker: CircuitBreaker,
): DatabaseWakeIndex {
  return {
    lowerPartition: (...args) => breaker.run(() => index.lowerPartition(...args)),
    partitionEpoch: (...args) => breaker.run(() => index.partitionEpoch(...args)),
    duePartitions: (...args) => breaker.run(() => index.duePartitions(...args)),
    settlePartition: (...args) => breaker.run(() => index.settlePartition(...args)),
  };
}
