/**
 * Model-based test of the buffer state machine (docs/state-machine.md "Invariants"), shared by
 * the MemoryStore run (fake clock, many runs) and the RedisStore run (real redis-server, real
 * time, few runs).
 *
 * The model tracks, per conversation, what must be where: arrived ids, the open buffer, the
 * outstanding batch, the lock and lease, the fences, and what was delivered or dead-lettered.
 * Every command checks the store's answer against the model right away; after the commands a
 * drain delivers everything and the end state is checked:
 * - every appended non-duplicate message is in exactly one delivered batch or in the DLQ;
 * - arrival order within every batch, and across batches by fence (batches that went through
 *   a DLQ requeue are exempt from the cross-batch order: an operator moved them on purpose);
 * - never two successful claims of one conversation while a lock is live;
 * - nothing expires undelivered (the drain finds every message), whatever the time jumps;
 * - every batch respects maxMessages (and a split takes an order-preserving prefix);
 * - every conversation with a buffer or a batch is reachable from the due index or the leases;
 * - fences strictly increase per conversation, across quiet gaps and requeues.
 *
 * Time: the store clock is only ever read, never assumed. Each step reads `now` before and
 * after the call; where a deadline falls between the two readings (real time on Redis), either
 * outcome is accepted and the model follows the store's answer. On the fake clock the two
 * readings are equal, so every outcome is exact.
 *
 * Live data carries no TTL, so the sweep may stall: besides `advance` (steps of one sweep
 * interval, each ending with a sweep), `quietGap` jumps past every TTL of the settings with no
 * sweep at all (a Cron that stopped), and `breakerOpen` runs sweeps that list and reap but claim
 * nothing (an open processor breaker). A TTL on live data shows up as a lost message.
 */
import fc from "fast-check";
import { expect } from "vitest";
import type { BufferSettings } from "../../src/core/config.ts";
import {
  ConversationBusyError,
  LockLostError,
  PartitionMismatchError,
} from "../../src/core/errors.ts";
import { partitionOf } from "../../src/core/keys.ts";
import type { BufferStore, ClaimResult } from "../../src/core/types.ts";

/** The system under test. */
export interface ModelReal {
  store: BufferStore;
  /** Moves the store clock forward by at least `ms`. */
  advance: (ms: number) => Promise<void>;
  /** The same data opened with another LULL_PARTITIONS (Redis only: the layout is recorded). */
  otherPartitions?: () => BufferStore;
}

/** How one model run is set up. */
export interface ModelOptions {
  settings: BufferSettings;
  /** Largest single time step; each step ends with a sweep. */
  sweepIntervalMs: number;
  conversations: string[];
  /** One `quietGap` jump: longer than every TTL of the settings. */
  quietGapMs: number;
  /** Generate `partitionChange` commands (needs {@link ModelReal.otherPartitions}). */
  partitionChange: boolean;
  /** Only forced claims from the Claim command (real-time runs). */
  forceOnly: boolean;
  /** Whole sweep intervals one advance command may span (plus a partial one). */
  maxAdvanceSteps: number;
  /** Largest retry/release delay. */
  maxDelayMs: number;
  /**
   * `sweep`: drain only through the due index (reap, listDue, unforced claim), proving it is
   * complete. `force`: force-claim every pending conversation (fast on real time).
   */
  drain: "sweep" | "force";
}

interface ModelBatch {
  batchId: string;
  ids: string[];
  /** null after a requeue: the next claim shows the new fence. */
  fence: number | null;
  attempt: number;
  /** null after a requeue until the next claim shows it. */
  createdAtMs: number | null;
  /** Claimable from (range, because release does not report it). */
  nextAtLoMs: number;
  nextAtHiMs: number;
  /** The batch went through a DLQ requeue (possibly merged since). */
  requeued: boolean;
}

interface ConvModel {
  arrived: string[];
  open: string[];
  openFlushAtMs: number | null;
  /** Open buffer holds messages of a requeued batch (via supersede). */
  openRequeued: boolean;
  /** What a supersede carried into the open buffer: the batch's createdAt and attempts. */
  openCarried: { createdAtMs: number; attempts: number } | null;
  /** Store time each id was first seen (the dedup window runs from there). */
  seenAtMs: Map<string, number>;
  batch: ModelBatch | null;
  lock: { token: string; leaseUntilMs: number } | null;
  /** Score in the leases ZSET. */
  leaseMs: number | null;
  lastFence: number;
  delivered: { batchId: string; fence: number; ids: string[]; requeued: boolean }[];
}

interface Held {
  conv: string;
  batchId: string;
  token: string;
}

/** The model state of one run. */
export class StoreModel {
  readonly convs = new Map<string, ConvModel>();
  held: Held[] = [];
  readonly dlq = new Map<string, { conv: string; batch: ModelBatch }>();
  readonly batchIds = new Set<string>();
  nextId = 0;
  readonly counts = {
    duplicates: 0,
    retries: 0,
    dead: 0,
    superseded: 0,
    reaped: 0,
  };

  constructor(readonly opts: ModelOptions) {
    for (const c of opts.conversations) {
      this.convs.set(c, {
        arrived: [],
        open: [],
        openFlushAtMs: null,
        openRequeued: false,
        openCarried: null,
        seenAtMs: new Map(),
        batch: null,
        lock: null,
        leaseMs: null,
        lastFence: 0,
        delivered: [],
      });
    }
  }

  conv(c: string): ConvModel {
    const m = this.convs.get(c);
    if (!m) throw new Error(`unknown conversation ${c}`);
    return m;
  }
}

type Lock = "held" | "free" | "unknown";

/** Whether `token` (default: the current lock's) holds the lock between the two readings. */
function lockState(c: ConvModel, before: number, after: number, token?: string): Lock {
  if (!c.lock || (token !== undefined && c.lock.token !== token)) return "free";
  if (after <= c.lock.leaseUntilMs) return "held";
  if (before > c.lock.leaseUntilMs) return "free";
  return "unknown";
}

async function timed<T>(
  r: ModelReal,
  fn: () => Promise<T>,
): Promise<{ before: number; after: number; value?: T; error?: unknown }> {
  const before = await r.store.now();
  try {
    const value = await fn();
    return { before, after: await r.store.now(), value };
  } catch (error) {
    return { before, after: await r.store.now(), error };
  }
}

function expectLockLost(error: unknown): void {
  expect(error).toBeInstanceOf(LockLostError);
}

// -------------------------------------------------------------------------------------------
// Checked steps (used by commands, the sweep and the drain)
// -------------------------------------------------------------------------------------------

async function claimStep(m: StoreModel, r: ModelReal, conv: string, force: boolean) {
  const c = m.conv(conv);
  const t = await timed(r, () => r.store.claim(conv, { force }));
  if (t.error) throw t.error;
  const res = t.value as ClaimResult;
  const lock = lockState(c, t.before, t.after);
  switch (res.status) {
    case "locked":
      expect(lock, "locked although no lock can be live").not.toBe("free");
      return;
    case "empty":
      expect(lock).not.toBe("held");
      expect(c.batch, "empty although a batch is outstanding").toBeNull();
      expect(c.open, "empty although messages are buffered").toEqual([]);
      return;
    case "not_due":
      expect(force, "a forced claim answered not_due").toBe(false);
      expect(lock).not.toBe("held");
      if (c.batch) {
        expect(c.batch.nextAtHiMs).toBeGreaterThan(t.before);
        expect(res.dueAtMs).toBeGreaterThanOrEqual(c.batch.nextAtLoMs);
        expect(res.dueAtMs).toBeLessThanOrEqual(c.batch.nextAtHiMs);
        c.batch.nextAtLoMs = c.batch.nextAtHiMs = res.dueAtMs;
      } else {
        expect(c.open.length, "not_due with nothing buffered").toBeGreaterThan(0);
        // null: the remainder of a split, whose due time the model does not compute.
        if (c.openFlushAtMs !== null) expect(res.dueAtMs).toBe(c.openFlushAtMs);
        expect(res.dueAtMs).toBeGreaterThan(t.before);
        c.openFlushAtMs = res.dueAtMs;
      }
      return;
    case "claimed": {
      // Never two in-flight batches: a live lock forbids any claim.
      expect(lock, "claimed while another claim holds a live lock").not.toBe("held");
      const claim = res.claim;
      const ids = claim.batch.messages.map((x) => x.id);
      expect(claim.batch.conversation).toBe(conv);
      if (c.batch) {
        const b = c.batch;
        if (!force) expect(b.nextAtLoMs).toBeLessThanOrEqual(t.after);
        expect(claim.batch.batchId).toBe(b.batchId);
        expect(ids).toEqual(b.ids);
        expect(claim.batch.attempt).toBe(b.attempt + 1);
        if (b.fence === null) {
          expect(claim.batch.fence).toBeGreaterThan(c.lastFence);
          b.fence = c.lastFence = claim.batch.fence;
        } else {
          expect(claim.batch.fence).toBe(b.fence);
        }
        if (b.createdAtMs === null) b.createdAtMs = claim.createdAtMs;
        else expect(claim.createdAtMs).toBe(b.createdAtMs);
        b.attempt += 1;
      } else {
        expect(c.open.length, "claimed a batch out of nothing").toBeGreaterThan(0);
        if (!force && c.openFlushAtMs !== null) {
          expect(c.openFlushAtMs).toBeLessThanOrEqual(t.after);
        }
        // Generation swap: the open buffer's oldest messages, in arrival order, bounded by
        // maxMessages (maxBytes may cut it shorter; at least one message always goes).
        const s = m.opts.settings;
        expect(ids.length).toBeGreaterThan(0);
        expect(ids.length).toBeLessThanOrEqual(Math.max(1, s.maxMessages));
        expect(ids).toEqual(c.open.slice(0, ids.length));
        const carried = c.openCarried;
        expect(claim.batch.attempt, "a supersede must not reset attempts").toBe(
          (carried?.attempts ?? 0) + 1,
        );
        if (carried) {
          expect(claim.createdAtMs, "a supersede must keep createdAt").toBe(carried.createdAtMs);
        }
        expect(claim.batch.fence).toBeGreaterThan(c.lastFence);
        expect(m.batchIds.has(claim.batch.batchId)).toBe(false);
        m.batchIds.add(claim.batch.batchId);
        c.lastFence = claim.batch.fence;
        c.batch = {
          batchId: claim.batch.batchId,
          ids,
          fence: claim.batch.fence,
          attempt: claim.batch.attempt,
          createdAtMs: claim.createdAtMs,
          nextAtLoMs: 0,
          nextAtHiMs: 0,
          requeued: c.openRequeued,
        };
        c.open = c.open.slice(ids.length);
        c.openFlushAtMs = null;
        c.openCarried = null;
        if (c.open.length === 0) c.openRequeued = false;
      }
      c.lock = { token: claim.token, leaseUntilMs: claim.leaseUntilMs };
      c.leaseMs = claim.leaseUntilMs;
      m.held.push({ conv, batchId: claim.batch.batchId, token: claim.token });
      return;
    }
  }
}

function dropHeld(m: StoreModel, h: Held): void {
  m.held = m.held.filter((x) => x !== h);
}

async function ackStep(m: StoreModel, r: ModelReal, h: Held) {
  const c = m.conv(h.conv);
  dropHeld(m, h);
  const t = await timed(r, () => r.store.ack(h.conv, h.batchId, h.token));
  const lock = lockState(c, t.before, t.after, h.token);
  if (t.error) {
    expectLockLost(t.error);
    expect(lock, "ack refused although the lock was ours").not.toBe("held");
    return;
  }
  if (t.value!.alreadyAcked) {
    // A stale token whose batch another claim delivered meanwhile: the processed record answers.
    expect(c.delivered.some((d) => d.batchId === h.batchId), "alreadyAcked, never delivered")
      .toBe(true);
    return;
  }
  expect(lock, "ack accepted with a lost lock").not.toBe("free");
  const b = c.batch!;
  expect(b.batchId).toBe(h.batchId);
  c.delivered.push({ batchId: b.batchId, fence: b.fence!, ids: b.ids, requeued: b.requeued });
  c.batch = null;
  c.lock = null;
  c.leaseMs = null;
  expect(t.value!.dueAgainAtMs === null).toBe(c.open.length === 0);
}

async function failStep(
  m: StoreModel,
  r: ModelReal,
  h: Held,
  permanent: boolean,
  delayMs: number,
) {
  const c = m.conv(h.conv);
  const s = m.opts.settings;
  dropHeld(m, h);
  const t = await timed(
    r,
    () => r.store.fail(h.conv, h.batchId, h.token, { error: "boom", delayMs, permanent }),
  );
  const lock = lockState(c, t.before, t.after, h.token);
  if (t.error) {
    expectLockLost(t.error);
    expect(lock).not.toBe("held");
    return;
  }
  expect(lock).not.toBe("free");
  const b = c.batch!;
  const res = t.value!;
  expect(res.attempt).toBe(b.attempt);
  const byRule = permanent || b.attempt >= s.retryMaxAttempts;
  const mustDie = byRule || t.before - b.createdAtMs! >= s.retryMaxAgeMs;
  const mayDie = mustDie || t.after - b.createdAtMs! >= s.retryMaxAgeMs;
  c.lock = null;
  c.leaseMs = null;
  if (res.status === "dead") {
    expect(mayDie, "dead-lettered before its time").toBe(true);
    m.dlq.set(b.batchId, { conv: h.conv, batch: b });
    c.batch = null;
    m.counts.dead += 1;
  } else {
    expect(mustDie, "retried past its limits").toBe(false);
    expect(res.retryAtMs).toBeGreaterThanOrEqual(t.before + delayMs);
    expect(res.retryAtMs).toBeLessThanOrEqual(t.after + delayMs);
    b.nextAtLoMs = b.nextAtHiMs = res.retryAtMs;
    m.counts.retries += 1;
  }
}

async function supersedeStep(m: StoreModel, r: ModelReal, h: Held) {
  const c = m.conv(h.conv);
  const t = await timed(r, () => r.store.supersede(h.conv, h.batchId, h.token));
  const lock = lockState(c, t.before, t.after, h.token);
  if (t.error) {
    dropHeld(m, h);
    expectLockLost(t.error);
    expect(lock).not.toBe("held");
    return;
  }
  expect(lock).not.toBe("free");
  const res = t.value!;
  if (c.open.length === 0) {
    // Nothing newer: the claim is still ours.
    expect(res).toEqual({ status: "nothing_newer" });
    return;
  }
  const b = c.batch!;
  // Supersedes count toward MAX_AGE: past it nothing is merged (the caller fails the batch).
  const maxAge = m.opts.settings.retryMaxAgeMs;
  if (t.before - b.createdAtMs! >= maxAge) expect(res).toEqual({ status: "expired" });
  if (t.after - b.createdAtMs! < maxAge) expect(res.status).toBe("merged");
  if (res.status === "expired") return;
  dropHeld(m, h);
  expect(res).toMatchObject({ status: "merged", size: b.ids.length + c.open.length });
  c.open = [...b.ids, ...c.open];
  c.openRequeued = c.openRequeued || b.requeued;
  c.openCarried = { createdAtMs: b.createdAtMs!, attempts: b.attempt - 1 };
  c.openFlushAtMs = res.status === "merged" ? res.flushAtMs : null;
  c.batch = null;
  c.lock = null;
  c.leaseMs = null;
  m.counts.superseded += 1;
}

async function requeueStep(m: StoreModel, r: ModelReal, batchId: string) {
  const dead = m.dlq.get(batchId)!;
  const c = m.conv(dead.conv);
  const t = await timed(r, () => r.store.dlqRequeue(batchId));
  if (c.batch) {
    expect(t.error, "requeue while a batch is outstanding").toBeInstanceOf(ConversationBusyError);
    return;
  }
  if (t.error) throw t.error;
  expect(t.value!.conversation).toBe(dead.conv);
  // Due from the requeue's own store time.
  expect(t.value!.nowMs).toBeGreaterThanOrEqual(t.before);
  expect(t.value!.nowMs).toBeLessThanOrEqual(t.after);
  m.dlq.delete(batchId);
  c.batch = {
    batchId,
    ids: dead.batch.ids,
    fence: null,
    attempt: 0,
    createdAtMs: null,
    nextAtLoMs: 0,
    nextAtHiMs: 0,
    requeued: true,
  };
}

async function reapStep(m: StoreModel, r: ModelReal) {
  const s = m.opts.settings;
  for (let p = 0; p < s.partitions; p++) {
    const t = await timed(r, () => r.store.reapExpired(p, 1000));
    if (t.error) throw t.error;
    const reaped = t.value!;
    for (const conv of reaped) {
      const c = m.conv(conv);
      expect(c.leaseMs, `reaped ${conv} without a lease`).not.toBeNull();
      expect(c.leaseMs!).toBeLessThanOrEqual(t.after);
      c.leaseMs = null;
      m.counts.reaped += 1;
    }
    for (const [conv, c] of m.convs) {
      if (partitionOf(conv, s.partitions) !== p || c.leaseMs === null) continue;
      expect(c.leaseMs > t.before, `expired lease of ${conv} not reaped`).toBe(true);
    }
  }
}

/**
 * The durable sweep: reap, then claim everything the due index lists. With `deliver` the
 * sweep's flusher acks what it claimed at once; otherwise the claims stay held for later
 * commands (ack, fail, supersede, crash...).
 */
async function sweepStep(m: StoreModel, r: ModelReal, deliver: boolean) {
  await reapStep(m, r);
  for (let p = 0; p < m.opts.settings.partitions; p++) {
    for (const conv of await r.store.listDue(p, 1000)) {
      expect(m.convs.has(conv), `listDue returned a stranger: ${conv}`).toBe(true);
      const heldBefore = m.held.length;
      await claimStep(m, r, conv, false);
      if (deliver && m.held.length > heldBefore) await ackStep(m, r, m.held[m.held.length - 1]!);
    }
  }
  await checkReachable(m, r);
}

/**
 * Every conversation with an open buffer or an outstanding batch is in its partition's due
 * index or leases (an open buffer behind a batch is reachable through the batch): nothing live
 * can be forgotten by the sweep.
 */
async function checkReachable(m: StoreModel, r: ModelReal) {
  const s = m.opts.settings;
  const listed = new Set<string>();
  for (let p = 0; p < s.partitions; p++) {
    for (const conv of await r.store.listConversations(p, 1000)) listed.add(conv);
  }
  for (const [conv, c] of m.convs) {
    if (c.batch || c.open.length > 0) {
      expect(listed.has(conv), `${conv} is live but not reachable from the index`).toBe(true);
    }
  }
}

// -------------------------------------------------------------------------------------------
// Commands
// -------------------------------------------------------------------------------------------

type Cmd = fc.AsyncCommand<StoreModel, ModelReal>;

class AppendCmd implements Cmd {
  constructor(readonly conv: string, readonly textLength: number) {}
  check = () => true;
  async run(m: StoreModel, r: ModelReal) {
    const c = m.conv(this.conv);
    const id = `m${m.nextId++}`;
    const res = await r.store.append({
      conversation: this.conv,
      id,
      provider: "generic",
      text: "t".repeat(this.textLength),
    });
    expect(res.status).toBe("appended");
    expect(res.size).toBe(c.open.length + 1);
    c.open.push(id);
    c.arrived.push(id);
    c.seenAtMs.set(id, res.nowMs);
    c.openFlushAtMs = res.flushAtMs;
  }
  toString = () => `append(${this.conv}, ${this.textLength})`;
}

class DuplicateCmd implements Cmd {
  constructor(readonly conv: string, readonly pick: number) {}
  check = (m: Readonly<StoreModel>) => m.conv(this.conv).arrived.length > 0;
  async run(m: StoreModel, r: ModelReal) {
    const c = m.conv(this.conv);
    const id = c.arrived[this.pick % c.arrived.length]!;
    // Past the dedup window the id is forgotten by design (garbage), and a resend would be a
    // new message: the model only resends ids it is sure are still remembered.
    const now = await r.store.now();
    if (now - c.seenAtMs.get(id)! >= m.opts.settings.dedupTtlMs - 50) return;
    const res = await r.store.append({
      conversation: this.conv,
      id,
      provider: "generic",
      text: "again",
    });
    expect(res.status).toBe("duplicate");
    // Only the redelivery of the open buffer's first message reads (and reports) the buffer.
    expect(res.size).toBe(c.open[0] === id ? c.open.length : 0);
    expect(res.armTimer).toBe(false);
    m.counts.duplicates += 1;
  }
  toString = () => `duplicate(${this.conv}, #${this.pick})`;
}

class ClaimCmd implements Cmd {
  constructor(readonly conv: string, readonly force: boolean) {}
  check = () => true;
  run = (m: StoreModel, r: ModelReal) => claimStep(m, r, this.conv, this.force);
  toString = () => `claim(${this.conv}${this.force ? ", force" : ""})`;
}

/** Base of commands acting on one held claim (picked by index). */
abstract class HeldCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<StoreModel>) => m.held.length > 0;
  protected held(m: StoreModel): Held {
    return m.held[this.pick % m.held.length]!;
  }
  abstract run(m: StoreModel, r: ModelReal): Promise<void>;
  abstract toString(): string;
}

class AckCmd extends HeldCmd {
  run(m: StoreModel, r: ModelReal) {
    return ackStep(m, r, this.held(m));
  }
  toString() {
    return `ack(#${this.pick})`;
  }
}

class FailCmd extends HeldCmd {
  constructor(pick: number, readonly permanent: boolean, readonly delayMs: number) {
    super(pick);
  }
  run(m: StoreModel, r: ModelReal) {
    return failStep(m, r, this.held(m), this.permanent, this.delayMs);
  }
  toString() {
    return `fail(#${this.pick}, ${this.permanent ? "permanent" : this.delayMs + "ms"})`;
  }
}

class SupersedeCmd extends HeldCmd {
  run(m: StoreModel, r: ModelReal) {
    return supersedeStep(m, r, this.held(m));
  }
  toString() {
    return `supersede(#${this.pick})`;
  }
}

/** The flusher dies mid-delivery: its token is never used again; the lease must lapse. */
class CrashCmd extends HeldCmd {
  run(m: StoreModel) {
    dropHeld(m, this.held(m));
    return Promise.resolve();
  }
  toString() {
    return `crash(#${this.pick})`;
  }
}

class ReapCmd implements Cmd {
  check = () => true;
  run = (m: StoreModel, r: ModelReal) => reapStep(m, r);
  toString = () => "reap";
}

/**
 * Time moves in steps of at most one sweep interval, each followed by the sweep (the design's
 * assumption: the durable sweep runs at least every LULL_SWEEP_INTERVAL_MS).
 */
class AdvanceCmd implements Cmd {
  constructor(
    readonly fullSteps: number,
    readonly lastMs: number,
    readonly stepMs: number,
    readonly deliver: boolean,
  ) {}
  check = () => true;
  async run(m: StoreModel, r: ModelReal) {
    for (let i = 0; i < this.fullSteps; i++) {
      await r.advance(this.stepMs);
      await sweepStep(m, r, this.deliver);
    }
    await r.advance(this.lastMs);
    await sweepStep(m, r, this.deliver);
  }
  toString() {
    const how = this.deliver ? "delivering" : "holding";
    return `advance(${this.fullSteps}x${this.stepMs}+${this.lastMs}ms, sweep ${how})`;
  }
}

/** A Cron that stopped: time jumps past every TTL with no sweep at all. */
class QuietGapCmd implements Cmd {
  check = () => true;
  async run(m: StoreModel, r: ModelReal) {
    await r.advance(m.opts.quietGapMs);
    await checkReachable(m, r);
  }
  toString = () => "quietGap";
}

/**
 * An open processor breaker: the sweep runs (reaps, lists what is due) but claims nothing, for
 * several intervals. Everything due must stay listed.
 */
class BreakerOpenCmd implements Cmd {
  constructor(readonly steps: number) {}
  check = () => true;
  async run(m: StoreModel, r: ModelReal) {
    for (let i = 0; i < this.steps; i++) {
      await r.advance(m.opts.sweepIntervalMs);
      await reapStep(m, r);
      await checkReachable(m, r);
    }
  }
  toString = () => `breakerOpen(${this.steps} sweeps)`;
}

/** A deploy with another LULL_PARTITIONS: refused, and nothing it tried is written. */
class PartitionChangeCmd implements Cmd {
  constructor(readonly conv: string) {}
  check = (m: Readonly<StoreModel>) => m.opts.partitionChange;
  async run(m: StoreModel, r: ModelReal) {
    const other = r.otherPartitions!();
    try {
      const before = await r.store.inspect(this.conv);
      const err = await other.append({
        conversation: this.conv,
        id: `x${m.nextId}`,
        provider: "generic",
        text: "from the wrong layout",
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PartitionMismatchError);
      const after = await r.store.inspect(this.conv);
      expect(after.buffer?.size ?? 0).toBe(before.buffer?.size ?? 0);
    } finally {
      await other.close();
    }
  }
  toString = () => `partitionChange(${this.conv})`;
}

class RequeueCmd implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<StoreModel>) => m.dlq.size > 0;
  run = (m: StoreModel, r: ModelReal) => {
    const ids = [...m.dlq.keys()];
    return requeueStep(m, r, ids[this.pick % ids.length]!);
  };
  toString = () => `dlqRequeue(#${this.pick})`;
}

/** Command sequences for one model run. */
export function modelCommands(
  opts: ModelOptions,
  maxCommands: number,
): fc.Arbitrary<Iterable<Cmd>> {
  return fc.commands(commandMix(opts), { maxCommands, size: "max" });
}

/** The command mix (appends, claims, acks and time steps weighted up). */
function commandMix(opts: ModelOptions): fc.Arbitrary<Cmd>[] {
  const conv = fc.constantFrom(...opts.conversations);
  const pick = fc.nat({ max: 20 });
  const delay = fc.integer({ min: 0, max: opts.maxDelayMs });
  const append = fc.tuple(conv, fc.integer({ min: 0, max: 200 })).map(([c, n]) =>
    new AppendCmd(c, n) as Cmd
  );
  const advance = fc.tuple(
    fc.nat({ max: opts.maxAdvanceSteps }),
    fc.integer({ min: 1, max: opts.sweepIntervalMs }),
    fc.boolean(),
  ).map(([n, ms, deliver]) => new AdvanceCmd(n, ms, opts.sweepIntervalMs, deliver) as Cmd);
  return [
    append,
    append,
    append,
    fc.tuple(conv, pick).map(([c, k]) => new DuplicateCmd(c, k)),
    fc.tuple(conv, fc.boolean()).map(([c, f]) => new ClaimCmd(c, opts.forceOnly || f)),
    fc.tuple(conv, fc.boolean()).map(([c, f]) => new ClaimCmd(c, opts.forceOnly || f)),
    pick.map((k) => new AckCmd(k)),
    pick.map((k) => new AckCmd(k)),
    fc.tuple(pick, fc.boolean(), delay).map(([k, p, d]) => new FailCmd(k, p, d)),
    pick.map((k) => new SupersedeCmd(k)),
    pick.map((k) => new CrashCmd(k)),
    fc.constant(new ReapCmd()),
    advance,
    advance,
    pick.map((k) => new RequeueCmd(k)),
    fc.constant(new QuietGapCmd()),
    fc.integer({ min: 1, max: 4 }).map((n) => new BreakerOpenCmd(n)),
    conv.map((c) => new PartitionChangeCmd(c)),
  ];
}

function pending(m: StoreModel): boolean {
  for (const c of m.convs.values()) if (c.batch || c.open.length > 0) return true;
  return m.held.length > 0;
}

/**
 * Delivers everything still pending (DLQ entries stay terminal unless `requeueDead`), then
 * checks the end-state invariants against the model and the store.
 */
export async function drainAndCheck(
  m: StoreModel,
  r: ModelReal,
  requeueDead: boolean,
): Promise<void> {
  const s = m.opts.settings;
  for (const h of [...m.held]) await ackStep(m, r, h);
  if (requeueDead) {
    for (const batchId of [...m.dlq.keys()]) {
      const c = m.conv(m.dlq.get(batchId)!.conv);
      if (!c.batch) await requeueStep(m, r, batchId);
    }
  }
  // Enough sweeps for the longest wait: max wait + grace, a lapsing lease, a retry delay.
  const span = s.maxWaitMs + s.graceMs + s.lockTtlMs + m.opts.maxDelayMs;
  const rounds = Math.ceil(span / m.opts.sweepIntervalMs) * 4 + 10;
  if (m.opts.drain === "force") {
    // Crashed claims hold locks: let them lapse, then take everything by force.
    const waitForLocks = async () => {
      const leases = [...m.convs.values()].flatMap((c) => c.lock ? [c.lock.leaseUntilMs] : []);
      const now = await r.store.now();
      const last = Math.max(now - 1, ...leases);
      if (last >= now) await r.advance(last - now + 5);
    };
    await waitForLocks();
    for (let i = 0; i < rounds && pending(m); i++) {
      for (const [conv, c] of m.convs) {
        if (c.batch || c.open.length > 0) await claimStep(m, r, conv, true);
      }
      for (const h of [...m.held]) await ackStep(m, r, h);
      if (requeueDead) {
        for (const batchId of [...m.dlq.keys()]) {
          if (!m.conv(m.dlq.get(batchId)!.conv).batch) await requeueStep(m, r, batchId);
        }
      }
      if (pending(m)) await waitForLocks();
    }
  } else {
    for (let i = 0; i < rounds && pending(m); i++) {
      await r.advance(m.opts.sweepIntervalMs);
      await sweepStep(m, r, true);
      for (const h of [...m.held]) await ackStep(m, r, h);
      if (requeueDead) {
        for (const batchId of [...m.dlq.keys()]) {
          if (!m.conv(m.dlq.get(batchId)!.conv).batch) await requeueStep(m, r, batchId);
        }
      }
    }
  }
  expect(pending(m), "drain did not empty the store (something lost from the due index?)")
    .toBe(false);

  // The store agrees that nothing is pending.
  for (const conv of m.convs.keys()) {
    const state = await r.store.inspect(conv);
    expect(state.buffer, `buffer left in ${conv}`).toBeNull();
    expect(state.batch, `batch left in ${conv}`).toBeNull();
  }
  const dlq = await r.store.dlqList({ limit: 10_000 });
  expect(dlq.map((d) => d.batchId).sort()).toEqual([...m.dlq.keys()].sort());

  for (const [conv, c] of m.convs) {
    const index = new Map(c.arrived.map((id, i) => [id, i]));
    const dead = dlq.filter((d) => d.conversation === conv);
    // Exactly once: delivered or dead, nothing lost, nothing twice.
    const placed = [
      ...c.delivered.flatMap((b) => b.ids),
      ...dead.flatMap((d) => d.messages.map((x) => x.id)),
    ];
    expect([...placed].sort(), `messages of ${conv}`).toEqual([...c.arrived].sort());
    // Arrival order within every batch.
    for (
      const ids of [
        ...c.delivered.map((b) => b.ids),
        ...dead.map((d) => d.messages.map((x) => x.id)),
      ]
    ) {
      const pos = ids.map((id) => index.get(id)!);
      expect(pos, `order inside a batch of ${conv}`).toEqual([...pos].sort((a, b) => a - b));
    }
    // Arrival order across batches by fence (requeued ones were moved on purpose).
    const byFence = [
      ...c.delivered.filter((b) => !b.requeued).map((b) => ({ fence: b.fence, ids: b.ids })),
      ...dead.filter((d) => !m.dlq.get(d.batchId)?.batch.requeued).map((d) => ({
        fence: d.fence,
        ids: d.messages.map((x) => x.id),
      })),
    ].sort((a, b) => a.fence - b.fence);
    const pos = byFence.flatMap((b) => b.ids.map((id) => index.get(id)!));
    expect(pos, `order across batches of ${conv}`).toEqual([...pos].sort((a, b) => a - b));
    const fences = c.delivered.map((b) => b.fence);
    expect(new Set(fences).size, `fence reused in ${conv}`).toBe(fences.length);
  }

  const stats = await r.store.stats();
  const delivered = [...m.convs.values()].flatMap((c) => c.delivered);
  expect(stats.totals).toMatchObject({
    ingested: m.nextId,
    duplicates: m.counts.duplicates,
    batches: delivered.length,
    batch_messages: delivered.reduce((n, b) => n + b.ids.length, 0),
    retries: m.counts.retries,
    dead: m.counts.dead,
    superseded: m.counts.superseded,
    reaped: m.counts.reaped,
  });
  expect(stats.dlqSize).toBe(m.dlq.size);
}
