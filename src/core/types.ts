/**
 * The core's shared vocabulary: messages, batches, and the {@link BufferStore} contract that
 * both the Redis store (Lua scripts) and the embedded MemoryStore implement with identical
 * semantics. All times are milliseconds of the *store's* clock (Redis `TIME`), never the
 * isolate's.
 *
 * Why one long file: it is the vocabulary every layer shares (messages, batches, events, the
 * store contract) and mostly doc comments; one file keeps {@link BufferStore} and the types its
 * methods take and return on one page.
 */

/** Where a message came from. */
export type Provider = "generic" | "whatsapp" | "telegram" | "twilio";

/** What an attachment is, whatever the provider called it. */
export type AttachmentKind =
  | "image"
  | "audio"
  | "video"
  | "document"
  | "sticker"
  | "location"
  | "contact";

/** A shared contact card (WhatsApp `contacts`, Telegram `contact`, a Twilio vCard has a `url`). */
export interface ContactCard {
  name?: string;
  /** Phone numbers as the card lists them (not normalised: they are data, not keys). */
  phones?: string[];
  /** The person's id on the provider, when the card names one (WhatsApp wa_id, Telegram user id). */
  userId?: string;
  vcard?: string;
}

/**
 * One normalised attachment. `id` is the provider's media handle (WhatsApp media id, Telegram
 * `file_id`): fetch it with the provider's API and your own credentials. `url` is set when the
 * provider gives a direct link (Twilio `MediaUrlN`, a WhatsApp location's url). Fields the
 * provider did not send are absent, never null.
 */
export interface Attachment {
  kind: AttachmentKind;
  id?: string;
  url?: string;
  mimeType?: string;
  caption?: string;
  filename?: string;
  /** As the provider sent it (WhatsApp: base64 SHA-256 of the file). */
  sha256?: string;
  /** Bytes, when the provider says. */
  size?: number;
  width?: number;
  height?: number;
  /** Seconds, for audio and video. */
  durationS?: number;
  /** A voice note (WhatsApp `audio.voice`, Telegram `voice`). */
  voice?: boolean;
  /** Animated sticker or GIF-like video (Telegram `animation`, `video_note` is `round`). */
  animated?: boolean;
  /** Telegram `video_note`: a round video message. */
  round?: boolean;
  /** A sticker's emoji. */
  emoji?: string;
  latitude?: number;
  longitude?: number;
  /** A location's (venue's) name. */
  name?: string;
  address?: string;
  contact?: ContactCard;
}

/** A message normalised at the edge, ready to buffer. */
export interface InboundMessage {
  /** Normalised conversation key (e.g. `whatsapp:9665...`, `support:42`). */
  conversation: string;
  /** Provider message id: the dedup key within the conversation. */
  id: string;
  provider: Provider;
  text: string;
  sender?: string;
  /** ISO timestamp the provider says the message was sent. */
  sentAt?: string;
  /** Normalised media, locations and contact cards, in the order the provider listed them. */
  attachments?: Attachment[];
  meta?: Record<string, unknown>;
}

/** A message as delivered: `receivedAt` is store time at append. */
export interface BufferedMessage {
  id: string;
  provider: Provider;
  text: string;
  sender?: string;
  sentAt?: string;
  receivedAt: string;
  /** Always present; `[]` for a text-only message. */
  attachments: Attachment[];
  meta: Record<string, unknown>;
}

/** Why a batch was flushed (DESIGN.md delivery payload). */
export type FlushReason =
  | "quiet"
  | "max_wait"
  | "max_messages"
  | "max_bytes"
  | "manual"
  | "fallback"
  | "requeue";

/** The body POSTed to the processor, exactly as DESIGN.md specifies. */
export interface Batch {
  /** Idempotency key; stable across retries of the same batch. */
  batchId: string;
  conversation: string;
  /** Fencing number, monotonic per conversation. */
  fence: number;
  /** 1 on first delivery, +1 on each retry. */
  attempt: number;
  reason: FlushReason;
  degraded: boolean;
  firstAt: string;
  lastAt: string;
  /** Message texts joined with "\n". */
  text: string;
  messages: BufferedMessage[];
}

/** Result of {@link BufferStore.append}. */
export interface AppendResult {
  /** `refused`: over a quota (LULL_MAX_MESSAGES_PER_MINUTE, LULL_PROVIDER_QUOTAS): not written. */
  status: "appended" | "duplicate" | "refused";
  /** Messages in the conversation's open buffer after this append. */
  size: number;
  /** When the open buffer becomes claimable (store ms); null if there is no open buffer. */
  flushAtMs: number | null;
  /**
   * Store time at append. For a duplicate, the caller's clock: the dedup test answers before the
   * script reads TIME, and a duplicate needs no store time (appendMessage ARGV[9]).
   */
  nowMs: number;
  /** This append set the timer marker: the caller should arm one in-isolate timer. */
  armTimer: boolean;
  /**
   * The append lowered its partition's wake-up to this time (a new burst, a full buffer): the
   * durable trigger should know (lull.wakeup). null when the wake-up did not move.
   */
  wakeAtMs: number | null;
  /**
   * With `wakeAtMs`: the partition and its wake index epoch right after this append lowered it.
   * The burst's timer settles the wake-up with it once it delivered the burst, unless another
   * lowering came since (see {@link Flusher.runTimer}).
   */
  wake?: PartitionWake;
  /** With `refused`: which quota, and when its window ends (ms from now). */
  refused?: { scope: "conversation" | "provider"; retryAfterMs: number };
}

/** Options of {@link BufferStore.append}. */
export interface AppendOptions {
  /**
   * Check the quotas. Off for messages that were acknowledged already (an outbox replay): those
   * must be buffered whatever the rate. @default true
   */
  quota?: boolean;
}

/** A batch handed to one flusher under the conversation's flush lock. */
export interface Claim {
  batch: Batch;
  /** Lock token; every later state change for this batch must present it. */
  token: string;
  leaseUntilMs: number;
  /** Store time the batch was first claimed (for LULL_RETRY_MAX_AGE_MS). */
  createdAtMs: number;
  nowMs: number;
}

/** Result of {@link BufferStore.claim}. */
export type ClaimResult =
  | { status: "claimed"; claim: Claim }
  /** Something is buffered or awaiting retry, but not claimable before `dueAtMs`. */
  | { status: "not_due"; dueAtMs: number; nowMs: number }
  /** Another flusher holds the lock. */
  | { status: "locked"; nowMs: number }
  /** Nothing buffered and no batch outstanding. */
  | { status: "empty"; nowMs: number };

/** Options for {@link BufferStore.fail}. */
export interface FailOptions {
  /** Last error, kept with the batch and in the DLQ. */
  error: string;
  /** Backoff delay (computed in TS: full jitter, honouring Retry-After). */
  delayMs: number;
  /** Straight to the DLQ (processor said 400/401/403/404/422). */
  permanent: boolean;
  /**
   * The processor's response body (at most {@link RESPONSE_BODY_MAX_BYTES}), kept in the dead
   * letter if this failure dead-letters the batch; the store masks it unless LULL_LOG_PII.
   */
  responseBody?: string;
}

/** How much of a processor's response body a dead letter keeps, in UTF-8 bytes. */
export const RESPONSE_BODY_MAX_BYTES = 2048;

/** Result of {@link BufferStore.fail}. */
export type FailResult =
  | { status: "retry"; retryAtMs: number; attempt: number }
  /** `dueAgainAtMs`: an open buffer queued behind the batch is claimable from then. */
  | { status: "dead"; attempt: number; dueAgainAtMs: number | null };

/** Result of {@link BufferStore.ack}. */
export interface AckResult {
  /** The conversation has a newer buffer; it is claimable at this time (store ms). */
  dueAgainAtMs: number | null;
  /**
   * The batch had been acknowledged already (its processed record, kept for
   * LULL_PROCESSED_TTL_MS, was found): a repeated ack changes nothing.
   */
  alreadyAcked: boolean;
  /**
   * Asked with {@link AckOptions.probePartition}: after this ack the conversation's partition
   * holds nothing at all (no due entry, no lease), so its next due time is none. False when not
   * asked, when a buffer queued behind the batch, or when anything else is left there.
   */
  partitionIdle: boolean;
}

/** Options of {@link BufferStore.ack}. */
export interface AckOptions {
  /**
   * The delivered batch's messages: their texts (masked unless LULL_LOG_PII, capped) ride on the
   * `delivered` event as its `texts` field, for the recent-batches view. @default none: the
   * event carries no texts
   */
  messages?: readonly Pick<BufferedMessage, "text" | "attachments">[];
  /**
   * Also answer {@link AckResult.partitionIdle}: one EXISTS of the buffer's meta, the due index
   * and the leases, which takes the place of the ack's read of the meta when none of them is left
   * (one command more when something is). What a timer needs to settle the wake-up it lowered
   * without reading the partition's due index again. @default false
   */
  probePartition?: boolean;
}

/** Result of {@link BufferStore.supersede}. */
export type SupersedeResult =
  /** The batch was put back ahead of newer messages; they flush together. */
  | { status: "merged"; size: number; flushAtMs: number }
  /** No newer messages were pending: nothing to merge with (caller treats it as a retry). */
  | { status: "nothing_newer" }
  /**
   * The batch is older than LULL_RETRY_MAX_AGE_MS (supersedes count toward it): nothing was
   * merged; the caller fails it, which dead-letters it.
   */
  | { status: "expired" };

/** Pending state of one conversation (GET /lull/conversations/:key, `lull buffers`). */
export interface ConversationState {
  conversation: string;
  partition: number;
  /** Open buffer (messages not yet claimed). */
  buffer: {
    size: number;
    bytes: number;
    firstAt: string;
    lastAt: string;
    flushAtMs: number;
    messages: BufferedMessage[];
  } | null;
  /** Batch claimed and in flight, or awaiting retry. */
  batch: {
    batchId: string;
    fence: number;
    attempt: number;
    reason: FlushReason;
    size: number;
    inFlight: boolean;
    nextAttemptAtMs: number | null;
    lastError: string | null;
  } | null;
  /** When the due index says the conversation is next claimable, null if not indexed. */
  dueAtMs: number | null;
  nowMs: number;
}

/** A dead-lettered batch: all messages, attempts and the last error. */
export interface DeadLetter {
  batchId: string;
  conversation: string;
  partition: number;
  fence: number;
  attempts: number;
  reason: FlushReason;
  lastError: string;
  /**
   * The processor's response body to the last attempt (capped at RESPONSE_BODY_MAX_BYTES,
   * masked as `<N chars>` unless LULL_LOG_PII); "" when there was none (timeout, network error).
   */
  responseBody: string;
  firstAt: string;
  lastAt: string;
  createdAt: string;
  deadAt: string;
  messages: BufferedMessage[];
}

/** Event types written to the capped event stream (by the scripts where possible). */
export type BufferEventType =
  | "appended"
  | "duplicate"
  | "due"
  | "claimed"
  | "delivered"
  | "retry_scheduled"
  | "dead_lettered"
  | "superseded"
  | "requeued"
  | "released"
  | "fallback"
  | "lock_lost"
  | "reaped";

/** One event. `conversation` is PII-masked at the source unless LULL_LOG_PII is true. */
export interface BufferEvent {
  /** Stream id (`<ms>-<seq>`), ordered within a partition. */
  id: string;
  partition: number;
  type: BufferEventType;
  at: string;
  conversation: string;
  fields: Record<string, string>;
}

/**
 * Counter names kept per partition (totals and per day), in the stable order every report uses.
 * The scripts name each counter where they count it (countEvent in src/scripts/includes/events.lua).
 */
export const COUNTER_NAMES = [
  "ingested",
  "duplicates",
  "batches",
  "batch_messages",
  "retries",
  "dead",
  "superseded",
  "reaped",
  "fallbacks",
] as const;

/** One of {@link COUNTER_NAMES}. */
export type CounterName = typeof COUNTER_NAMES[number];

/** Aggregated counters across partitions. */
export interface StatsSnapshot {
  totals: Record<CounterName, number>;
  /** Last 7 days (oldest first), day = UTC date `YYYY-MM-DD`. */
  days: { day: string; counters: Record<CounterName, number> }[];
  /**
   * Conversations waiting to flush: the due index, i.e. open buffers not yet claimed plus
   * batches awaiting a retry (an O(1) read per partition on Redis).
   */
  openBuffers: number;
  /** Batches claimed and being delivered (leases held). */
  inFlight: number;
  dlqSize: number;
  nowMs: number;
}

/** What {@link BufferStore.purgeConversation} removed (counts). */
export interface PurgeResult {
  /** Messages of the open buffer. */
  buffered: number;
  /** Messages of a batch that was awaiting retry. */
  batchMessages: number;
  /** Remembered provider message ids. */
  dedupIds: number;
  /**
   * Events naming the raw conversation key (written with LULL_LOG_PII), the `delivered` events
   * that carry its texts among them.
   */
  events: number;
  /** Dead letters of the conversation. */
  deadLetters: number;
}

/** Admin actions that leave an audit record. */
export type AuditAction =
  | "dlq_requeue"
  | "dlq_delete"
  | "flush"
  | "sweep"
  | "purge_conversation";

/** One admin action to audit (see {@link BufferStore.recordAudit}). */
export interface AuditEntry {
  /** Who: `token:<first 8 hex of SHA-256 of the admin token>` or `cli:<os user>`; never a secret. */
  actor: string;
  action: AuditAction;
  /** What it acted on: a batch id, or a conversation's masked label (raw only with LULL_LOG_PII). */
  target: string;
  /** `ok`, or what went wrong (`not_found`, `busy`, `error`). */
  result: string;
  /** Counts or an error message; "" when there is nothing to add. */
  detail?: string;
  /**
   * Fingerprint of the conversation acted on (first 12 hex of SHA-256 of its key), so a
   * privacy request can be matched against the log without the log holding the key.
   */
  subject?: string;
}

/** An audit record as read back: the entry plus when it was written (store time). */
export interface AuditRecord extends Required<AuditEntry> {
  id: string;
  at: string;
}

/** How long an audit record is kept: 90 days. */
export const AUDIT_RETENTION_MS = 90 * 86_400_000;
/** At most this many audit records are kept (oldest dropped first). */
export const AUDIT_MAX_ENTRIES = 10_000;

/**
 * How far back {@link BufferStore.latestEvents} looks for events of one type, per partition: the
 * whole capped stream (MAXLEN ~ 10000), so the read stays bounded.
 */
export const LATEST_EVENTS_SCAN_MAX = 10_000;

/** Per-partition stream cursor for {@link BufferStore.readEvents}. */
export type EventCursor = Record<number, string>;

/**
 * The buffer's atomic state machine. Each method is one atomic step (one Lua script on Redis).
 * Token-taking methods throw `LockLostError` when the lock is no longer the caller's, and
 * `BatchNotFoundError` when the batch named is not the conversation's current batch.
 */
export interface BufferStore {
  /**
   * Dedup by message id, buffer, update meta; index the burst when it opens or fills. The
   * append that opens a burst arms its in-isolate timer. A duplicate reports its buffer's size
   * and due time only if its first delivery opened or filled the burst (else 0 and null).
   */
  append(message: InboundMessage, options?: AppendOptions): Promise<AppendResult>;
  /**
   * Claim the conversation's next batch under its flush lock: a batch awaiting retry first,
   * else the open buffer if due (past the grace re-check). `force` claims an open buffer even
   * if not due (reason `manual`) and a retry batch even if its backoff has not elapsed.
   */
  claim(conversation: string, options?: { force?: boolean }): Promise<ClaimResult>;
  /**
   * Delivered: drop the batch, keep a processed record, release the lock, write the `delivered`
   * event (with the texts of `options.messages`, in that same write).
   */
  ack(
    conversation: string,
    batchId: string,
    token: string,
    options?: AckOptions,
  ): Promise<AckResult>;
  /** Not delivered: schedule a retry after `delayMs`, or dead-letter the whole batch. */
  fail(conversation: string, batchId: string, token: string, options: FailOptions): Promise<
    FailResult
  >;
  /** Renew the lease to now + LULL_LOCK_TTL_MS. */
  extend(conversation: string, batchId: string, token: string): Promise<{ leaseUntilMs: number }>;
  /** Processor answered 425: put the batch back ahead of newer messages, no attempt counted. */
  supersede(conversation: string, batchId: string, token: string): Promise<SupersedeResult>;
  /** Conversations in `partition` whose lease expired: made claimable again. */
  reapExpired(partition: number, limit: number): Promise<string[]>;
  /** Conversations in `partition` claimable now (due index score <= now), oldest first. */
  listDue(partition: number, limit: number): Promise<string[]>;
  /** Pending state of one conversation. */
  inspect(conversation: string): Promise<ConversationState>;
  /** Conversations in `partition` with an open buffer or outstanding batch. */
  listConversations(partition: number, limit: number): Promise<string[]>;
  /** Dead letters, newest first. */
  dlqList(options?: { limit?: number }): Promise<DeadLetter[]>;
  dlqGet(batchId: string): Promise<DeadLetter | null>;
  /**
   * Put a dead batch back as the conversation's next batch (reason `requeue`, attempt reset,
   * new fence, claimable now). Throws `ConversationBusyError` if a batch is outstanding.
   */
  /** `nowMs`: store time of the requeue (the batch is due from then). */
  dlqRequeue(batchId: string): Promise<{ conversation: string; nowMs: number }>;
  dlqDelete(batchId: string): Promise<boolean>;
  /**
   * Privacy request: removes the conversation's open buffer, a batch awaiting retry, dedup ids,
   * timer marker, due entry, dead letters and raw-keyed events. Keeps the fence (fences never
   * go back). Throws `ConversationBusyError` while a batch is in flight.
   */
  purgeConversation(conversation: string): Promise<PurgeResult>;
  /** Counters, day trend, sizes. */
  stats(): Promise<StatsSnapshot>;
  /** Read events after `cursor` (null = only events from now on; returns the cursor to use). */
  readEvents(cursor: EventCursor | null, options?: { limit?: number }): Promise<{
    events: BufferEvent[];
    cursor: EventCursor;
  }>;
  /**
   * The newest events (of `type` only, when given) across partitions, newest first, and the
   * cursor that follows on from the streams' current ends (hand it to readEvents). A type filter
   * looks at most {@link LATEST_EVENTS_SCAN_MAX} entries back per partition.
   */
  latestEvents(options?: { limit?: number; type?: BufferEventType }): Promise<{
    events: BufferEvent[];
    cursor: EventCursor;
  }>;
  /** Record an event that happens outside a script (fallback, lock lost). Best effort. */
  recordEvent(
    conversation: string,
    type: BufferEventType,
    fields: Record<string, string>,
    counter?: CounterName,
  ): Promise<void>;
  /**
   * Appends an admin action to the audit log (capped: AUDIT_RETENTION_MS, AUDIT_MAX_ENTRIES).
   * The entry is stored as given: callers pass fingerprints and masked labels, never secrets.
   */
  recordAudit(entry: AuditEntry): Promise<AuditRecord>;
  /** The newest audit records, newest first. */
  readAudit(options?: { limit?: number }): Promise<AuditRecord[]>;
  /** Store time in ms. */
  now(): Promise<number>;
  /** Liveness probe for /lull/health (PING or equivalent). */
  ping(): Promise<void>;
  /** Eviction policy and persistence of the server behind the store. */
  fitness(): Promise<StoreFitness>;
  /**
   * Lowers the wake-up of `conversation`'s partition to `atMs` (a due or lease time there), so
   * the sweep visits it by then. `append` does it itself where it must; the flusher calls it
   * after a retry, a supersede, an ack or a dead letter that rescheduled a buffer.
   */
  noteWake(conversation: string, atMs: number): Promise<void>;
  /**
   * The wake index epoch of `partition`: how many lowerings it has seen ("0": none), in the
   * index a {@link PartitionWake} names (`index`).
   */
  wakeEpoch(partition: number, index?: PartitionWake["index"]): Promise<string>;
  /**
   * Partitions whose wake-up has passed (the sweep's entry point), with their epochs, and the
   * earliest wake-up of all (null: nothing buffered, pending or leased anywhere). With a
   * database wake index (RedisStoreOptions.wakeIndex) the partitions come from both indexes and
   * the earliest is the Redis index's: the durable trigger reads the database's itself.
   */
  dueWakes(limit: number): Promise<DueWakes>;
  /**
   * After a sweep visited `wake.partition` (or a timer delivered the burst that lowered it):
   * recompute its wake-up from its due index and leases
   * (dropping it when both are empty), unless a noteWake happened since `wake.epoch` was read.
   * `known.nextDueAtMs`: that recomputation done already, read after `wake.epoch` was (`null`
   * after an ack that answered {@link AckResult.partitionIdle}), so it is not read again.
   * Returns the earliest wake-up of all partitions, or null when nothing is pending anywhere;
   * for a wake of the database index (`wake.index`), null, and the Redis index is not read.
   */
  settleWake(
    wake: PartitionWake,
    known?: { nextDueAtMs: number | null },
  ): Promise<{ nextWakeAtMs: number | null }>;
  /**
   * One step of the on-demand orphan repair (`lull repair`): scans about `count` keys from
   * `cursor` ("0" to start) and puts any buffer or batch that is in neither the due index nor
   * the leases back on the due index. Never called by the sweep.
   */
  repairStep(cursor: string, count: number): Promise<RepairStep>;
  /** Release connections. */
  close(): Promise<void>;
}

/** What a processor call came to. */
export type DeliveryOutcome =
  | { kind: "delivered" }
  | { kind: "retry"; error: string; retryAfterMs?: number; responseBody?: string }
  | { kind: "permanent"; error: string; responseBody?: string }
  | { kind: "supersede" };

/** What {@link BufferStore.dueWakes} found. */
export interface DueWakes {
  nowMs: number;
  partitions: PartitionWake[];
  earliestWakeAtMs: number | null;
}

/** One partition due for the sweep, and the wake index epoch read with it. */
export interface PartitionWake {
  partition: number;
  epoch: string;
  /** Where the wake-up is kept: the database wake index, or (absent) Redis's own. */
  index?: "database";
}

/** What one {@link BufferStore.repairStep} found. */
export interface RepairStep {
  /** Where the next step starts; "0" when the scan is complete. */
  cursor: string;
  /** Conversations examined in this step. */
  examined: number;
  /** Conversations put back on the due index, and what was unreachable. */
  repaired: { conversation: string; what: "batch" | "buffer" }[];
}

/**
 * Whether the store can keep lull's promise (start-up log, GET /lull/health): an eviction
 * policy that may evict keys without a TTL (allkeys-*) can drop live buffers and batches.
 */
export interface StoreFitness {
  /** `maxmemory-policy`, or null where the server does not say (Upstash: a console setting). */
  evictionPolicy: string | null;
  /** AOF persistence on; null when unknown. */
  appendOnly: boolean | null;
  /** What makes this store unfit to hold acknowledged messages (empty = fit). */
  problems: string[];
  /** What could not be checked, and what to check by hand. */
  notes: string[];
}

/** Delivers one batch; must honour `signal` (aborted at LULL_DELIVERY_TIMEOUT_MS). */
export type Processor = (batch: Batch, signal: AbortSignal) => Promise<DeliveryOutcome>;
