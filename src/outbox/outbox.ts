/**
 * The durable outbox's port: where a message goes when Redis is down or its answer is
 * ambiguous, so it can be answered 2xx and replayed into the buffers later. Declared here, in
 * the layer that uses it (ingest and replay); the Postgres adapter is postgres-outbox.ts.
 *
 * Rows are keyed by (provider, conversation, message id) with insert-or-ignore, so a provider
 * redelivering during an outage is stored once, and two conversations that reuse an id (a
 * Telegram message_id is only unique within its chat; generic ids are the sender's) never
 * collapse. Arrival order is a sequence number assigned by the database.
 */
import { LullError } from "../core/errors.ts";
import type { InboundMessage } from "../core/types.ts";

/** One outbox row. */
export interface OutboxRow {
  /** Arrival order (bigserial, as a decimal string: it may exceed 2^53). */
  seq: string;
  message: InboundMessage;
  /** Database time the row was written (ms since the epoch). */
  createdAtMs: number;
}

/** How deep the outbox is, by the database's clock. */
export interface OutboxDepth {
  /** Rows waiting to be replayed. */
  depth: number;
  /** Age of the oldest row in ms; null when the outbox is empty. */
  oldestAgeMs: number | null;
}

/**
 * A conversation's rows, held exclusively by one replayer (across isolates) until the callback
 * of {@link Outbox.claimConversation} returns. Deletions commit together when it returns.
 */
export interface OutboxClaim {
  /** The conversation's oldest rows, in arrival order. */
  rows: OutboxRow[];
  /** Deletes rows (by seq) in the claim's transaction. */
  delete(seqs: string[]): Promise<void>;
}

/** Options of {@link Outbox.claimConversation}. */
export interface ClaimOptions {
  /** Most rows handed to the callback. */
  limit: number;
  /**
   * How long to wait for another replayer holding the conversation. 0 = do not wait.
   * @default 0
   */
  waitMs?: number;
}

/** The outbox operations lull needs; every method throws {@link OutboxUnavailableError}. */
export interface Outbox {
  /**
   * Inserts the message unless (provider, conversation, id) is already there. Resolves only
   * after the insert committed.
   */
  write(message: InboundMessage): Promise<{ status: "written" | "duplicate" }>;
  /** Privacy request: deletes every row of the conversation; resolves to how many. */
  purgeConversation(conversation: string): Promise<number>;
  /** Whether the conversation has rows waiting (newer messages must not overtake them). */
  hasPending(conversation: string): Promise<boolean>;
  /** Conversations with rows, the one holding the oldest row first. */
  pendingConversations(limit: number): Promise<string[]>;
  /**
   * Runs `fn` over the conversation's rows while holding the conversation exclusively (a
   * transaction-scoped lock, so it works behind a transaction-mode pooler); the rows `fn`
   * deletes are gone when this resolves. Resolves `{ locked: true }` without calling `fn` when
   * another replayer holds the conversation longer than `waitMs`.
   */
  claimConversation<T>(
    conversation: string,
    options: ClaimOptions,
    fn: (claim: OutboxClaim) => Promise<T>,
  ): Promise<{ locked: true } | { locked: false; value: T }>;
  /** Row count and the oldest row's age. */
  depth(): Promise<OutboxDepth>;
  /** Releases connections. */
  close(): Promise<void>;
}

/**
 * The outbox could not be reached, or did not confirm. `ambiguous` is true when the statement
 * may have committed (a timeout, a connection lost mid-query): callers never assume "not
 * written" then, and the insert-or-ignore key makes a retry harmless.
 */
export class OutboxUnavailableError extends LullError {
  readonly ambiguous: boolean;
  /** What was being done (`append`, `replay`...). */
  readonly operation: string;
  /** PostgreSQL's SQLSTATE, when the server answered with one. */
  readonly pgCode?: string;
  constructor(
    operation: string,
    message: string,
    options: { ambiguous: boolean; pgCode?: string; cause?: unknown },
  ) {
    super("outbox_unavailable", `outbox ${operation} failed: ${message}`, {
      cause: options.cause,
    });
    this.operation = operation;
    this.pgCode = options.pgCode;
    this.ambiguous = options.ambiguous;
  }
}
