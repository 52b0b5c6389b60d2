/**
 * The Redis implementation of {@link BufferStore}: every method is one Lua script per atomic
 * step of docs/state-machine.md, run through {@link runScript}. Keys come from {@link Keys}
 * (one hash slot per script); times are Redis `TIME`; conversation labels in events are masked
 * here unless logPii.
 *
 * Why one long file: one method per {@link BufferStore} operation, each building one script's
 * KEYS/ARGV and decoding its reply with the shared helpers at the top and bottom; kept together
 * so it reads beside memory-store.ts method for method, and the contract is one file to check.
 */
import { randomHex } from "../core/clock.ts";
import type { BufferSettings } from "../core/config.ts";
import { Keys } from "../core/keys.ts";
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
import {
  ConfigError,
  DeadLetterNotFoundError,
  LayoutVersionError,
  PartitionMismatchError,
} from "../core/errors.ts";
import { maskConversation } from "../core/mask.ts";
import type { DatabaseWakeIndex } from "../core/ports.ts";
import type { RedisClient } from "../redis/redis-client.ts";
import { runScript, type ScriptContext } from "../redis/run-script.ts";
import { type LuaScript, scripts } from "../scripts/generated.ts";
import {
  buildBatch,
  computeFlush,
  deadLetterResponseBody,
  decodeEntry,
  encodeMessage,
  fullAuditEntry,
  newBatchId,
  toIso,
} from "./codec.ts";
import { encodeDeliveredTexts } from "../core/delivered-texts.ts";

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  client: RedisClient;
  settings: BufferSettings;
  /**
   * Source of lock tokens and batch-id randomness (tests inject a deterministic one).
   * @default 16 random bytes as hex
   */
  random?: () => string;
  /**
   * This isolate's clock, ms. Only a duplicate's day bucket, the dedup record's provisional
   * score (appendMessage ARGV[9]) and an ack's event time and day bucket when no buffer opened
   * during its flight (ackBatch ARGV[8]) come from it; every flush rule runs on Redis TIME.
   * @default Date.now
   */
  now?: () => number;
  /**
   * Keep the partitions' wake-ups in this index (the project's Postgres) rather than in Redis:
   * a burst then runs no wake-index command in Redis. A lowering it refuses goes to the Redis
   * wake index instead, and {@link dueWakes} reads both, so nothing depends on it being up.
   */
  wakeIndex?: DatabaseWakeIndex;
  /** A call of `wakeIndex` failed and the Redis index stood in (or, for a read, was read alone). */
  onWakeIndexError?: (operation: string, error: unknown) => void;
}

const DAY_MS = 86_400_000;

/** Version of the key layout these scripts read and write (recorded by checkLayout). */
export const LAYOUT_VERSION = 2;

/** Eviction policies that may evict keys without a TTL: lull's live data has none. */
const EVICTS_LIVE_DATA = /^allkeys-/;

/** `field:value` of an INFO section, or null. */
function infoField(section: string, field: string): string | null {
  const match = section.match(new RegExp(`^${field}:(.*)$`, "m"));
  return match ? match[1]!.trim() : null;
}

function zeroCounters(): Record<CounterName, number> {
  return Object.fromEntries(COUNTER_NAMES.map((c) => [c, 0])) as Record<CounterName, number>;
}

/** A flat [field, value, ...] reply as an object. */
function pairs(reply: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const list = (reply ?? []) as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) out[String(list[i])] = String(list[i + 1]);
  return out;
}

function strings(reply: unknown): string[] {
  return ((reply ?? []) as unknown[]).map((v) => String(v));
}

/** BufferStore on Redis (TCP or Upstash REST: anything speaking {@link RedisClient}). */
export class RedisStore implements BufferStore {
  readonly keys: Keys;
  private readonly client: RedisClient;
  private readonly s: BufferSettings;
  private readonly random: () => string;
  private readonly isolateNow: () => number;
  private readonly wakeIndex: DatabaseWakeIndex | undefined;
  private readonly onWakeIndexError: (operation: string, error: unknown) => void;

  constructor(options: RedisStoreOptions) {
    this.client = options.client;
    this.s = options.settings;
    this.keys = new Keys(options.settings.keyPrefix, options.settings.partitions);
    this.random = options.random ?? (() => randomHex(16));
    this.isolateNow = options.now ?? Date.now;
    this.wakeIndex = options.wakeIndex;
    this.onWakeIndexError = options.onWakeIndexError ?? (() => {});
  }

  private partitionIds(): number[] {
    return Array.from({ length: this.s.partitions }, (_, i) => i);
  }

  private label(conversation: string): string {
    return maskConversation(conversation, this.s.logPii);
  }

  /** Pending or settled layout check; null until the first call, or after a transport error. */
  private layoutCheck: Promise<void> | null = null;
  /** The layout check passed: later calls go straight to their script (no await on it). */
  private layoutOk = false;

  private run(
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
    context: ScriptContext = {},
  ): Promise<unknown> {
    if (this.layoutOk) return runScript(this.client, script, keys, args, context);
    return this.checkLayout().then(() => runScript(this.client, script, keys, args, context));
  }

  /**
   * Compares LULL_PARTITIONS with the count recorded in Redis (recording it on first use), once
   * per store before its first script, and refuses a layout version newer than
   * {@link LAYOUT_VERSION}. A mismatch is permanent: every call then throws
   * {@link PartitionMismatchError} or {@link LayoutVersionError}. A transport error is not: the
   * next call checks again.
   */
  checkLayout(): Promise<void> {
    this.layoutCheck ??= (async () => {
      const r = await runScript(this.client, scripts.checkLayout, [this.keys.layout()], [
        this.s.partitions,
        LAYOUT_VERSION,
      ]) as unknown[];
      const recorded = Number(r[0]);
      if (recorded !== this.s.partitions) {
        throw new PartitionMismatchError(this.s.partitions, recorded);
      }
      // A newer lull's layout: these scripts would misread it. (A lower version is an older
      // record of this layout: the scripts carry over the older forms they meet.)
      const version = Number(r[1]);
      if (version > LAYOUT_VERSION) throw new LayoutVersionError(version, LAYOUT_VERSION);
      this.layoutOk = true;
    })().catch((error) => {
      if (!(error instanceof ConfigError)) this.layoutCheck = null;
      throw error;
    });
    return this.layoutCheck;
  }

  async noteWake(conversation: string, atMs: number): Promise<void> {
    await this.lowerWake(conversation, atMs);
  }

  /**
   * noteWake, answering the partition and the epoch the lowering left: in the database wake
   * index when there is one and it answers, else in Redis.
   */
  private async lowerWake(conversation: string, atMs: number): Promise<PartitionWake> {
    const partition = this.keys.partitionOf(conversation);
    if (this.wakeIndex) {
      try {
        const epoch = await this.wakeIndex.lowerPartition(
          this.s.keyPrefix,
          partition,
          Math.round(atMs),
        );
        return { partition, epoch, index: "database" };
      } catch (error) {
        this.onWakeIndexError("lower", error);
      }
    }
    const w = this.keys.wake();
    const epoch = await this.run(scripts.noteWake, [w.wake, w.epoch], [
      partition,
      Math.round(atMs),
    ]);
    return { partition, epoch: String(epoch) };
  }

  async wakeEpoch(partition: number, index?: PartitionWake["index"]): Promise<string> {
    if (index === "database") {
      return await this.databaseIndex().partitionEpoch(this.s.keyPrefix, partition);
    }
    return String(await this.run(scripts.readWakeEpoch, [this.keys.wake().epoch], [partition]));
  }

  private databaseIndex(): DatabaseWakeIndex {
    if (!this.wakeIndex) throw new Error("a database wake-up, but this store has no wake index");
    return this.wakeIndex;
  }

  async dueWakes(limit: number): Promise<DueWakes> {
    const w = this.keys.wake();
    const r = await this.run(scripts.dueWakes, [w.wake, w.epoch], [Math.max(1, limit)]) as [
      unknown,
      unknown[],
      unknown,
    ];
    const nowMs = Number(r[0]);
    const flat = strings(r[1]);
    const partitions: PartitionWake[] = [];
    // A partition number from another layout cannot be swept here (checkLayout refuses that).
    const ours = (partition: number) => partition >= 0 && partition < this.s.partitions;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const partition = Number(flat[i]);
      if (ours(partition)) partitions.push({ partition, epoch: flat[i + 1]! });
    }
    if (this.wakeIndex) {
      // On Redis time, as the due times it holds are. Unreadable: the Redis index alone; the
      // durable trigger lives in that database, so it is not calling sweeps meanwhile anyway.
      try {
        for (
          const due of await this.wakeIndex.duePartitions(
            this.s.keyPrefix,
            nowMs,
            Math.max(1, limit),
          )
        ) {
          if (ours(due.partition)) partitions.push({ ...due, index: "database" });
        }
      } catch (error) {
        this.onWakeIndexError("due", error);
      }
    }
    const earliest = r[2] as unknown[];
    return {
      nowMs,
      partitions,
      earliestWakeAtMs: earliest.length === 0 ? null : Number(earliest[0]),
    };
  }

  async settleWake(
    wake: PartitionWake,
    known?: { nextDueAtMs: number | null },
  ): Promise<{ nextWakeAtMs: number | null }> {
    let nextAt = known?.nextDueAtMs;
    if (nextAt === undefined) {
      const p = this.keys.partition(wake.partition);
      const next = await this.run(scripts.nextDue, [p.due, p.leases], []) as unknown[];
      nextAt = next.length === 0 ? null : Number(next[0]);
    }
    if (wake.index === "database") {
      await this.databaseIndex().settlePartition(
        this.s.keyPrefix,
        wake.partition,
        wake.epoch,
        nextAt,
      );
      return { nextWakeAtMs: null };
    }
    const w = this.keys.wake();
    const earliest = await this.run(scripts.settleWake, [w.wake, w.epoch], [
      wake.partition,
      wake.epoch,
      nextAt ?? "",
    ]) as unknown[];
    return { nextWakeAtMs: earliest.length === 0 ? null : Number(earliest[0]) };
  }

  async repairStep(cursor: string, count: number): Promise<RepairStep> {
    const prefix = this.s.keyPrefix;
    const r = await this.run(scripts.scanKeys, [], [
      cursor,
      `${prefix}:{${prefix}:*}:c:*`,
      Math.max(1, Math.floor(count)),
    ]) as unknown[];
    const conversations = new Set<string>();
    for (const key of strings(r[1])) {
      const match = key.match(/\}:c:([^:]+):(meta|batch)$/);
      if (!match) continue;
      try {
        conversations.add(decodeURIComponent(match[1]!));
      } catch {
        // Not a key lull wrote: leave it alone.
      }
    }
    const repaired: RepairStep["repaired"] = [];
    for (const conversation of conversations) {
      const k = this.keys.conversation(conversation);
      const what = await this.run(
        scripts.reindexConversation,
        [k.meta, k.buffer, k.batch, k.partition.due, k.partition.leases],
        [conversation, this.flushRules()],
        { conversation },
      );
      if (what === "batch" || what === "buffer") {
        await this.noteWake(conversation, 0);
        repaired.push({ conversation, what });
      }
    }
    return { cursor: String(r[0]), examined: conversations.size, repaired };
  }

  async fitness(): Promise<StoreFitness> {
    const r = await this.run(scripts.readServerInfo, [], []) as unknown[];
    const memory = String(r[0] ?? "");
    const persistence = String(r[1] ?? "");
    const evictionPolicy = infoField(memory, "maxmemory_policy");
    const aof = infoField(persistence, "aof_enabled");
    const problems: string[] = [];
    const notes: string[] = [];
    if (evictionPolicy === null) {
      notes.push(
        "the eviction policy cannot be read here. On Upstash keep Eviction disabled (the " +
          "default) in the database's Configuration: its one policy, optimistic-volatile, " +
          "evicts keys without a TTL too, and lull's live buffers and batches have none",
      );
    } else if (EVICTS_LIVE_DATA.test(evictionPolicy)) {
      problems.push(
        `maxmemory-policy is ${evictionPolicy}: Redis may evict live buffers and batches ` +
          "(they carry no TTL); use noeviction (or a volatile-* policy)",
      );
    }
    if (aof === "0") {
      notes.push("AOF is off: a Redis restart loses what was written since the last snapshot");
    }
    return {
      evictionPolicy,
      appendOnly: aof === null ? null : aof === "1",
      problems,
      notes,
    };
  }

  /** ARGV of the quotas: per conversation, and the provider's share of this partition. */
  private quotaArgs(message: InboundMessage, options: AppendOptions): number[] {
    if (options.quota === false) return [0, 0];
    const perProvider = this.s.providerQuotas?.[message.provider] ?? 0;
    return [
      this.s.maxMessagesPerMinute ?? 0,
      perProvider > 0 ? Math.ceil(perProvider / this.s.partitions) : 0,
    ];
  }

  /** The flush rules as the scripts take them: one packed ARGV (the flush include decodes it). */
  private flushRules(): string {
    const s = this.s;
    return [s.windowMs, s.graceMs, s.maxWaitMs, s.maxMessages, s.maxBytes]
      .map((n) => Math.max(0, Math.round(n))).join(",");
  }

  async append(message: InboundMessage, options: AppendOptions = {}): Promise<AppendResult> {
    const k = this.keys.conversation(message.conversation);
    const p = k.partition;
    const r = await this.run(
      scripts.appendMessage,
      [
        k.seen,
        k.buffer,
        k.meta,
        p.due,
        p.events,
        p.daily,
        k.rate,
        p.providerRate(message.provider),
      ],
      [
        message.conversation,
        // The label only goes into per-message events: no masking work when they are off.
        this.s.messageEvents ? this.label(message.conversation) : "",
        message.id,
        encodeMessage(message),
        this.flushRules(),
        ...this.quotaArgs(message, options),
        this.s.messageEvents ? "1" : "0",
        Math.round(this.isolateNow()),
      ],
      { conversation: message.conversation },
    ) as unknown[];
    if (r[0] === "refused") {
      return {
        status: "refused",
        size: 0,
        flushAtMs: null,
        nowMs: Number(r[3]),
        armTimer: false,
        wakeAtMs: null,
        refused: {
          scope: r[1] === "provider" ? "provider" : "conversation",
          retryAfterMs: Number(r[2]),
        },
      };
    }
    const size = Number(r[1]);
    const flushAt = Number(r[2]);
    // Before the caller acknowledges: the sweep must be able to find the new due entry.
    const wakes = Number(r[5]) === 1;
    const result: AppendResult = {
      status: r[0] === "duplicate" ? "duplicate" : "appended",
      size,
      flushAtMs: size > 0 ? flushAt : null,
      nowMs: Number(r[3]),
      armTimer: Number(r[4]) === 1,
      wakeAtMs: wakes ? flushAt : null,
    };
    if (wakes) result.wake = await this.lowerWake(message.conversation, flushAt);
    return result;
  }

  async claim(conversation: string, options: { force?: boolean } = {}): Promise<ClaimResult> {
    const k = this.keys.conversation(conversation);
    const p = k.partition;
    const batchId = newBatchId(Date.now(), this.random().slice(0, 16));
    const token = this.random();
    const r = await this.run(
      scripts.claimDueBuffer,
      [
        k.lock,
        k.batch,
        k.batchMessages,
        k.meta,
        k.buffer,
        k.fence,
        p.due,
        p.leases,
        p.events,
        k.seen,
        p.stats,
        p.daily,
      ],
      [
        conversation,
        this.label(conversation),
        batchId,
        token,
        options.force ? "1" : "0",
        this.flushRules(),
        this.s.lockTtlMs,
        this.s.dedupTtlMs,
      ],
      { conversation, batchId },
    ) as unknown[];
    switch (r[0]) {
      case "locked":
        return { status: "locked", nowMs: Number(r[1]) };
      case "empty":
        return { status: "empty", nowMs: Number(r[1]) };
      case "not_due":
        return { status: "not_due", dueAtMs: Number(r[1]), nowMs: Number(r[2]) };
    }
    const [
      ,
      now,
      leaseUntil,
      id,
      fence,
      attempt,
      reason,
      firstAt,
      lastAt,
      createdAt,
      entries,
      held,
    ] = r;
    // A forced claim can take a conversation whose due time was after its new lease ends.
    if (options.force) await this.noteWake(conversation, Number(leaseUntil));
    const batch = buildBatch({
      batchId: String(id),
      conversation,
      fence: Number(fence),
      attempt: Number(attempt),
      reason: String(reason) as FlushReason,
      firstAtMs: Number(firstAt),
      lastAtMs: Number(lastAt),
    }, strings(entries));
    return {
      status: "claimed",
      claim: {
        batch,
        // The lock's value (token, batch id, size), which the later steps present.
        token: held === undefined ? token : String(held),
        leaseUntilMs: Number(leaseUntil),
        createdAtMs: Number(createdAt),
        nowMs: Number(now),
      },
    };
  }

  async ack(
    conversation: string,
    batchId: string,
    token: string,
    options: AckOptions = {},
  ): Promise<AckResult> {
    const k = this.keys.conversation(conversation);
    const p = k.partition;
    const r = await this.run(
      scripts.ackBatch,
      [
        k.lock,
        k.batch,
        k.batchMessages,
        k.processed(batchId),
        k.meta,
        p.due,
        p.leases,
        p.events,
        p.stats,
        p.daily,
      ],
      [
        conversation,
        this.label(conversation),
        batchId,
        token,
        this.s.processedTtlMs,
        this.flushRules(),
        options.messages ? encodeDeliveredTexts(options.messages, this.s.logPii) : "",
        Math.round(this.isolateNow()),
        options.probePartition ? "1" : "",
      ],
      { conversation, batchId },
    ) as unknown[];
    const dueAgain = Number(r[0]);
    return {
      dueAgainAtMs: dueAgain > 0 ? dueAgain : null,
      alreadyAcked: Number(r[2]) === 1,
      partitionIdle: Number(r[3]) === 1,
    };
  }

  async fail(
    conversation: string,
    batchId: string,
    token: string,
    options: FailOptions,
  ): Promise<FailResult> {
    const k = this.keys.conversation(conversation);
    const p = k.partition;
    const r = await this.run(
      scripts.failBatch,
      [
        k.lock,
        k.batch,
        k.batchMessages,
        this.keys.deadLetter(p.partition, batchId),
        p.dlq,
        k.meta,
        p.due,
        p.leases,
        p.events,
        p.stats,
        p.daily,
      ],
      [
        conversation,
        this.label(conversation),
        batchId,
        token,
        options.error,
        Math.max(0, Math.round(options.delayMs)),
        options.permanent ? "1" : "0",
        this.s.retryMaxAttempts,
        this.s.retryMaxAgeMs,
        this.flushRules(),
        deadLetterResponseBody(options.responseBody, this.s.logPii),
      ],
      { conversation, batchId },
    ) as unknown[];
    if (r[0] === "dead") {
      const dueAgain = Number(r[1]);
      return {
        status: "dead",
        attempt: Number(r[2]),
        dueAgainAtMs: dueAgain > 0 ? dueAgain : null,
      };
    }
    return { status: "retry", retryAtMs: Number(r[1]), attempt: Number(r[2]) };
  }

  async extend(
    conversation: string,
    batchId: string,
    token: string,
  ): Promise<{ leaseUntilMs: number }> {
    const k = this.keys.conversation(conversation);
    const r = await this.run(
      scripts.extendLock,
      [k.lock, k.batch, k.partition.leases],
      [conversation, batchId, token, this.s.lockTtlMs],
      { conversation, batchId },
    );
    return { leaseUntilMs: Number(r) };
  }

  async supersede(conversation: string, batchId: string, token: string): Promise<SupersedeResult> {
    const k = this.keys.conversation(conversation);
    const p = k.partition;
    const r = await this.run(
      scripts.supersedeBatch,
      [
        k.lock,
        k.batch,
        k.batchMessages,
        k.meta,
        k.buffer,
        p.due,
        p.leases,
        p.events,
        p.stats,
        p.daily,
        k.seen,
      ],
      [
        conversation,
        this.label(conversation),
        batchId,
        token,
        this.s.retryMaxAgeMs,
        this.flushRules(),
      ],
      { conversation, batchId },
    ) as unknown[];
    if (r[0] === "nothing_newer") return { status: "nothing_newer" };
    if (r[0] === "expired") return { status: "expired" };
    return { status: "merged", size: Number(r[1]), flushAtMs: Number(r[2]) };
  }

  async reapExpired(partition: number, limit: number): Promise<string[]> {
    const p = this.keys.partition(partition);
    const r = await this.run(
      scripts.reapExpiredLeases,
      [p.leases, p.due, p.stats, p.daily],
      [limit],
    ) as unknown[];
    const reaped = strings(r[1]);
    // The script counted them; the events are written here because only TS masks labels.
    for (const conversation of reaped) {
      await this.recordEventIn(partition, this.label(conversation), "reaped", {}, "").catch(
        () => {},
      );
    }
    return reaped;
  }

  async listDue(partition: number, limit: number): Promise<string[]> {
    const p = this.keys.partition(partition);
    const r = await this.run(scripts.listDue, [p.due], [limit]) as unknown[];
    return strings(r[1]);
  }

  async inspect(conversation: string): Promise<ConversationState> {
    const k = this.keys.conversation(conversation);
    const r = await this.run(
      scripts.inspectConversation,
      [k.meta, k.buffer, k.batch, k.batchMessages, k.lock, k.partition.due],
      [conversation],
    ) as unknown[];
    const nowMs = Number(r[0]);
    const meta = pairs(r[1]);
    const entries = strings(r[2]);
    const batch = pairs(r[3]);
    const due = String(r[6] ?? "");
    let buffer: ConversationState["buffer"] = null;
    if (meta.firstAt !== undefined) {
      const m = {
        firstAtMs: Number(meta.firstAt),
        lastAtMs: Number(meta.lastAt),
        count: Number(meta.count ?? 0),
        bytes: Number(meta.bytes ?? 0),
      };
      buffer = {
        size: m.count,
        bytes: m.bytes,
        firstAt: toIso(m.firstAtMs),
        lastAt: toIso(m.lastAtMs),
        flushAtMs: computeFlush(m, this.s, m.lastAtMs).flushAtMs,
        messages: entries.map(decodeEntry),
      };
    }
    let outstanding: ConversationState["batch"] = null;
    if (batch.batchId !== undefined) {
      const nextAt = Number(batch.nextAt ?? 0);
      outstanding = {
        batchId: batch.batchId,
        fence: Number(batch.fence),
        attempt: Number(batch.attempt),
        reason: batch.reason as FlushReason,
        size: Number(r[4]),
        inFlight: batch.inFlight === "1",
        nextAttemptAtMs: nextAt > 0 ? nextAt : null,
        lastError: batch.lastError ? batch.lastError : null,
      };
    }
    return {
      conversation,
      partition: k.partition.partition,
      buffer,
      batch: outstanding,
      dueAtMs: due === "" ? null : Number(due),
      nowMs,
    };
  }

  async listConversations(partition: number, limit: number): Promise<string[]> {
    const p = this.keys.partition(partition);
    return strings(await this.run(scripts.listConversations, [p.due, p.leases], [limit]));
  }

  private async readDeadLetter(partition: number, batchId: string): Promise<DeadLetter | null> {
    const h = pairs(
      await this.run(scripts.getDeadLetter, [this.keys.deadLetter(partition, batchId)], []),
    );
    if (h.batchId === undefined) return null;
    return {
      batchId: h.batchId,
      conversation: h.conversation ?? "",
      partition,
      fence: Number(h.fence),
      attempts: Number(h.attempts),
      reason: h.reason as FlushReason,
      lastError: h.lastError ?? "",
      responseBody: h.responseBody ?? "",
      firstAt: toIso(Number(h.firstAt)),
      lastAt: toIso(Number(h.lastAt)),
      createdAt: toIso(Number(h.createdAt)),
      deadAt: toIso(Number(h.deadAt)),
      messages: (JSON.parse(h.messages ?? "[]") as string[]).map(decodeEntry),
    };
  }

  async dlqList(options: { limit?: number } = {}): Promise<DeadLetter[]> {
    const limit = options.limit ?? 50;
    // Admin path: newest ids of every partition, merged, then only the top `limit` are read.
    const ids: { partition: number; batchId: string; deadAt: number }[] = [];
    const replies = await Promise.all(
      this.partitionIds().map((partition) =>
        this.run(scripts.listDeadLetters, [this.keys.partition(partition).dlq], [limit])
      ),
    );
    for (const [partition, reply] of replies.entries()) {
      const r = strings(reply);
      for (let i = 0; i + 1 < r.length; i += 2) {
        ids.push({ partition, batchId: r[i]!, deadAt: Number(r[i + 1]) });
      }
    }
    ids.sort((a, b) => b.deadAt - a.deadAt);
    const letters = await Promise.all(
      ids.slice(0, limit).map(({ partition, batchId }) => this.readDeadLetter(partition, batchId)),
    );
    return letters.filter((d): d is DeadLetter => d !== null);
  }

  async dlqGet(batchId: string): Promise<DeadLetter | null> {
    // Batch ids do not name their partition: look in all of them at once (admin path).
    const found = await Promise.all(
      this.partitionIds().map((partition) => this.readDeadLetter(partition, batchId)),
    );
    return found.find((d) => d !== null) ?? null;
  }

  async dlqRequeue(batchId: string): Promise<{ conversation: string; nowMs: number }> {
    const dead = await this.dlqGet(batchId);
    if (!dead) throw new DeadLetterNotFoundError(batchId);
    const conversation = dead.conversation;
    const k = this.keys.conversation(conversation);
    const p = k.partition;
    const r = await this.run(
      scripts.requeueDeadLetter,
      [
        this.keys.deadLetter(p.partition, batchId),
        p.dlq,
        k.batch,
        k.batchMessages,
        k.fence,
        p.due,
        p.events,
      ],
      [batchId, conversation, this.label(conversation)],
      { conversation, batchId },
    ) as unknown[];
    await this.noteWake(conversation, Number(r[0]));
    return { conversation, nowMs: Number(r[0]) };
  }

  async dlqDelete(batchId: string): Promise<boolean> {
    const deleted = await Promise.all(
      this.partitionIds().map(async (partition) => {
        const p = this.keys.partition(partition);
        const r = await this.run(
          scripts.deleteDeadLetter,
          [this.keys.deadLetter(partition, batchId), p.dlq],
          [batchId],
        );
        return Number(r) === 1;
      }),
    );
    return deleted.includes(true);
  }

  async purgeConversation(conversation: string): Promise<PurgeResult> {
    const k = this.keys.conversation(conversation);
    const p = k.partition;
    const r = await this.run(
      scripts.purgeConversation,
      [
        k.seen,
        k.buffer,
        k.meta,
        k.lock,
        k.batch,
        k.batchMessages,
        p.due,
        p.leases,
        p.events,
      ],
      [conversation],
      { conversation },
    ) as unknown[];
    // With the batch gone no new dead letter of this data can appear: remove the existing ones.
    let deadLetters = 0;
    const ids = strings(await this.run(scripts.listDeadLetters, [p.dlq], [1_000_000]));
    for (let i = 0; i + 1 < ids.length; i += 2) {
      const batchId = ids[i]!;
      const dead = await this.readDeadLetter(p.partition, batchId);
      if (dead?.conversation !== conversation) continue;
      const deleted = await this.run(
        scripts.deleteDeadLetter,
        [this.keys.deadLetter(p.partition, batchId), p.dlq],
        [batchId],
      );
      if (Number(deleted) === 1) deadLetters++;
    }
    return {
      buffered: Number(r[0]),
      batchMessages: Number(r[1]),
      dedupIds: Number(r[2]),
      events: Number(r[3]),
      deadLetters,
    };
  }

  async stats(): Promise<StatsSnapshot> {
    const totals = zeroCounters();
    const daily = new Map<number, Record<CounterName, number>>();
    let openBuffers = 0;
    let inFlight = 0;
    let dlqSize = 0;
    let nowMs = 0;
    const replies = await Promise.all(
      this.partitionIds().map((partition) => {
        const p = this.keys.partition(partition);
        return this.run(scripts.readStats, [p.stats, p.daily, p.due, p.leases, p.dlq], []);
      }),
    );
    for (const reply of replies) {
      const r = reply as unknown[];
      nowMs = Math.max(nowMs, Number(r[0]));
      for (const [name, value] of Object.entries(pairs(r[1]))) {
        if (name in totals) totals[name as CounterName] += Number(value);
      }
      // A total is what was folded out of old day buckets plus every bucket still kept.
      for (const [field, value] of Object.entries(pairs(r[2]))) {
        const colon = field.indexOf(":");
        const day = Number(field.slice(0, colon));
        const name = field.slice(colon + 1) as CounterName;
        if (!(name in totals)) continue;
        totals[name] += Number(value);
        const bucket = daily.get(day) ?? zeroCounters();
        bucket[name] += Number(value);
        daily.set(day, bucket);
      }
      // due holds open buffers and retries; leases hold batches in flight.
      openBuffers += Number(r[3]);
      inFlight += Number(r[4]);
      dlqSize += Number(r[5]);
    }
    const today = Math.floor(nowMs / DAY_MS);
    const days: StatsSnapshot["days"] = [];
    for (let day = today - 6; day <= today; day++) {
      days.push({
        day: toIso(day * DAY_MS).slice(0, 10),
        counters: daily.get(day) ?? zeroCounters(),
      });
    }
    return { totals, days, openBuffers, inFlight, dlqSize, nowMs };
  }

  async readEvents(
    cursor: EventCursor | null,
    options: { limit?: number } = {},
  ): Promise<{ events: BufferEvent[]; cursor: EventCursor }> {
    const limit = options.limit ?? 100;
    const next: EventCursor = {};
    const events: BufferEvent[] = [];
    const replies = await Promise.all(
      this.partitionIds().map((partition) =>
        this.run(
          scripts.readEvents,
          [this.keys.partition(partition).events],
          [cursor === null ? "" : cursor[partition] ?? "0-0", limit],
        )
      ),
    );
    for (const [partition, reply] of replies.entries()) {
      const r = reply as unknown[];
      next[partition] = String(r[0]);
      for (const entry of (r[1] ?? []) as unknown[][]) events.push(streamEvent(partition, entry));
    }
    events.sort((a, b) => a.at.localeCompare(b.at) || streamIdCompare(a.id, b.id));
    return { events, cursor: next };
  }

  async latestEvents(
    options: { limit?: number; type?: BufferEventType } = {},
  ): Promise<{ events: BufferEvent[]; cursor: EventCursor }> {
    const limit = Math.max(1, options.limit ?? 100);
    const cursor: EventCursor = {};
    const events: BufferEvent[] = [];
    // Admin path: the newest `limit` of every partition, merged, then the newest `limit` kept.
    const replies = await Promise.all(
      this.partitionIds().map((partition) =>
        this.run(
          scripts.readLatestEvents,
          [this.keys.partition(partition).events],
          [limit, options.type ?? "", LATEST_EVENTS_SCAN_MAX],
        )
      ),
    );
    for (const [partition, reply] of replies.entries()) {
      const r = reply as unknown[];
      cursor[partition] = String(r[0]);
      for (const entry of (r[1] ?? []) as unknown[][]) events.push(streamEvent(partition, entry));
    }
    events.sort((a, b) => b.at.localeCompare(a.at) || streamIdCompare(b.id, a.id));
    return { events: events.slice(0, limit), cursor };
  }

  async recordEvent(
    conversation: string,
    type: BufferEventType,
    fields: Record<string, string>,
    counter?: CounterName,
  ): Promise<void> {
    // Best effort: these events describe trouble elsewhere (fallback while Redis is down, a
    // lost lock); failing to record one must not turn into a second failure.
    await this.recordEventIn(
      this.keys.partitionOf(conversation),
      this.label(conversation),
      type,
      fields,
      counter ?? "",
    ).catch(() => {});
  }

  private async recordEventIn(
    partition: number,
    label: string,
    type: BufferEventType,
    fields: Record<string, string>,
    counter: CounterName | "",
  ): Promise<void> {
    const p = this.keys.partition(partition);
    await this.run(
      scripts.recordEvent,
      [p.events, p.stats, p.daily],
      [type, label, counter, ...Object.entries(fields).flat()],
    );
  }

  async recordAudit(entry: AuditEntry): Promise<AuditRecord> {
    const full = fullAuditEntry(entry);
    const r = await this.run(scripts.recordAudit, [this.keys.audit()], [
      AUDIT_RETENTION_MS,
      AUDIT_MAX_ENTRIES,
      full.actor,
      full.action,
      full.target,
      full.result,
      full.detail,
      full.subject,
    ]) as unknown[];
    return { ...full, id: String(r[0]), at: toIso(Number(r[1])) };
  }

  async readAudit(options: { limit?: number } = {}): Promise<AuditRecord[]> {
    const limit = Math.max(1, options.limit ?? 100);
    const r = await this.run(scripts.readAudit, [this.keys.audit()], [limit]) as unknown[][];
    return (r ?? []).map((entry) => {
      const f = pairs(entry[1]);
      return {
        id: String(entry[0]),
        at: toIso(Number(f.at)),
        actor: f.actor ?? "",
        action: (f.action ?? "") as AuditRecord["action"],
        target: f.target ?? "",
        result: f.result ?? "",
        detail: f.detail ?? "",
        subject: f.subject ?? "",
      };
    });
  }

  async now(): Promise<number> {
    return Number(await this.run(scripts.getTime, [], []));
  }

  async ping(): Promise<void> {
    await this.run(scripts.ping, [], []);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** One stream entry `[id, [field, value...]]` as an event. */
function streamEvent(partition: number, entry: unknown[]): BufferEvent {
  const { type, conv, at, ...fields } = pairs(entry[1]);
  return {
    id: String(entry[0]),
    partition,
    type: type as BufferEventType,
    at: toIso(Number(at)),
    conversation: conv ?? "",
    fields,
  };
}

function streamIdCompare(a: string, b: string): number {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return (am! - bm!) || (as! - bs!);
}
