/**
 * Replays the outbox into the buffers once Redis answers again: each conversation's rows, in
 * arrival order, through the normal `store.append`, then deletes them in the same transaction
 * that holds the conversation. Dedup by provider message id makes it idempotent: a row whose
 * message also reached Redis (an ambiguous answer that had committed), or a replay cut short
 * after its appends but before its delete committed, is appended as a duplicate and removed.
 *
 * Safe from two isolates at once: a conversation is held by one replayer at a time (a
 * transaction-scoped advisory lock), and the rows of one conversation are appended strictly in
 * seq order by that one holder, so no interleaving can reorder them.
 */
import type { CircuitBreaker } from "../core/breaker.ts";
import { CircuitOpenError, ValidationError } from "../core/errors.ts";
import type { AppendResult, InboundMessage } from "../core/types.ts";
import type { Logger } from "../core/ports.ts";
import { maskConversation } from "../core/mask.ts";
import { type Outbox, OutboxUnavailableError } from "./outbox.ts";

/** What became of one replayed row. */
export type ReplayedRow = { conversation: string; result: AppendResult };

/** Options of {@link OutboxReplayer}. */
export interface OutboxReplayerOptions {
  outbox: Outbox;
  /** The store's append (already behind the Redis breaker). */
  append: (message: InboundMessage) => Promise<AppendResult>;
  /** Called for every row appended or found duplicate (metrics, in-isolate timers). */
  onReplayed?: (row: ReplayedRow) => void;
  logger?: Pick<Logger, "info" | "warn" | "error">;
  /** Masks conversations in logs unless true. @default false */
  logPii?: boolean;
}

/** Result of {@link OutboxReplayer.replayConversation}. */
export type ConversationReplay =
  /** Another replayer holds the conversation. */
  | { status: "locked" }
  | {
    status: "replayed";
    appended: number;
    duplicates: number;
    /** The last append's result (the conversation's buffer after the replay), if any. */
    last: AppendResult | null;
    /** Rows are left: the limit was reached, or an append failed (see `error`). */
    remaining: boolean;
    /** Redis failed mid-replay: stop replaying anything until it answers. */
    redisDown: boolean;
    /** A row that could not be appended for another reason; it stays, blocking the rest. */
    error?: string;
  };

/** Counts of {@link OutboxReplayer.replayBatch} (part of the `POST /lull/flush` answer). */
export interface ReplayCounts {
  /** Conversations whose rows were (at least partly) replayed. */
  conversations: number;
  /** Rows appended to a buffer. */
  appended: number;
  /** Rows Redis already had (deleted without a second append). */
  duplicates: number;
  /** Conversations another replayer held. */
  locked: number;
  /** Rows that failed for a reason other than Redis (they stay in the outbox). */
  errors: number;
  /** The replay stopped because Redis (or the outbox) did not answer. */
  stopped: "redis" | "outbox" | null;
}

const silent = { info() {}, warn() {}, error() {} };

/** Whether a store error means "Redis did not answer" rather than "this row is bad". */
function isRedisSide(err: unknown): boolean {
  return !(err instanceof ValidationError);
}

/** Replays the outbox; one per isolate (it also remembers whether this isolate used it). */
export class OutboxReplayer {
  readonly outbox: Outbox;
  readonly #append: OutboxReplayerOptions["append"];
  readonly #onReplayed?: OutboxReplayerOptions["onReplayed"];
  readonly #logger: Pick<Logger, "info" | "warn" | "error">;
  readonly #logPii: boolean;
  #usedOutbox = false;

  constructor(options: OutboxReplayerOptions) {
    this.outbox = options.outbox;
    this.#append = options.append;
    this.#onReplayed = options.onReplayed;
    this.#logger = options.logger ?? silent;
    this.#logPii = options.logPii ?? false;
  }

  /** This isolate wrote to the outbox: the next healthy append should trigger a replay. */
  markUsed(): void {
    this.#usedOutbox = true;
  }

  /** True once after {@link markUsed} (so the opportunistic replay is scheduled once). */
  takeUsed(): boolean {
    const used = this.#usedOutbox;
    this.#usedOutbox = false;
    return used;
  }

  /**
   * Replays up to `limit` of one conversation's rows, in order, holding the conversation so
   * no other replayer interleaves. Throws {@link OutboxUnavailableError} if the outbox fails.
   */
  async replayConversation(
    conversation: string,
    options: { limit?: number; waitMs?: number } = {},
  ): Promise<ConversationReplay> {
    const limit = Math.max(1, options.limit ?? 200);
    const claimed = await this.outbox.claimConversation(
      conversation,
      { limit, ...(options.waitMs !== undefined ? { waitMs: options.waitMs } : {}) },
      async (claim) => {
        const done: string[] = [];
        let appended = 0;
        let duplicates = 0;
        let last: AppendResult | null = null;
        let redisDown = false;
        let error: string | undefined;
        for (const row of claim.rows) {
          let result: AppendResult;
          try {
            result = await this.#append(row.message);
          } catch (err) {
            if (isRedisSide(err)) redisDown = true;
            else {
              error = err instanceof Error ? err.message : String(err);
              this.#logger.error("outbox row could not be replayed; it stays in the outbox", {
                conversation: maskConversation(conversation, this.#logPii),
                seq: row.seq,
                error,
              });
            }
            break;
          }
          done.push(row.seq);
          last = result;
          if (result.status === "duplicate") duplicates++;
          else appended++;
          this.#onReplayed?.({ conversation, result });
        }
        // Deleted in the claim's transaction: if the commit fails the rows come back and the
        // next replay appends them again, as duplicates.
        await claim.delete(done);
        return {
          appended,
          duplicates,
          last,
          remaining: done.length < claim.rows.length || claim.rows.length === limit,
          redisDown,
          ...(error !== undefined ? { error } : {}),
        };
      },
    );
    if (claimed.locked) return { status: "locked" };
    return { status: "replayed", ...claimed.value };
  }

  /**
   * One bounded replay pass (the sweep, and the opportunistic replay after a healthy append):
   * the conversations holding the oldest rows first, at most `maxConversations` of them and
   * `maxRows` rows in all, no new conversation after `budgetMs`. Stops at the first sign that
   * Redis is down. Never throws.
   */
  async replayBatch(
    options: {
      maxConversations?: number;
      maxRows?: number;
      budgetMs?: number;
      now?: () => number;
    } = {},
  ): Promise<ReplayCounts> {
    const counts: ReplayCounts = {
      conversations: 0,
      appended: 0,
      duplicates: 0,
      locked: 0,
      errors: 0,
      stopped: null,
    };
    const now = options.now ?? (() => Date.now());
    const started = now();
    const budgetMs = options.budgetMs ?? 10_000;
    let rowsLeft = Math.max(1, options.maxRows ?? 500);
    let conversations: string[];
    try {
      conversations = await this.outbox.pendingConversations(
        Math.max(1, options.maxConversations ?? 50),
      );
    } catch (err) {
      counts.stopped = "outbox";
      this.#logger.warn("outbox replay: listing failed", { error: describe(err) });
      return counts;
    }
    for (const conversation of conversations) {
      if (rowsLeft <= 0 || now() - started >= budgetMs) break;
      let replay: ConversationReplay;
      try {
        replay = await this.replayConversation(conversation, { limit: rowsLeft });
      } catch (err) {
        counts.stopped = "outbox";
        this.#logger.warn("outbox replay: claim failed", { error: describe(err) });
        break;
      }
      if (replay.status === "locked") {
        counts.locked++;
        continue;
      }
      const n = replay.appended + replay.duplicates;
      if (n > 0) counts.conversations++;
      counts.appended += replay.appended;
      counts.duplicates += replay.duplicates;
      rowsLeft -= n;
      if (replay.error !== undefined) counts.errors++;
      if (replay.redisDown) {
        counts.stopped = "redis";
        break;
      }
    }
    if (counts.appended + counts.duplicates > 0 || counts.stopped === "outbox") {
      this.#logger.info("outbox replayed", { ...counts, durationMs: now() - started });
    }
    return counts;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * `outbox` with every call behind `breaker`, so a dead Postgres costs each request one fast
 * failure instead of a connect timeout. An open breaker surfaces as an
 * {@link OutboxUnavailableError} (nothing was sent), so callers see one error class.
 */
export function withOutboxBreaker(outbox: Outbox, breaker: CircuitBreaker): Outbox {
  const guard = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await breaker.run(fn);
    } catch (err) {
      if (err instanceof CircuitOpenError) {
        throw new OutboxUnavailableError(operation, "circuit open", {
          ambiguous: false,
          cause: err,
        });
      }
      throw err;
    }
  };
  return {
    write: (m) => guard("write", () => outbox.write(m)),
    purgeConversation: (c) => guard("purge", () => outbox.purgeConversation(c)),
    hasPending: (c) => guard("check", () => outbox.hasPending(c)),
    pendingConversations: (n) => guard("list", () => outbox.pendingConversations(n)),
    claimConversation: (c, o, fn) => guard("claim", () => outbox.claimConversation(c, o, fn)),
    depth: () => guard("depth", () => outbox.depth()),
    close: () => outbox.close(),
  };
}

/** The outbox breaker: only outbox failures count (not what a replay callback did). */
export function isOutboxFailure(error: unknown): boolean {
  return error instanceof OutboxUnavailableError;
}
