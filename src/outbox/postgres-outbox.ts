/**
 * The {@link Outbox} on Postgres (the project's own database: SUPABASE_DB_URL, or
 * LULL_DATABASE_URL), through porsager's `postgres` client, which runs on Node and on Deno
 * (`npm:postgres`). The table is created by supabase/migrations/*_lull_outbox.sql.
 *
 * Supabase's pooler (Supavisor) in transaction mode hands each transaction a different server
 * connection, so: no prepared statements (`prepare: false`), no session state, and the
 * replay's per-conversation lock is `pg_advisory_xact_lock`, which lives exactly as long as the
 * transaction that took it. One small pool per isolate (build one PostgresOutbox per isolate).
 *
 * Error mapping: a refused or timed-out connect means "not written"; a connection lost while a
 * statement was out, or our own deadline passing, means "maybe written" (`ambiguous`).
 */
import postgres from "postgres";
import { inlineSql, textArray } from "../core/inline-sql.ts";
import type { InboundMessage } from "../core/types.ts";
import {
  type ClaimOptions,
  type Outbox,
  type OutboxClaim,
  type OutboxDepth,
  type OutboxRow,
  OutboxUnavailableError,
} from "./outbox.ts";

/** Options of {@link createPostgresOutbox}. */
export interface PostgresOutboxOptions {
  /** postgres:// URL (LULL_DATABASE_URL, defaulting to SUPABASE_DB_URL). */
  url: string;
  /**
   * Connections in this isolate's pool. Small: an Edge isolate serves few requests at once
   * and every isolate has its own pool.
   * @default 3
   */
  max?: number;
  /**
   * Deadline of one statement outside a claim (write, checks, depth), in ms. Past it the call
   * rejects with an ambiguous {@link OutboxUnavailableError}.
   * @default 3000
   */
  timeoutMs?: number;
  /** @default 3000 */
  connectTimeoutMs?: number;
}

/** Connection failures where nothing reached the server. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "CONNECT_TIMEOUT", "ENOTFOUND", "EHOSTUNREACH"]);

/** SQLSTATE of a lock wait cut short by `lock_timeout`. */
const LOCK_NOT_AVAILABLE = "55P03";

class ClaimLockedSignal extends Error {}

/** Maps anything the client threw to an {@link OutboxUnavailableError}. */
function toOutboxError(operation: string, err: unknown): OutboxUnavailableError {
  if (err instanceof OutboxUnavailableError) return err;
  if (err instanceof postgres.PostgresError) {
    // The server answered with an error: the statement (and its transaction) did not commit.
    return new OutboxUnavailableError(operation, `${err.code}: ${err.message}`, {
      ambiguous: false,
      pgCode: err.code,
      cause: err,
    });
  }
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new OutboxUnavailableError(operation, message, {
    ambiguous: !(typeof code === "string" && NOT_SENT_CODES.has(code)),
    cause: err,
  });
}

/** `work` with a deadline; the statement keeps running in the pool if the deadline passes. */
async function withDeadline<T>(operation: string, timeoutMs: number, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new OutboxUnavailableError(operation, `no answer within ${timeoutMs} ms`, {
            ambiguous: true,
          }),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (err) {
    throw toOutboxError(operation, err);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `lookup(key)` answered by `query`, which takes many keys at once and resolves to those it
 * found. Calls made while a query is out wait for it to end, then share the next one; so a
 * busy isolate sends one statement per round trip instead of one per call.
 *
 * Every call is answered by a query sent after the call was made (a waiting call only joins a
 * query not yet sent), so the answer is as fresh as a query of its own: a row committed before
 * the call is seen. That is what ingest's ordering check needs.
 */
export function coalescedLookup<K>(
  query: (keys: K[]) => Promise<Set<K>>,
): (key: K) => Promise<boolean> {
  interface Waiter {
    key: K;
    resolve(found: boolean): void;
    reject(err: unknown): void;
  }
  let waiting: Waiter[] = [];
  let busy = false;
  const send = (): void => {
    const batch = waiting;
    waiting = [];
    busy = true;
    query([...new Set(batch.map((w) => w.key))]).then(
      (found) => batch.forEach((w) => w.resolve(found.has(w.key))),
      (err) => batch.forEach((w) => w.reject(err)),
    ).finally(() => {
      busy = false;
      if (waiting.length > 0) send();
    });
  };
  return (key) =>
    new Promise<boolean>((resolve, reject) => {
      waiting.push({ key, resolve, reject });
      // The first call of an idle lookup sends after this turn, so calls made in the same turn
      // (one request's messages, or requests parsed together) share its query.
      if (!busy && waiting.length === 1) queueMicrotask(() => busy || send());
    });
}

interface RowRecord {
  seq: string;
  message: InboundMessage;
  created_ms: string | number;
}

/** Creates the Postgres outbox. Connects lazily, on the first statement. */
export function createPostgresOutbox(options: PostgresOutboxOptions): Outbox {
  const timeoutMs = options.timeoutMs ?? 3000;
  const sql = postgres(options.url, {
    prepare: false,
    max: options.max ?? 3,
    idle_timeout: 20,
    connect_timeout: Math.max(1, Math.ceil((options.connectTimeoutMs ?? 3000) / 1000)),
    // Never reconnect-and-resend behind our back; every statement is ours to retry or not.
    onnotice: () => {},
    connection: { application_name: "lull" },
  });

  // Every append asks this, so concurrent asks share one statement (see coalescedLookup), sent
  // in one round trip (see inlineSql).
  const pending = coalescedLookup(async (conversations: string[]) => {
    const rows = await withDeadline(
      "check",
      timeoutMs,
      sql.unsafe(inlineSql`select distinct conversation from lull.outbox
            where conversation = any(${textArray(conversations)})`),
    );
    return new Set(rows.map((r) => String(r.conversation)));
  });

  const toRow = (r: RowRecord): OutboxRow => ({
    seq: String(r.seq),
    message: r.message,
    createdAtMs: Number(r.created_ms),
  });

  return {
    async write(message) {
      const rows = await withDeadline(
        "write",
        timeoutMs,
        sql`
          insert into lull.outbox (provider, conversation, message_id, message)
          values (${message.provider}, ${message.conversation}, ${message.id},
                  ${sql.json(message as unknown as postgres.JSONValue)})
          on conflict do nothing
          returning seq`,
      );
      return { status: rows.length === 1 ? "written" : "duplicate" };
    },

    async purgeConversation(conversation) {
      const rows = await withDeadline(
        "purge",
        timeoutMs,
        sql`delete from lull.outbox where conversation = ${conversation} returning seq`,
      );
      return rows.length;
    },

    hasPending: (conversation) => withDeadline("check", timeoutMs, pending(conversation)),

    async pendingConversations(limit) {
      // The oldest rows, by the primary key; their conversations in order of first appearance.
      const rows = await withDeadline(
        "list",
        timeoutMs,
        sql`select conversation from (
              select conversation, min(seq) as first_seq from (
                select conversation, seq from lull.outbox order by seq limit ${limit * 20}
              ) oldest group by conversation
            ) c order by first_seq limit ${limit}`,
      );
      return rows.map((r) => String(r.conversation));
    },

    async claimConversation<T>(
      conversation: string,
      claimOptions: ClaimOptions,
      fn: (claim: OutboxClaim) => Promise<T>,
    ): Promise<{ locked: true } | { locked: false; value: T }> {
      const waitMs = Math.max(0, claimOptions.waitMs ?? 0);
      try {
        const value = await sql.begin(async (tx) => {
          const lockKey = `lull.outbox:${conversation}`;
          if (waitMs === 0) {
            const [got] = await tx`
              select pg_try_advisory_xact_lock(hashtextextended(${lockKey}, 0)) as ok`;
            if (got?.ok !== true) throw new ClaimLockedSignal();
          } else {
            await tx`select set_config('lock_timeout', ${`${waitMs}ms`}, true)`;
            try {
              await tx`select pg_advisory_xact_lock(hashtextextended(${lockKey}, 0))`;
            } catch (err) {
              if (err instanceof postgres.PostgresError && err.code === LOCK_NOT_AVAILABLE) {
                throw new ClaimLockedSignal();
              }
              throw err;
            }
            await tx`select set_config('lock_timeout', '0', true)`;
          }
          const records = await tx<RowRecord[]>`
            select seq, message,
                   (extract(epoch from created_at) * 1000)::bigint as created_ms
            from lull.outbox where conversation = ${conversation}
            order by seq limit ${claimOptions.limit}`;
          const claim: OutboxClaim = {
            rows: records.map(toRow),
            async delete(seqs) {
              if (seqs.length === 0) return;
              await tx`delete from lull.outbox where seq = any(${seqs}::bigint[])`;
            },
          };
          return await fn(claim);
        });
        return { locked: false, value: value as T };
      } catch (err) {
        if (err instanceof ClaimLockedSignal) return { locked: true };
        throw toOutboxError("claim", err);
      }
    },

    async depth(): Promise<OutboxDepth> {
      const [row] = await withDeadline(
        "depth",
        timeoutMs,
        sql`select count(*)::bigint as depth,
                   (extract(epoch from (now() - min(created_at))) * 1000)::bigint as oldest_age_ms
            from lull.outbox`,
      );
      const age = row?.oldest_age_ms;
      return {
        depth: Number(row?.depth ?? 0),
        oldestAgeMs: age === null || age === undefined ? null : Math.max(0, Number(age)),
      };
    },

    async close() {
      await sql.end({ timeout: 2 });
    },
  };
}
