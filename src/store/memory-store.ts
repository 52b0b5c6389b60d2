/**
 * The embedded store: the buffer state machine of docs/state-machine.md in plain TypeScript, for
 * `lull dev` without Redis and for fast tests. It follows the Lua scripts step for step; every
 * method runs synchronously to completion (no `await` inside a state change), which is what makes
 * each one atomic on a single-threaded runtime, as a script is atomic on Redis.
 *
 * Redis TTLs are simulated against the injected clock: a key with an expiry is treated as gone
 * once `now > expiresAtMs` (Redis' own rule). Only garbage has one (dedup ids, processed
 * records, timer markers); live data (open buffers, batches, fences) never expires.
 *
 * Why one long file: it is the embedded twin of every Lua script, one step per method, sharing
 * one set of in-memory maps; kept in one file so the state machine reads top to bottom beside
 * docs/state-machine.md and redis-store.ts, method for method.
 */
import { type Clock, randomHex, systemClock } from "../core/clock.ts";
import type { BufferSettings } from "../core/config.ts";
import {
  BatchNotFoundError,
  ConversationBusyError,
  DeadLetterNotFoundError,
  LockLostError,
} from "../core/errors.ts";
import { partitionOf } from "../core/keys.ts";
import type {
  AckOptions,
  AckResult,
  AppendOptions,
  AppendResult,
  AuditEntry,
  AuditRecord,
  BufferEvent,
  BufferEventType,
  BufferStore,
  Claim,
  ClaimResult,
  ConversationState,
  CounterName,
  DeadLetter,
  DueWakes,
  EventCursor,
  FailOptions,
  FailResult,
  FlushReason,
  InboundMessage,
  PartitionWake,
  PurgeResult,
  RepairStep,
  StatsSnapshot,
  StoreFitness,
  SupersedeResult,
} from "../core/types.ts";
import {
  AUDIT_MAX_ENTRIES,
  AUDIT_RETENTION_MS,
  COUNTER_NAMES,
  LATEST_EVENTS_SCAN_MAX,
} from "../core/types.ts";
import { maskConversation } from "../core/mask.ts";
import {
  type BatchFields,
  type BufferMeta,
  buildBatch,
  byteLength,
  computeFlush,
  deadLetterResponseBody,
  decodeEntry,
  encodeMessage,
  fullAuditEntry,
  makeEntry,
  newBatchId,
  toIso,
} from "./codec.ts";
import { encodeDeliveredTexts } from "../core/delivered-texts.ts";

/** Options for {@link MemoryStore}. */
export interface MemoryStoreOptions {
  settings: BufferSettings;
  /** Store clock (plays Redis `TIME`). @default systemClock */
  clock?: Clock;
  /** Random hex for batch ids and lock tokens. @default randomHex(16) */
  random?: () => string;
}

/** Capped length of each partition's event stream (XADD MAXLEN ~ 10000 on Redis). */
export const EVENT_STREAM_MAX_LENGTH = 10_000;

const DAY_MS = 86_400_000;

/** `buffer` LIST + `meta` HASH: always written together; no TTL (live data). */
interface OpenBuffer {
  entries: string[];
  meta: BufferMeta;
  /** Carried over by a supersede: the first batch's createdAt and its attempts so far. */
  /** What a supersede carried over; `counted`: its messages already counted as ingested. */
  carried?: { createdAtMs: number; attempts: number; counted: number };
}

/** `batch` HASH + `batchMessages` LIST (no TTL). */
interface BatchRecord extends BatchFields {
  count: number;
  bytes: number;
  createdAtMs: number;
  nextAtMs: number;
  lastError: string;
  inFlight: boolean;
  entries: string[];
}

interface ConversationRecord {
  /** `seen` ZSET: message id -> first seen ms. */
  seen: Map<string, number>;
  seenExpiresAtMs: number | null;
  open: OpenBuffer | null;
  lock: { token: string; expiresAtMs: number } | null;
  /** `fence` STRING (INCR, no TTL: fences never go back). */
  fence: number;
  batch: BatchRecord | null;
  /** `processed(batchId)` markers -> expiry ms. */
  processed: Map<string, number>;
}

interface DeadRecord {
  batchId: string;
  conversation: string;
  fence: number;
  attempts: number;
  reason: FlushReason;
  lastError: string;
  responseBody: string;
  firstAtMs: number;
  lastAtMs: number;
  createdAtMs: number;
  deadAtMs: number;
  messages: string[];
}

interface PartitionState {
  /** `due` ZSET conversation -> ms. */
  due: Map<string, number>;
  /** `leases` ZSET conversation -> lease expiry ms. */
  leases: Map<string, number>;
  /** `dlq` ZSET + one dead-letter HASH per batch. */
  dlq: Map<string, DeadRecord>;
  events: BufferEvent[];
  lastEventMs: number;
  lastEventSeq: number;
  stats: Map<string, number>;
  daily: Map<string, number>;
}

/** Redis' rule: a key with expiry `when` is gone once `now > when`. */
function alive(expiresAtMs: number | null, nowMs: number): boolean {
  return expiresAtMs === null || nowMs <= expiresAtMs;
}

/** receivedAt (ms) of a buffer entry `<ms>|<json>`. */
function entryReceivedAtMs(entry: string): number {
  return Number(entry.slice(0, entry.indexOf("|")));
}

function sumBytes(entries: string[]): number {
  return entries.reduce((sum, e) => sum + byteLength(e), 0);
}

/** The oldest entries that fit maxMessages and maxBytes; at least one (oversized goes alone). */
function takeBounded(entries: string[], maxMessages: number, maxBytes: number): string[] {
  let bytes = 0;
  let n = 0;
  for (const entry of entries) {
    if (n >= maxMessages) break;
    const size = byteLength(entry);
    if (n > 0 && bytes + size > maxBytes) break;
    n++;
    bytes += size;
  }
  return entries.slice(0, n);
}

/** ZRANGEBYSCORE -inf max LIMIT 0 limit: by score, ties by member. */
/**
 * Redis orders equal scores by the members' bytes; UTF-8 byte order is code point order, which
 * JS's `<` (UTF-16 code units) gets wrong from U+E000 up against astral characters.
 */
export function compareMembers(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** nextDue: the earliest score of a partition's due index and leases, or null when both are empty. */
function nextDueOf(part: PartitionState): number | null {
  let best: number | null = null;
  for (const zset of [part.due, part.leases]) {
    for (const score of zset.values()) if (best === null || score < best) best = score;
  }
  return best;
}

function rangeByScore(zset: Map<string, number>, maxScore: number, limit: number): string[] {
  return [...zset.entries()]
    .filter(([, score]) => score <= maxScore)
    .sort((a, b) => a[1] - b[1] || compareMembers(a[0], b[0]))
    .slice(0, Math.max(0, limit))
    .map(([member]) => member);
}

function parseEventId(id: string): [number, number] {
  const dash = id.indexOf("-");
  if (dash < 0) return [Number(id) || 0, 0];
  return [Number(id.slice(0, dash)) || 0, Number(id.slice(dash + 1)) || 0];
}

function compareEventIds(a: string, b: string): number {
  const [am, as] = parseEventId(a);
  const [bm, bs] = parseEventId(b);
  return am - bm || as - bs;
}

/**
 * In-memory {@link BufferStore}: identical observable semantics to the Redis store, one process
 * only (nothing survives a restart). Used when no Redis is configured, said loudly by the caller.
 */
export class MemoryStore implements BufferStore {
  readonly settings: BufferSettings;
  private readonly clock: Clock;
  private readonly random: () => string;
  private readonly conversations = new Map<string, ConversationRecord>();
  /** The audit stream, oldest first (ids `<ms>-<seq>` like the Redis stream's). */
  private readonly audit: AuditRecord[] = [];
  private auditSeq = 0;
  private readonly partitions: PartitionState[];
  /** Quota windows (the rate STRINGs): key -> this minute's count, until windowEnd. */
  private readonly rates = new Map<string, { windowEnd: number; count: number }>();
  /** The wake index: partition -> wake-up ms (lower bound of its due and lease scores). */
  private readonly wake = new Map<number, number>();
  /** partition -> number of noteWake calls. */
  private readonly wakeEpochs = new Map<number, number>();
  private opsSinceGc = 0;

  constructor(options: MemoryStoreOptions) {
    this.settings = options.settings;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? (() => randomHex(16));
    this.partitions = Array.from({ length: this.settings.partitions }, () => ({
      due: new Map(),
      leases: new Map(),
      dlq: new Map(),
      events: [],
      lastEventMs: 0,
      lastEventSeq: 0,
      stats: new Map(),
      daily: new Map(),
    }));
  }

  // ---------------------------------------------------------------------------------------------
  // Steps of the state machine
  // ---------------------------------------------------------------------------------------------

  /** appendMessage: dedup, buffer, meta, due index, timer marker, counters. */
  async append(message: InboundMessage, options: AppendOptions = {}): Promise<AppendResult> {
    const now = this.clock.now();
    const s = this.settings;
    const conv = message.conversation;
    const p = this.partition(conv);
    const rec = this.record(conv, now);

    // 1. Ids are trimmed by the claim that empties the buffer (claimDueBuffer), not here.
    // Quotas, before anything is written; a duplicate is never refused.
    const convQuota = options.quota === false ? 0 : s.maxMessagesPerMinute ?? 0;
    const providerQuota = options.quota === false ? 0 : s.providerQuotas?.[message.provider] ?? 0;
    const provQuota = providerQuota > 0 ? Math.ceil(providerQuota / s.partitions) : 0;
    if ((convQuota > 0 || provQuota > 0) && !rec.seen.has(message.id)) {
      const windowEnd = (Math.floor(now / 60_000) + 1) * 60_000;
      const count = (key: string) => {
        const w = this.rates.get(key);
        return w && w.windowEnd > now ? w.count : 0;
      };
      const convKey = `c\u0000${conv}`;
      const provKey = `p\u0000${p}\u0000${message.provider}`;
      const over = convQuota > 0 && count(convKey) >= convQuota
        ? "conversation"
        : provQuota > 0 && count(provKey) >= provQuota
        ? "provider"
        : null;
      if (over) {
        return {
          status: "refused",
          size: 0,
          flushAtMs: null,
          nowMs: now,
          armTimer: false,
          wakeAtMs: null,
          refused: { scope: over, retryAfterMs: windowEnd - now },
        };
      }
      for (const [key, quota] of [[convKey, convQuota], [provKey, provQuota]] as const) {
        if (quota > 0) this.rates.set(key, { windowEnd, count: count(key) + 1 });
      }
    }
    if (rec.seen.has(message.id)) {
      this.count(p, "duplicates", 1, now);
      if (s.messageEvents) this.emit(p, conv, "duplicate", now, { id: message.id });
      // Only the redelivery of the message that opened the open buffer reads it (and notes the
      // wake again: its first delivery may have died before noting it).
      const head = rec.open?.entries[0];
      const open = head !== undefined && decodeEntry(head).id === message.id ? rec.open : null;
      const dueAtMs = open ? computeFlush(open.meta, s, open.meta.lastAtMs).flushAtMs : null;
      const wake = dueAtMs !== null ? this.lowerWake(p, dueAtMs) : undefined;
      return {
        status: "duplicate",
        size: open ? open.meta.count : 0,
        flushAtMs: dueAtMs,
        nowMs: now,
        armTimer: false,
        wakeAtMs: dueAtMs,
        ...(wake ? { wake } : {}),
      };
    }
    // 2. Remember the id.
    rec.seen.set(message.id, now);

    // 3. Buffer the entry and update meta.
    const entry = makeEntry(now, encodeMessage(message));
    if (!rec.open) {
      rec.open = {
        entries: [],
        meta: { firstAtMs: now, lastAtMs: now, count: 0, bytes: 0 },
      };
    }
    const open = rec.open;
    // A new burst: its ids are remembered for as long as the buffer is open (PERSIST).
    if (open.entries.length === 0) rec.seenExpiresAtMs = null;
    const wasFull = open.meta.count >= s.maxMessages || open.meta.bytes >= s.maxBytes;
    open.entries.push(entry);
    open.meta.lastAtMs = now;
    open.meta.count += 1;
    open.meta.bytes += byteLength(entry);
    const { flushAtMs } = computeFlush(open.meta, s, now);

    // 4. The burst's first message indexes it (NX: a retry's time stays), also behind an
    // outstanding batch, and the one that fills it lowers the entry to now; later ones only move
    // the due time later, so the entry stays a lower bound that the claim re-scores.
    let wakeAtMs: number | null = null;
    let wake: PartitionWake | undefined;
    const due = this.part(p).due;
    const indexed = due.get(conv);
    const opens = open.meta.count === 1;
    if (
      (opens && indexed === undefined) ||
      (!opens && flushAtMs === now && !wasFull && (indexed === undefined || flushAtMs < indexed))
    ) {
      due.set(conv, flushAtMs);
      wake = this.lowerWake(p, flushAtMs);
      wakeAtMs = flushAtMs;
    }

    // 5. The append that opens the burst arms its one in-isolate timer; events if asked for.
    if (s.messageEvents) {
      this.emit(p, conv, "appended", now, { id: message.id, size: String(open.meta.count) });
    }
    this.maybeGc(now);
    return {
      status: "appended",
      size: open.meta.count,
      flushAtMs,
      nowMs: now,
      armTimer: opens,
      wakeAtMs,
      ...(wake ? { wake } : {}),
    };
  }

  /** claimDueBuffer: take the outstanding batch, or swap the due open buffer into a new batch. */
  async claim(conversation: string, options?: { force?: boolean }): Promise<ClaimResult> {
    const now = this.clock.now();
    const s = this.settings;
    const force = options?.force === true;
    const p = this.partition(conversation);
    const part = this.part(p);
    const rec = this.record(conversation, now);

    // 1. Someone holds the lock. A burst queued behind the batch waits for the lease's end.
    if (rec.lock) {
      const indexed = part.due.get(conversation);
      if (rec.batch && indexed !== undefined && indexed < rec.lock.expiresAtMs) {
        part.due.set(conversation, rec.lock.expiresAtMs);
      }
      return { status: "locked", nowMs: now };
    }

    let batch = rec.batch;
    if (batch) {
      // 2. Outstanding batch: retry-due, or abandoned by a crashed flusher.
      if (!force && batch.nextAtMs > now) {
        part.due.set(conversation, batch.nextAtMs);
        return { status: "not_due", dueAtMs: batch.nextAtMs, nowMs: now };
      }
    } else if (rec.open) {
      // 3. Re-check the due rule from meta: the index is never the authority.
      const open = rec.open;
      const { flushAtMs, reason } = computeFlush(open.meta, s, now);
      if (!force && flushAtMs > now) {
        part.due.set(conversation, flushAtMs);
        return { status: "not_due", dueAtMs: flushAtMs, nowMs: now };
      }
      // Generation swap: later appends start a fresh buffer. A buffer over the limits gives
      // its oldest entries that fit (at least one); the rest stays open, in order.
      const taken = takeBounded(open.entries, s.maxMessages, s.maxBytes);
      const carried = open.carried;
      const fence = this.incrFence(rec);
      if (taken.length === open.entries.length) {
        rec.open = null;
        // No open buffer: the dedup records start their TTL. Every 8th batch, ids past it (with
        // the slack for the appending isolate's clock) go too.
        if (fence % 8 === 0) {
          for (const [id, atMs] of rec.seen) {
            if (atMs < now - s.dedupTtlMs) rec.seen.delete(id);
          }
        }
        rec.seenExpiresAtMs = now + s.dedupTtlMs;
      } else {
        const rest = open.entries.slice(taken.length);
        rec.open = {
          entries: rest,
          meta: {
            firstAtMs: entryReceivedAtMs(rest[0]!),
            lastAtMs: open.meta.lastAtMs,
            count: rest.length,
            bytes: open.meta.bytes - sumBytes(taken),
          },
        };
      }
      batch = {
        batchId: newBatchId(now, this.random()),
        conversation,
        fence,
        attempt: carried?.attempts ?? 0,
        reason: flushAtMs > now ? "manual" : reason,
        firstAtMs: open.meta.firstAtMs,
        lastAtMs: entryReceivedAtMs(taken[taken.length - 1]!),
        count: taken.length,
        bytes: sumBytes(taken),
        createdAtMs: carried?.createdAtMs ?? now,
        nextAtMs: 0,
        lastError: "",
        inFlight: false,
        entries: taken,
      };
      rec.batch = batch;
      // A superseded batch's messages were counted at its own claim.
      const fresh = batch.count - Math.min(batch.count, carried?.counted ?? 0);
      if (fresh > 0) this.count(p, "ingested", fresh, now);
    } else {
      // 4. Nothing here.
      part.due.delete(conversation);
      this.prune(conversation, rec, now);
      return { status: "empty", nowMs: now };
    }

    // 5. Take the batch under the lock.
    batch.attempt += 1;
    batch.inFlight = true;
    const token = this.random();
    const leaseUntilMs = now + s.lockTtlMs;
    rec.lock = { token, expiresAtMs: leaseUntilMs };
    part.leases.set(conversation, leaseUntilMs);
    part.due.delete(conversation);
    if (force) this.lowerWake(p, leaseUntilMs);
    this.emit(p, conversation, "claimed", now, {
      batchId: batch.batchId,
      attempt: String(batch.attempt),
      size: String(batch.count),
      reason: batch.reason,
    });
    const claim: Claim = {
      batch: buildBatch(batch, [...batch.entries]),
      token,
      leaseUntilMs,
      createdAtMs: batch.createdAtMs,
      nowMs: now,
    };
    return { status: "claimed", claim };
  }

  /** ackBatch: delivered; keep a processed marker, reschedule a newer buffer if any. */
  async ack(
    conversation: string,
    batchId: string,
    token: string,
    options: AckOptions = {},
  ): Promise<AckResult> {
    const now = this.clock.now();
    const p = this.partition(conversation);
    const rec = this.record(conversation, now);
    if (
      (!rec.lock || rec.lock.token !== token || rec.batch?.batchId !== batchId) &&
      rec.processed.has(batchId)
    ) {
      return { dueAgainAtMs: null, alreadyAcked: true, partitionIdle: false };
    }
    const batch = this.checkOwner(rec, conversation, batchId, token, "ackBatch");
    this.dropBatch(rec, p, conversation);
    rec.processed.set(batchId, now + this.settings.processedTtlMs);
    this.emit(p, conversation, "delivered", now, {
      batchId,
      size: String(batch.count),
      ...(options.messages
        ? { texts: encodeDeliveredTexts(options.messages, this.settings.logPii) }
        : {}),
    }, "batches");
    this.count(p, "batch_messages", batch.count, now);
    const dueAgainAtMs = this.rescheduleOpen(rec, p, conversation, now);
    this.prune(conversation, rec, now);
    const part = this.part(p);
    const partitionIdle = options.probePartition === true && dueAgainAtMs === null &&
      part.due.size === 0 && part.leases.size === 0;
    return { dueAgainAtMs, alreadyAcked: false, partitionIdle };
  }

  /** failBatch: schedule a retry, or dead-letter the whole batch. */
  async fail(
    conversation: string,
    batchId: string,
    token: string,
    options: FailOptions,
  ): Promise<FailResult> {
    const now = this.clock.now();
    const s = this.settings;
    const p = this.partition(conversation);
    const part = this.part(p);
    const rec = this.record(conversation, now);
    const batch = this.checkOwner(rec, conversation, batchId, token, "failBatch");
    const attempt = batch.attempt;
    const dead = options.permanent || attempt >= s.retryMaxAttempts ||
      now - batch.createdAtMs >= s.retryMaxAgeMs;
    if (dead) {
      part.dlq.set(batchId, {
        batchId,
        conversation,
        fence: batch.fence,
        attempts: attempt,
        reason: batch.reason,
        lastError: options.error,
        responseBody: deadLetterResponseBody(options.responseBody, s.logPii),
        firstAtMs: batch.firstAtMs,
        lastAtMs: batch.lastAtMs,
        createdAtMs: batch.createdAtMs,
        deadAtMs: now,
        messages: [...batch.entries],
      });
      this.dropBatch(rec, p, conversation);
      this.emit(p, conversation, "dead_lettered", now, {
        batchId,
        attempt: String(attempt),
        size: String(batch.count),
        error: options.error,
      }, "dead");
      const dueAgainAtMs = this.rescheduleOpen(rec, p, conversation, now);
      return { status: "dead", attempt, dueAgainAtMs };
    }
    const retryAtMs = now + Math.max(0, options.delayMs);
    batch.nextAtMs = retryAtMs;
    batch.lastError = options.error;
    batch.inFlight = false;
    rec.lock = null;
    part.leases.delete(conversation);
    part.due.set(conversation, retryAtMs);
    this.emit(p, conversation, "retry_scheduled", now, {
      batchId,
      attempt: String(attempt),
      retryAt: String(retryAtMs),
      error: options.error,
    }, "retries");
    return { status: "retry", retryAtMs, attempt };
  }

  /** extendLock: renew the lease. */
  async extend(
    conversation: string,
    batchId: string,
    token: string,
  ): Promise<{ leaseUntilMs: number }> {
    const now = this.clock.now();
    const p = this.partition(conversation);
    const rec = this.record(conversation, now);
    this.checkOwner(rec, conversation, batchId, token, "extendLock");
    const leaseUntilMs = now + this.settings.lockTtlMs;
    rec.lock = { token, expiresAtMs: leaseUntilMs };
    this.part(p).leases.set(conversation, leaseUntilMs);
    return { leaseUntilMs };
  }

  /** supersedeBatch: put the batch back ahead of the newer buffer; they flush together. */
  async supersede(conversation: string, batchId: string, token: string): Promise<SupersedeResult> {
    const now = this.clock.now();
    const s = this.settings;
    const p = this.partition(conversation);
    const rec = this.record(conversation, now);
    const batch = this.checkOwner(rec, conversation, batchId, token, "supersedeBatch");
    const open = rec.open;
    if (!open) return { status: "nothing_newer" };
    if (now - batch.createdAtMs >= s.retryMaxAgeMs) return { status: "expired" };
    open.entries = [...batch.entries, ...open.entries];
    open.meta = {
      firstAtMs: batch.firstAtMs,
      lastAtMs: open.meta.lastAtMs,
      count: batch.count + open.meta.count,
      bytes: batch.bytes + open.meta.bytes,
    };
    // The superseded delivery is not an attempt; MAX_AGE keeps counting from the first batch.
    open.carried = {
      createdAtMs: batch.createdAtMs,
      attempts: Math.max(0, batch.attempt - 1),
      counted: batch.count,
    };
    // The buffer is open again: its ids are remembered until it is claimed.
    rec.seenExpiresAtMs = null;
    this.dropBatch(rec, p, conversation);
    const { flushAtMs } = computeFlush(open.meta, s, now);
    this.part(p).due.set(conversation, flushAtMs);
    this.emit(p, conversation, "superseded", now, {
      batchId,
      size: String(open.meta.count),
    }, "superseded");
    return { status: "merged", size: open.meta.count, flushAtMs };
  }

  /** reapExpiredLeases: expired leases become claimable now (the claim takes the batch over). */
  async reapExpired(partition: number, limit: number): Promise<string[]> {
    const now = this.clock.now();
    const part = this.partitions[partition];
    if (!part) return [];
    const reaped = rangeByScore(part.leases, now, limit);
    for (const conv of reaped) {
      part.leases.delete(conv);
      part.due.set(conv, now);
      this.emit(partition, conv, "reaped", now, {}, "reaped");
    }
    return reaped;
  }

  /** listDue: conversations whose due score has passed, oldest first. */
  async listDue(partition: number, limit: number): Promise<string[]> {
    const part = this.partitions[partition];
    if (!part) return [];
    return rangeByScore(part.due, this.clock.now(), limit);
  }

  /** inspectConversation: read-only view of buffer, batch and due score. */
  async inspect(conversation: string): Promise<ConversationState> {
    const now = this.clock.now();
    const p = this.partition(conversation);
    const rec = this.peek(conversation, now);
    const open = rec?.open ?? null;
    const batch = rec?.batch ?? null;
    const due = this.part(p).due.get(conversation);
    return {
      conversation,
      partition: p,
      buffer: open
        ? {
          size: open.meta.count,
          bytes: open.meta.bytes,
          firstAt: toIso(open.meta.firstAtMs),
          lastAt: toIso(open.meta.lastAtMs),
          flushAtMs: computeFlush(open.meta, this.settings, open.meta.lastAtMs).flushAtMs,
          messages: open.entries.map(decodeEntry),
        }
        : null,
      batch: batch
        ? {
          batchId: batch.batchId,
          fence: batch.fence,
          attempt: batch.attempt,
          reason: batch.reason,
          size: batch.count,
          inFlight: batch.inFlight,
          nextAttemptAtMs: batch.nextAtMs > 0 ? batch.nextAtMs : null,
          lastError: batch.lastError === "" ? null : batch.lastError,
        }
        : null,
      dueAtMs: due ?? null,
      nowMs: now,
    };
  }

  /**
   * listConversations: the union of the due index (buffers, retries) and the leases (in flight),
   * due ones first by due time, then in-flight ones by lease expiry (ZRANGE order, as on Redis).
   */
  async listConversations(partition: number, limit: number): Promise<string[]> {
    const part = this.partitions[partition];
    if (!part) return [];
    const out: string[] = [];
    for (const zset of [part.due, part.leases]) {
      for (const conv of rangeByScore(zset, Infinity, limit)) {
        if (out.length >= limit) return out;
        if (!out.includes(conv)) out.push(conv);
      }
    }
    return out;
  }

  /** The repair scan over every conversation at once (cursor "0": complete after one step). */
  async repairStep(_cursor: string, _count: number): Promise<RepairStep> {
    const now = this.clock.now();
    const repaired: RepairStep["repaired"] = [];
    for (const [conversation, rec] of this.conversations) {
      const part = this.part(this.partition(conversation));
      if (part.due.has(conversation) || part.leases.has(conversation)) continue;
      if (rec.batch) {
        part.due.set(conversation, now);
        repaired.push({ conversation, what: "batch" });
      } else if (rec.open) {
        part.due.set(conversation, computeFlush(rec.open.meta, this.settings, now).flushAtMs);
        repaired.push({ conversation, what: "buffer" });
      } else continue;
      this.lowerWake(this.partition(conversation), 0);
    }
    return { cursor: "0", examined: this.conversations.size, repaired };
  }

  /** noteWake: lower the partition's wake-up (ZADD LT) and count the epoch. */
  async noteWake(conversation: string, atMs: number): Promise<void> {
    this.lowerWake(this.partition(conversation), Math.round(atMs));
  }

  /** dueWakes: partitions whose wake-up has passed, by wake-up then number, with epochs. */
  async dueWakes(limit: number): Promise<DueWakes> {
    const now = this.clock.now();
    const all = [...this.wake.values()];
    const earliestWakeAtMs = all.length === 0 ? null : Math.min(...all);
    const due = [...this.wake.entries()]
      .filter(([, at]) => at <= now)
      .sort((a, b) => a[1] - b[1] || compareMembers(String(a[0]), String(b[0])))
      .slice(0, Math.max(1, limit));
    return {
      nowMs: now,
      earliestWakeAtMs,
      partitions: due.map(([partition]) => ({
        partition,
        epoch: String(this.wakeEpochs.get(partition) ?? 0),
      })),
    };
  }

  /** nextDue + settleWake: recompute, or only lower when a noteWake came in since `epoch`. */
  async settleWake(
    wake: PartitionWake,
    known?: { nextDueAtMs: number | null },
  ): Promise<{ nextWakeAtMs: number | null }> {
    const part = this.partitions[wake.partition];
    if (part) {
      const next = known !== undefined ? known.nextDueAtMs : nextDueOf(part);
      if (String(this.wakeEpochs.get(wake.partition) ?? 0) === wake.epoch) {
        if (next === null) this.wake.delete(wake.partition);
        else this.wake.set(wake.partition, next);
      } else if (next !== null) this.lowerWake(wake.partition, next, false);
    }
    const all = [...this.wake.values()];
    return { nextWakeAtMs: all.length === 0 ? null : Math.min(...all) };
  }

  /** readWakeEpoch. */
  async wakeEpoch(partition: number): Promise<string> {
    return String(this.wakeEpochs.get(partition) ?? 0);
  }

  /** noteWake's ZADD LT and epoch count; answers the epoch it left. */
  private lowerWake(partition: number, atMs: number, countEpoch = true): PartitionWake {
    if (countEpoch) this.wakeEpochs.set(partition, (this.wakeEpochs.get(partition) ?? 0) + 1);
    const current = this.wake.get(partition);
    if (current === undefined || atMs < current) this.wake.set(partition, atMs);
    return { partition, epoch: String(this.wakeEpochs.get(partition) ?? 0) };
  }

  /** In-process memory: nothing evicts, nothing survives a restart (said loudly by lull dev). */
  async fitness(): Promise<StoreFitness> {
    return {
      evictionPolicy: null,
      appendOnly: false,
      problems: [],
      notes: ["embedded in-memory store: nothing survives a restart of this process"],
    };
  }

  /** Dead letters of every partition, newest first. */
  async dlqList(options?: { limit?: number }): Promise<DeadLetter[]> {
    const limit = options?.limit ?? 50;
    const all: DeadLetter[] = [];
    this.partitions.forEach((part, p) => {
      for (const dead of part.dlq.values()) all.push(this.toDeadLetter(dead, p));
    });
    all.sort((a, b) =>
      b.deadAt.localeCompare(a.deadAt) ||
      (a.batchId < b.batchId ? 1 : a.batchId > b.batchId ? -1 : 0)
    );
    return all.slice(0, Math.max(0, limit));
  }

  /** One dead letter by batch id, or null. */
  async dlqGet(batchId: string): Promise<DeadLetter | null> {
    const found = this.findDead(batchId);
    return found ? this.toDeadLetter(found.dead, found.partition) : null;
  }

  /** requeueDeadLetter: the dead batch becomes the conversation's next batch, claimable now. */
  async dlqRequeue(batchId: string): Promise<{ conversation: string; nowMs: number }> {
    const now = this.clock.now();
    const found = this.findDead(batchId);
    if (!found) throw new DeadLetterNotFoundError(batchId);
    const { dead, partition: p } = found;
    const conversation = dead.conversation;
    const rec = this.record(conversation, now);
    if (rec.batch) throw new ConversationBusyError(conversation, "dlqRequeue");
    rec.batch = {
      batchId: dead.batchId,
      conversation,
      fence: this.incrFence(rec),
      attempt: 0,
      reason: "requeue",
      firstAtMs: dead.firstAtMs,
      lastAtMs: dead.lastAtMs,
      count: dead.messages.length,
      bytes: dead.messages.reduce((sum, e) => sum + byteLength(e), 0),
      createdAtMs: now,
      nextAtMs: 0,
      lastError: "",
      inFlight: false,
      entries: [...dead.messages],
    };
    const part = this.part(p);
    part.dlq.delete(batchId);
    part.due.set(conversation, now);
    this.lowerWake(p, now);
    this.emit(p, conversation, "requeued", now, {
      batchId,
      size: String(dead.messages.length),
    });
    return { conversation, nowMs: now };
  }

  /** deleteDeadLetter: drop it for good; false if it was not there. */
  async dlqDelete(batchId: string): Promise<boolean> {
    const found = this.findDead(batchId);
    if (!found) return false;
    this.part(found.partition).dlq.delete(batchId);
    return true;
  }

  /** Totals, the last 7 days, and current sizes. */
  async stats(): Promise<StatsSnapshot> {
    const now = this.clock.now();
    const zero = () =>
      Object.fromEntries(COUNTER_NAMES.map((c) => [c, 0])) as Record<CounterName, number>;
    const totals = zero();
    const today = Math.floor(now / DAY_MS);
    const days = Array.from({ length: 7 }, (_, i) => ({
      dayNumber: today - 6 + i,
      counters: zero(),
    }));
    let dlqSize = 0;
    let inFlight = 0;
    let openBuffers = 0;
    for (const part of this.partitions) {
      for (const c of COUNTER_NAMES) {
        totals[c] += part.stats.get(c) ?? 0;
        for (const d of days) d.counters[c] += part.daily.get(`${d.dayNumber}:${c}`) ?? 0;
      }
      // A total is what was folded out of old buckets plus every bucket kept.
      for (const [key, value] of part.daily) {
        const name = key.slice(key.indexOf(":") + 1) as CounterName;
        if (name in totals) totals[name] += value;
      }
      dlqSize += part.dlq.size;
      inFlight += part.leases.size;
      openBuffers += part.due.size;
    }
    return {
      totals,
      days: days.map((d) => ({
        day: toIso(d.dayNumber * DAY_MS).slice(0, 10),
        counters: d.counters,
      })),
      openBuffers,
      inFlight,
      dlqSize,
      nowMs: now,
    };
  }

  /** Events after `cursor`, ordered by id; null cursor = start from the current end. */
  async readEvents(
    cursor: EventCursor | null,
    options?: { limit?: number },
  ): Promise<{ events: BufferEvent[]; cursor: EventCursor }> {
    const next: EventCursor = {};
    if (cursor === null) {
      this.partitions.forEach((part, p) => {
        next[p] = part.events.at(-1)?.id ?? "0-0";
      });
      return { events: [], cursor: next };
    }
    const limit = options?.limit ?? 100;
    const candidates: BufferEvent[] = [];
    this.partitions.forEach((part, p) => {
      const after = cursor[p] ?? "0-0";
      next[p] = after;
      for (const ev of part.events) {
        if (compareEventIds(ev.id, after) > 0) candidates.push(ev);
      }
    });
    candidates.sort((a, b) => compareEventIds(a.id, b.id) || a.partition - b.partition);
    const events = candidates.slice(0, Math.max(0, limit)).map((e) => ({
      ...e,
      fields: { ...e.fields },
    }));
    for (const ev of events) next[ev.partition] = ev.id;
    return { events, cursor: next };
  }

  /** readLatestEvents per partition, merged: newest first, cursor at the streams' ends. */
  async latestEvents(
    options: { limit?: number; type?: BufferEventType } = {},
  ): Promise<{ events: BufferEvent[]; cursor: EventCursor }> {
    const limit = Math.max(1, options.limit ?? 100);
    const cursor: EventCursor = {};
    const candidates: BufferEvent[] = [];
    this.partitions.forEach((part, p) => {
      cursor[p] = part.events.at(-1)?.id ?? "0-0";
      let found = 0;
      const oldest = Math.max(0, part.events.length - LATEST_EVENTS_SCAN_MAX);
      for (let i = part.events.length - 1; i >= 0 && found < limit; i--) {
        const ev = part.events[i]!;
        if (options.type !== undefined && i < oldest) break;
        if (options.type !== undefined && ev.type !== options.type) continue;
        candidates.push(ev);
        found++;
      }
    });
    candidates.sort((a, b) => b.at.localeCompare(a.at) || compareEventIds(b.id, a.id));
    const events = candidates.slice(0, limit).map((e) => ({ ...e, fields: { ...e.fields } }));
    return { events, cursor };
  }

  /** An event from outside the state machine (fallback, lock lost), with its counter. */
  async recordEvent(
    conversation: string,
    type: BufferEventType,
    fields: Record<string, string>,
    counter?: CounterName,
  ): Promise<void> {
    const now = this.clock.now();
    this.emit(this.partition(conversation), conversation, type, now, { ...fields }, counter);
    return;
  }

  /** purgeConversation: everything but the fence; busy while a batch is in flight. */
  async purgeConversation(conversation: string): Promise<PurgeResult> {
    const now = this.clock.now();
    const p = this.partition(conversation);
    const part = this.part(p);
    const rec = this.peek(conversation, now);
    if (rec?.lock) throw new ConversationBusyError(conversation, "purgeConversation");
    const result: PurgeResult = {
      buffered: rec?.open?.entries.length ?? 0,
      batchMessages: rec?.batch?.entries.length ?? 0,
      dedupIds: rec?.seen.size ?? 0,
      events: 0,
      deadLetters: 0,
    };
    if (rec) {
      rec.seen.clear();
      rec.seenExpiresAtMs = null;
      rec.open = null;
      rec.batch = null;
      this.prune(conversation, rec, now);
    }
    part.due.delete(conversation);
    part.leases.delete(conversation);
    const before = part.events.length;
    part.events = part.events.filter((e) => e.conversation !== conversation);
    result.events = before - part.events.length;
    for (const [batchId, dead] of part.dlq) {
      if (dead.conversation !== conversation) continue;
      part.dlq.delete(batchId);
      result.deadLetters++;
    }
    return result;
  }

  /** recordAudit: append, then trim to AUDIT_RETENTION_MS and AUDIT_MAX_ENTRIES. */
  async recordAudit(entry: AuditEntry): Promise<AuditRecord> {
    const now = this.clock.now();
    const last = this.audit.at(-1);
    const lastMs = last ? Number(last.id.split("-")[0]) : -1;
    const ms = Math.max(now, lastMs);
    this.auditSeq = ms === lastMs ? this.auditSeq + 1 : 0;
    const record: AuditRecord = {
      ...fullAuditEntry(entry),
      id: `${ms}-${this.auditSeq}`,
      at: toIso(now),
    };
    this.audit.push(record);
    while (
      this.audit.length > AUDIT_MAX_ENTRIES ||
      (this.audit.length > 0 && Number(this.audit[0]!.id.split("-")[0]) < now - AUDIT_RETENTION_MS)
    ) this.audit.shift();
    return { ...record };
  }

  /** readAudit: newest first. */
  async readAudit(options: { limit?: number } = {}): Promise<AuditRecord[]> {
    const limit = Math.max(1, options.limit ?? 100);
    return this.audit.slice(-limit).reverse().map((r) => ({ ...r }));
  }

  /** Store time. */
  async now(): Promise<number> {
    return this.clock.now();
  }

  /** Always healthy: there is nothing to reach. */
  async ping(): Promise<void> {
    return;
  }

  /** Nothing to release. */
  async close(): Promise<void> {
    return;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------------------

  private part(p: number): PartitionState {
    const part = this.partitions[p];
    if (!part) throw new RangeError(`partition ${p} out of range 0..${this.partitions.length - 1}`);
    return part;
  }

  private partition(conversation: string): number {
    return partitionOf(conversation, this.settings.partitions);
  }

  /** The conversation's record with expired keys dropped, or null if it has none. */
  private peek(conversation: string, now: number): ConversationRecord | null {
    const rec = this.conversations.get(conversation);
    if (!rec) return null;
    this.expire(rec, now);
    return rec;
  }

  /** The conversation's record, created if missing. */
  private record(conversation: string, now: number): ConversationRecord {
    const found = this.peek(conversation, now);
    if (found) return found;
    const rec: ConversationRecord = {
      seen: new Map(),
      seenExpiresAtMs: null,
      open: null,
      lock: null,
      fence: 0,
      batch: null,
      processed: new Map(),
    };
    this.conversations.set(conversation, rec);
    return rec;
  }

  /** Simulated key expiry. */
  private expire(rec: ConversationRecord, now: number): void {
    if (!alive(rec.seenExpiresAtMs, now)) {
      rec.seen.clear();
      rec.seenExpiresAtMs = null;
    }
    if (rec.lock && !alive(rec.lock.expiresAtMs, now)) rec.lock = null;
    for (const [id, exp] of rec.processed) if (!alive(exp, now)) rec.processed.delete(id);
  }

  /**
   * Forget a conversation whose keys are all gone (Redis would hold no key for it). A fence
   * never goes, so a conversation that had a batch is kept (one number) forever.
   */
  private prune(conversation: string, rec: ConversationRecord, now: number): void {
    this.expire(rec, now);
    if (
      rec.seen.size === 0 && !rec.open && !rec.lock &&
      rec.fence === 0 && !rec.batch && rec.processed.size === 0
    ) {
      this.conversations.delete(conversation);
    }
  }

  /** Expired data would otherwise linger in a long `lull dev` session: sweep now and then. */
  private maybeGc(now: number): void {
    if (++this.opsSinceGc < 1000) return;
    this.opsSinceGc = 0;
    for (const [conv, rec] of this.conversations) this.prune(conv, rec, now);
    for (const [key, w] of this.rates) if (w.windowEnd <= now) this.rates.delete(key);
  }

  /** INCR fence (no TTL). */
  private incrFence(rec: ConversationRecord): number {
    rec.fence += 1;
    return rec.fence;
  }

  /** The token check every owner step starts with (LOCK_LOST, then BATCH_NOT_FOUND). */
  private checkOwner(
    rec: ConversationRecord,
    conversation: string,
    batchId: string,
    token: string,
    script: string,
  ): BatchRecord {
    if (!rec.lock || rec.lock.token !== token) throw new LockLostError(conversation, script);
    if (!rec.batch || rec.batch.batchId !== batchId) throw new BatchNotFoundError(batchId, script);
    return rec.batch;
  }

  /** DEL batch, batchMessages, lock; ZREM leases. */
  private dropBatch(rec: ConversationRecord, p: number, conversation: string): void {
    rec.batch = null;
    rec.lock = null;
    this.part(p).leases.delete(conversation);
  }

  /** After a batch is gone: a waiting buffer gets its due time back; else unindex. */
  private rescheduleOpen(
    rec: ConversationRecord,
    p: number,
    conversation: string,
    now: number,
  ): number | null {
    const part = this.part(p);
    if (!rec.open) {
      part.due.delete(conversation);
      return null;
    }
    const { flushAtMs } = computeFlush(rec.open.meta, this.settings, now);
    part.due.set(conversation, flushAtMs);
    return flushAtMs;
  }

  private findDead(batchId: string): { dead: DeadRecord; partition: number } | null {
    for (let p = 0; p < this.partitions.length; p++) {
      const dead = this.part(p).dlq.get(batchId);
      if (dead) return { dead, partition: p };
    }
    return null;
  }

  private toDeadLetter(dead: DeadRecord, partition: number): DeadLetter {
    return {
      batchId: dead.batchId,
      conversation: dead.conversation,
      partition,
      fence: dead.fence,
      attempts: dead.attempts,
      reason: dead.reason,
      lastError: dead.lastError,
      responseBody: dead.responseBody,
      firstAt: toIso(dead.firstAtMs),
      lastAt: toIso(dead.lastAtMs),
      createdAt: toIso(dead.createdAtMs),
      deadAt: toIso(dead.deadAtMs),
      messages: dead.messages.map(decodeEntry),
    };
  }

  /** XADD to the partition's capped stream (ids `<ms>-<seq>`, never going back) + counter. */
  private emit(
    p: number,
    conversation: string,
    type: BufferEventType,
    now: number,
    fields: Record<string, string>,
    counter?: CounterName,
  ): void {
    const part = this.part(p);
    if (now > part.lastEventMs) {
      part.lastEventMs = now;
      part.lastEventSeq = 0;
    } else {
      part.lastEventSeq += 1;
    }
    part.events.push({
      id: `${part.lastEventMs}-${part.lastEventSeq}`,
      partition: p,
      type,
      at: toIso(now),
      conversation: maskConversation(conversation, this.settings.logPii),
      fields,
    });
    if (part.events.length > EVENT_STREAM_MAX_LENGTH) {
      part.events.splice(0, part.events.length - EVENT_STREAM_MAX_LENGTH);
    }
    if (counter) this.count(p, counter, 1, now);
  }

  /**
   * HINCRBY of the day's bucket. `stats` holds only what the day's first `ingested` folded out
   * of buckets older than a week: a total is `stats` + every bucket kept.
   */
  private count(p: number, counter: CounterName, by: number, now: number): void {
    const part = this.part(p);
    const day = Math.floor(now / DAY_MS);
    const field = `${day}:${counter}`;
    if (counter === "ingested" && !part.daily.has(field)) {
      for (const [key, value] of [...part.daily]) {
        const colon = key.indexOf(":");
        if (Number(key.slice(0, colon)) >= day - 7) continue;
        const name = key.slice(colon + 1);
        part.stats.set(name, (part.stats.get(name) ?? 0) + value);
        part.daily.delete(key);
      }
    }
    part.daily.set(field, (part.daily.get(field) ?? 0) + by);
  }
}
