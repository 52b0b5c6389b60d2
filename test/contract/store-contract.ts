/**
 * The observable behaviour every {@link BufferStore} must have (docs/state-machine.md). Runner
 * files call {@link bufferStoreContract} once per store: MemoryStore on a fake clock, RedisStore
 * over TCP and over Upstash REST on a real redis-server.
 *
 * Timing rules, because on Redis `advance` really sleeps and real time also passes between calls:
 * - times are small (tens to hundreds of ms), and every assertion about time is an inequality
 *   that holds for "advance(ms) moved the store clock by AT LEAST ms";
 * - wherever timing is not the point, claims are forced;
 * - a "not yet" assertion leaves a margin of >= 100 ms of real time before the deadline.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { BufferSettings } from "../../src/core/config.ts";
import {
  BatchNotFoundError,
  ConversationBusyError,
  DeadLetterNotFoundError,
  LockLostError,
} from "../../src/core/errors.ts";
import { partitionOf } from "../../src/core/keys.ts";
import type {
  BufferStore,
  Claim,
  ClaimResult,
  InboundMessage,
  Provider,
} from "../../src/core/types.ts";
import { maskConversation } from "../../src/core/mask.ts";
import { toIso } from "../../src/store/codec.ts";
import {
  decodeDeliveredTexts,
  DELIVERED_TEXT_MAX_BYTES,
  DELIVERED_TEXTS_MAX_BYTES,
} from "../../src/core/delivered-texts.ts";

/** What a runner hands the suite for one test. */
export interface ContractStore {
  store: BufferStore;
  /** Moves the store clock forward by at least `ms` (fake clock, or a real sleep). */
  advance: (ms: number) => Promise<void>;
  /** Closes the store and deletes what the test wrote. */
  cleanup: () => Promise<void>;
}

/** Builds a store for the given settings (keyPrefix is unique per test). */
export type MakeContractStore = (settings: BufferSettings) => Promise<ContractStore>;

/**
 * Defaults for the suite. The lock lease is long so it never lapses by accident; tests about
 * leases shorten it.
 */
export const contractSettings: Omit<BufferSettings, "keyPrefix"> = {
  partitions: 4,
  windowMs: 100,
  graceMs: 50,
  maxWaitMs: 2000,
  maxMessages: 50,
  maxBytes: 65536,
  timerTtlMs: 2000,
  processedTtlMs: 20_000,
  lockTtlMs: 20_000,
  dedupTtlMs: 60_000,
  retryMaxAttempts: 5,
  retryMaxAgeMs: 60_000,
  logPii: false,
  // The events tests read per-message events (off by default, on in `lull dev`).
  messageEvents: true,
};

let prefixCounter = 0;
function uniquePrefix(): string {
  prefixCounter += 1;
  return `ct${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}${prefixCounter}`;
}

function msg(
  conversation: string,
  id: string,
  text = `text of ${id}`,
  extra: Partial<InboundMessage> = {},
): InboundMessage {
  return { conversation, id, provider: "generic" as Provider, text, ...extra };
}

function expectClaimed(result: ClaimResult): Claim {
  if (result.status !== "claimed") {
    throw new Error(`expected claimed, got ${JSON.stringify(result)}`);
  }
  return result.claim;
}

function ids(claim: Claim): string[] {
  return claim.batch.messages.map((m) => m.id);
}

function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split("-").map(Number);
  const [bm = 0, bs = 0] = b.split("-").map(Number);
  return am - bm || as - bs;
}

/** Registers the contract suite for one store implementation. */
export function bufferStoreContract(name: string, makeStore: MakeContractStore): void {
  describe(`BufferStore contract: ${name}`, () => {
    const open: ContractStore[] = [];
    afterEach(async () => {
      for (const h of open.splice(0)) await h.cleanup();
    });

    async function setup(overrides: Partial<BufferSettings> = {}) {
      const settings: BufferSettings = {
        ...contractSettings,
        keyPrefix: uniquePrefix(),
        ...overrides,
      };
      const h = await makeStore(settings);
      open.push(h);
      return { ...h, settings };
    }

    describe("append", () => {
      it("buffers in arrival order; size grows; quiet flushAt = lastAt + window + grace", async () => {
        const { store, settings } = await setup();
        const c = "support:42";
        for (const [i, id] of ["m1", "m2", "m3"].entries()) {
          const r = await store.append(msg(c, id));
          expect(r.status).toBe("appended");
          expect(r.size).toBe(i + 1);
          expect(r.flushAtMs).toBe(r.nowMs + settings.windowMs + settings.graceMs);
        }
        const state = await store.inspect(c);
        expect(state.buffer?.size).toBe(3);
        expect(state.buffer?.bytes).toBeGreaterThan(0);
        expect(state.buffer?.messages.map((m) => m.id)).toEqual(["m1", "m2", "m3"]);
        expect(state.batch).toBeNull();
      });

      it("a redelivered id is a duplicate: buffered once, even after its batch was delivered", async () => {
        const { store } = await setup();
        const c = "support:dup";
        await store.append(msg(c, "m1"));
        await store.append(msg(c, "m2"));
        const dup = await store.append(msg(c, "m1", "changed text"));
        expect(dup.status).toBe("duplicate");
        expect(dup.size).toBe(2);
        expect(dup.armTimer).toBe(false);
        const claim = expectClaimed(await store.claim(c, { force: true }));
        expect(ids(claim)).toEqual(["m1", "m2"]);
        expect(claim.batch.messages[0]?.text).toBe("text of m1");
        await store.ack(c, claim.batch.batchId, claim.token);
        const late = await store.append(msg(c, "m2"));
        expect(late.status).toBe("duplicate");
        expect(late.size).toBe(0);
        expect(late.flushAtMs).toBeNull();
        expect((await store.claim(c, { force: true })).status).toBe("empty");
      });

      it("arms the timer once per burst (its first append), again after the generation swap", async () => {
        const { store } = await setup();
        const c = "support:timer";
        expect((await store.append(msg(c, "m1"))).armTimer).toBe(true);
        expect((await store.append(msg(c, "m2"))).armTimer).toBe(false);
        expect((await store.append(msg(c, "m3"))).armTimer).toBe(false);
        expectClaimed(await store.claim(c, { force: true }));
        expect((await store.append(msg(c, "m4"))).armTimer).toBe(true);
      });

      it("ids are remembered while their buffer is open, and for the dedup TTL since they came", async () => {
        const { store, advance } = await setup({ dedupTtlMs: 250 });
        const c = "support:ttls";
        expect((await store.append(msg(c, "m1"))).armTimer).toBe(true);
        expect((await store.append(msg(c, "m1"))).status).toBe("duplicate");
        expect((await store.append(msg(c, "m2"))).armTimer).toBe(false);
        await advance(300);
        // Past the window, but the buffer holding m1 is still open: still a duplicate.
        expect((await store.append(msg(c, "m1", "second time"))).status).toBe("duplicate");
        await store.append(msg(c, "m3"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        expect(claim.batch.messages.map((m) => m.text)).toEqual([
          "text of m1",
          "text of m2",
          "text of m3",
        ]);
        await store.ack(c, claim.batch.batchId, claim.token);
        await advance(100);
        // m3 is inside its window: still remembered.
        expect((await store.append(msg(c, "m3"))).status).toBe("duplicate");
        // Past the dedup TTL the emptying claim started, with no buffer open: forgotten (garbage).
        await advance(300);
        const again = await store.append(msg(c, "m1", "third time"));
        expect(again).toMatchObject({ status: "appended", size: 1, armTimer: true });
      });

      it("per-message events only with messageEvents; batch events always", async () => {
        const { store } = await setup({ messageEvents: false });
        const c = "support:no-events";
        const start = await store.readEvents(null);
        await store.append(msg(c, "m1"));
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await store.ack(c, claim.batch.batchId, claim.token);
        const read = await store.readEvents(start.cursor);
        expect(read.events.map((e) => e.type)).toEqual(["claimed", "delivered"]);
        expect((await store.stats()).totals).toMatchObject({ ingested: 1, duplicates: 1 });
      });

      it("messages round-trip; receivedAt is store time at append; text is joined", async () => {
        const { store } = await setup();
        const c = "whatsapp:106540352242922:966501234567";
        const photo = {
          kind: "image" as const,
          id: "1003383421387256",
          mimeType: "image/jpeg",
          caption: "hi",
          sha256: "HgsFkYVbfbo1ycFSCCtWNuK3ByRdqgmWsbWBrVQ2fuo=",
        };
        const where = { kind: "location" as const, latitude: 24.7136, longitude: 46.6753 };
        const a = await store.append({
          conversation: c,
          id: "wamid.1",
          provider: "whatsapp",
          text: "hi",
          sender: "966501234567",
          sentAt: "2026-11-22T10:00:00.000Z",
          attachments: [photo, where],
          meta: { name: "Sara", tags: [1, "x"] },
        });
        // Pending state shows the attachments too (what a superseding processor reads).
        expect((await store.inspect(c)).buffer?.messages[0]?.attachments).toEqual([photo, where]);
        const b = await store.append({
          conversation: c,
          id: "wamid.2",
          provider: "whatsapp",
          text: "I want\npizza",
        });
        const claim = expectClaimed(await store.claim(c, { force: true }));
        const batch = claim.batch;
        expect(batch.conversation).toBe(c);
        expect(batch.degraded).toBe(false);
        expect(batch.text).toBe("hi\nI want\npizza");
        expect(batch.firstAt).toBe(toIso(a.nowMs));
        expect(batch.lastAt).toBe(toIso(b.nowMs));
        expect(batch.messages).toEqual([
          {
            id: "wamid.1",
            provider: "whatsapp",
            text: "hi",
            sender: "966501234567",
            sentAt: "2026-11-22T10:00:00.000Z",
            receivedAt: toIso(a.nowMs),
            attachments: [photo, where],
            meta: { name: "Sara", tags: [1, "x"] },
          },
          {
            id: "wamid.2",
            provider: "whatsapp",
            text: "I want\npizza",
            receivedAt: toIso(b.nowMs),
            attachments: [],
            meta: {},
          },
        ]);
        expect(claim.createdAtMs).toBe(claim.nowMs);
        expect(claim.leaseUntilMs).toBeGreaterThan(claim.nowMs);
      });
    });

    describe("due rules", () => {
      it("quiet: not claimable before window + grace, claimable (reason quiet) after", async () => {
        const { store, settings, advance } = await setup();
        const c = "support:quiet";
        const a = await store.append(msg(c, "m1"));
        const early = await store.claim(c);
        expect(early).toMatchObject({ status: "not_due", dueAtMs: a.flushAtMs });
        expect(await store.listDue(partitionOf(c, settings.partitions), 10)).not.toContain(c);
        await advance(settings.windowMs + settings.graceMs + 20);
        expect(await store.listDue(partitionOf(c, settings.partitions), 10)).toContain(c);
        const claim = expectClaimed(await store.claim(c));
        expect(claim.batch.reason).toBe("quiet");
        expect(claim.batch.attempt).toBe(1);
        expect(ids(claim)).toEqual(["m1"]);
      });

      it("listDue and listConversations name conversations oldest first; a limit keeps the oldest", async () => {
        const { store, settings, advance } = await setup();
        // Three conversations of one partition, each burst opened a while after the one before.
        const p = partitionOf("support:order:0", settings.partitions);
        const same: string[] = [];
        for (let i = 0; same.length < 3; i++) {
          if (partitionOf(`support:order:${i}`, settings.partitions) === p) {
            same.push(`support:order:${i}`);
          }
        }
        // Appended newest-named first, so neither insertion nor name order is the answer.
        const [oldest, middle, newest] = [same[2]!, same[0]!, same[1]!];
        for (const c of [oldest, middle, newest]) {
          await store.append(msg(c, "m1"));
          await advance(30);
        }
        await advance(settings.windowMs + settings.graceMs + 20);
        expect(await store.listDue(p, 10)).toEqual([oldest, middle, newest]);
        expect(await store.listDue(p, 2)).toEqual([oldest, middle]);
        expect(await store.listConversations(p, 10)).toEqual([oldest, middle, newest]);
        expect(await store.listConversations(p, 1)).toEqual([oldest]);
      });

      it("grace: a message arriving after the window but inside the grace moves the due time", async () => {
        const { store, settings, advance } = await setup({ windowMs: 40, graceMs: 400 });
        const c = "support:grace";
        const a1 = await store.append(msg(c, "m1"));
        await advance(settings.windowMs + 40); // past the window, well inside the grace
        expect((await store.claim(c)).status).toBe("not_due");
        const a2 = await store.append(msg(c, "m2"));
        expect(a2.flushAtMs!).toBeGreaterThanOrEqual(a1.flushAtMs! + settings.windowMs + 40);
        const again = await store.claim(c);
        expect(again).toMatchObject({ status: "not_due", dueAtMs: a2.flushAtMs });
        await advance(settings.windowMs + settings.graceMs + 20);
        const claim = expectClaimed(await store.claim(c));
        expect(ids(claim)).toEqual(["m1", "m2"]);
        expect(claim.batch.reason).toBe("quiet");
      });

      it("max_wait caps a burst that never goes quiet", async () => {
        const { store, settings, advance } = await setup({
          windowMs: 100,
          graceMs: 100,
          maxWaitMs: 150,
        });
        const c = "support:cap";
        const a1 = await store.append(msg(c, "m1"));
        expect(a1.flushAtMs).toBe(a1.nowMs + settings.maxWaitMs);
        await advance(60);
        const a2 = await store.append(msg(c, "m2"));
        expect(a2.flushAtMs).toBe(a1.nowMs + settings.maxWaitMs);
        await advance(120);
        // Quiet would be due at m2 + 200; the cap (m1 + 150) has passed.
        const claim = expectClaimed(await store.claim(c));
        expect(claim.batch.reason).toBe("max_wait");
        expect(ids(claim)).toEqual(["m1", "m2"]);
      });

      it("max_messages flushes early, due at the filling append", async () => {
        const { store, settings } = await setup({ maxMessages: 3 });
        const c = "support:count";
        const p = partitionOf(c, settings.partitions);
        expect((await store.append(msg(c, "m1"))).flushAtMs).toBeGreaterThan(0);
        await store.append(msg(c, "m2"));
        expect(await store.listDue(p, 10)).not.toContain(c);
        const third = await store.append(msg(c, "m3"));
        expect(third.flushAtMs).toBe(third.nowMs);
        expect(await store.listDue(p, 10)).toContain(c);
        const claim = expectClaimed(await store.claim(c));
        expect(claim.batch.reason).toBe("max_messages");
        expect(ids(claim)).toEqual(["m1", "m2", "m3"]);
      });

      it("max_bytes flushes early; max_messages wins when both are hit", async () => {
        const { store } = await setup({ maxBytes: 400, maxMessages: 3 });
        const c = "support:bytes";
        const small = await store.append(msg(c, "m1", "short"));
        expect(small.flushAtMs).toBeGreaterThan(small.nowMs);
        const big = await store.append(msg(c, "m2", "x".repeat(400)));
        expect(big.flushAtMs).toBe(big.nowMs);
        const claim = expectClaimed(await store.claim(c));
        expect(claim.batch.reason).toBe("max_bytes");

        const d = "support:both";
        await store.append(msg(d, "m1", "y".repeat(200)));
        await store.append(msg(d, "m2", "y".repeat(200)));
        await store.append(msg(d, "m3", "y".repeat(200)));
        expect(expectClaimed(await store.claim(d)).batch.reason).toBe("max_messages");
      });
    });

    describe("claim", () => {
      it("statuses: empty, not_due, claimed (manual when forced early), locked", async () => {
        const { store } = await setup();
        const c = "support:statuses";
        expect((await store.claim(c)).status).toBe("empty");
        expect((await store.claim(c, { force: true })).status).toBe("empty");
        await store.append(msg(c, "m1"));
        expect((await store.claim(c)).status).toBe("not_due");
        const claim = expectClaimed(await store.claim(c, { force: true }));
        expect(claim.batch.reason).toBe("manual");
        expect(claim.batch.attempt).toBe(1);
        expect(claim.batch.fence).toBe(1);
        expect((await store.claim(c)).status).toBe("locked");
        expect((await store.claim(c, { force: true })).status).toBe("locked");
      });

      it("generation swap: a message appended in flight goes to the next batch, never merged", async () => {
        const { store } = await setup();
        const c = "support:swap";
        await store.append(msg(c, "m1"));
        await store.append(msg(c, "m2"));
        const first = expectClaimed(await store.claim(c, { force: true }));
        const during = await store.append(msg(c, "m3"));
        expect(during).toMatchObject({ status: "appended", size: 1 });
        const state = await store.inspect(c);
        expect(state.batch).toMatchObject({
          batchId: first.batch.batchId,
          size: 2,
          inFlight: true,
        });
        expect(state.buffer?.messages.map((m) => m.id)).toEqual(["m3"]);
        expect(ids(first)).toEqual(["m1", "m2"]);
        const acked = await store.ack(c, first.batch.batchId, first.token);
        expect(acked.dueAgainAtMs).toBe(during.flushAtMs);
        const second = expectClaimed(await store.claim(c, { force: true }));
        expect(ids(second)).toEqual(["m3"]);
        expect(second.batch.batchId).not.toBe(first.batch.batchId);
        expect(second.batch.fence).toBeGreaterThan(first.batch.fence);
        expect(second.batch.attempt).toBe(1);
      });

      it("ack with nothing newer: dueAgainAt null, conversation empty and unlisted", async () => {
        const { store, settings } = await setup();
        const c = "support:ack";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        expect(await store.ack(c, claim.batch.batchId, claim.token)).toEqual({
          alreadyAcked: false,
          dueAgainAtMs: null,
          partitionIdle: false,
        });
        expect((await store.claim(c, { force: true })).status).toBe("empty");
        const state = await store.inspect(c);
        expect(state.buffer).toBeNull();
        expect(state.batch).toBeNull();
        expect(await store.listConversations(partitionOf(c, settings.partitions), 10)).not
          .toContain(c);
      });

      it("every token-taking step checks the lock token, then the batch id", async () => {
        const { store } = await setup();
        const c = "support:tokens";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        const { batchId } = claim.batch;
        const fail = { error: "x", delayMs: 0, permanent: false };
        const wrongToken = [
          () => store.ack(c, batchId, "not-the-token"),
          () => store.fail(c, batchId, "not-the-token", fail),
          () => store.extend(c, batchId, "not-the-token"),
          () => store.supersede(c, batchId, "not-the-token"),
        ];
        for (const call of wrongToken) await expect(call()).rejects.toBeInstanceOf(LockLostError);
        const wrongBatch = [
          () => store.ack(c, "b_other", claim.token),
          () => store.fail(c, "b_other", claim.token, fail),
          () => store.extend(c, "b_other", claim.token),
          () => store.supersede(c, "b_other", claim.token),
        ];
        for (const call of wrongBatch) {
          await expect(call()).rejects.toBeInstanceOf(BatchNotFoundError);
        }
        // None of the rejected calls changed anything: the owner can still ack, once.
        await store.ack(c, batchId, claim.token);
        // A repeat of the same ack is answered from the processed record, and changes nothing.
        expect((await store.ack(c, batchId, claim.token)).alreadyAcked).toBe(true);
        await expect(store.ack("support:other", batchId, claim.token)).rejects
          .toBeInstanceOf(LockLostError);
      });
    });

    describe("retry and dead letters", () => {
      it("a retry blocks its own conversation's later batches, not other conversations", async () => {
        const { store } = await setup({ maxMessages: 1 });
        const a = "support:a";
        const b = "support:b";
        await store.append(msg(a, "a1"));
        const first = expectClaimed(await store.claim(a));
        const failed = await store.fail(a, first.batch.batchId, first.token, {
          error: "HTTP 503",
          delayMs: 30_000,
          permanent: false,
        });
        expect(failed).toMatchObject({ status: "retry", attempt: 1 });
        if (failed.status !== "retry") throw new Error("unreachable");
        expect(failed.retryAtMs).toBeGreaterThanOrEqual(first.nowMs + 30_000);
        // a2 fills a buffer that is due at once, but it queues behind the retry.
        await store.append(msg(a, "a2"));
        expect(await store.claim(a)).toMatchObject({
          status: "not_due",
          dueAtMs: failed.retryAtMs,
        });
        // Another conversation is unaffected.
        await store.append(msg(b, "b1"));
        expect(ids(expectClaimed(await store.claim(b)))).toEqual(["b1"]);
        // Forcing takes the retry batch, not the newer buffer.
        const retry = expectClaimed(await store.claim(a, { force: true }));
        expect(retry.batch.batchId).toBe(first.batch.batchId);
        expect(retry.batch.fence).toBe(first.batch.fence);
        expect(retry.batch.attempt).toBe(2);
        expect(ids(retry)).toEqual(["a1"]);
        const acked = await store.ack(a, retry.batch.batchId, retry.token);
        expect(acked.dueAgainAtMs).not.toBeNull();
        const next = expectClaimed(await store.claim(a));
        expect(ids(next)).toEqual(["a2"]);
        expect(next.batch.fence).toBeGreaterThan(retry.batch.fence);
      });

      it("a retry becomes claimable once its delay has passed, attempt counted", async () => {
        const { store, advance } = await setup();
        const c = "support:retry";
        await store.append(msg(c, "m1"));
        const first = expectClaimed(await store.claim(c, { force: true }));
        const r = await store.fail(c, first.batch.batchId, first.token, {
          error: "HTTP 500",
          delayMs: 200,
          permanent: false,
        });
        expect(r.status).toBe("retry");
        const state = await store.inspect(c);
        expect(state.batch).toMatchObject({ inFlight: false, lastError: "HTTP 500", attempt: 1 });
        expect(state.batch?.nextAttemptAtMs).toBe(r.status === "retry" ? r.retryAtMs : -1);
        expect((await store.claim(c)).status).toBe("not_due");
        await advance(250);
        const second = expectClaimed(await store.claim(c));
        expect(second.batch.batchId).toBe(first.batch.batchId);
        expect(second.batch.attempt).toBe(2);
        expect(second.createdAtMs).toBe(first.createdAtMs);
      });

      it("dead after retryMaxAttempts: the whole batch goes to the DLQ", async () => {
        const { store } = await setup({ retryMaxAttempts: 2 });
        const c = "support:attempts";
        await store.append(msg(c, "m1"));
        await store.append(msg(c, "m2"));
        const fail = { error: "HTTP 502", delayMs: 0, permanent: false };
        const c1 = expectClaimed(await store.claim(c, { force: true }));
        expect(await store.fail(c, c1.batch.batchId, c1.token, fail)).toMatchObject({
          status: "retry",
          attempt: 1,
        });
        const c2 = expectClaimed(await store.claim(c));
        expect(c2.batch.attempt).toBe(2);
        expect(await store.fail(c, c2.batch.batchId, c2.token, { ...fail, error: "HTTP 504" }))
          .toMatchObject({ status: "dead", attempt: 2 });
        const dead = await store.dlqGet(c1.batch.batchId);
        expect(dead).toMatchObject({
          batchId: c1.batch.batchId,
          conversation: c,
          fence: c1.batch.fence,
          attempts: 2,
          reason: "manual",
          lastError: "HTTP 504",
          firstAt: c1.batch.firstAt,
          lastAt: c1.batch.lastAt,
        });
        expect(dead?.messages).toEqual(c1.batch.messages);
        expect((await store.claim(c, { force: true })).status).toBe("empty");
      });

      it("permanent failure is dead at once; a buffer queued behind it is rescheduled", async () => {
        const { store, settings } = await setup();
        const c = "support:permanent";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        const queued = await store.append(msg(c, "m2"));
        expect(
          await store.fail(c, claim.batch.batchId, claim.token, {
            error: "HTTP 422",
            delayMs: 1000,
            permanent: true,
          }),
        ).toMatchObject({ status: "dead", attempt: 1 });
        const state = await store.inspect(c);
        expect(state.batch).toBeNull();
        expect(state.dueAtMs).toBe(queued.flushAtMs);
        expect(await store.listConversations(partitionOf(c, settings.partitions), 10)).toContain(c);
        expect(ids(expectClaimed(await store.claim(c, { force: true })))).toEqual(["m2"]);
      });

      it("the dead letter keeps the processor's response body: capped, masked unless logPii", async () => {
        const body = "لا أفهم " + "x".repeat(4000);
        const kinds = [{ logPii: false }, { logPii: true }];
        for (const { logPii } of kinds) {
          const { store } = await setup({ logPii });
          const c = "support:body";
          await store.append(msg(c, "m1"));
          const claim = expectClaimed(await store.claim(c, { force: true }));
          await store.fail(c, claim.batch.batchId, claim.token, {
            error: "processor answered 422",
            delayMs: 0,
            permanent: true,
            responseBody: body,
          });
          const dead = await store.dlqGet(claim.batch.batchId);
          if (logPii) {
            expect(new TextEncoder().encode(dead!.responseBody).length).toBeLessThanOrEqual(2048);
            expect(dead!.responseBody.startsWith("لا أفهم xxx")).toBe(true);
            expect(dead!.responseBody.length).toBeGreaterThan(2000);
          } else {
            expect(dead!.responseBody).toMatch(/^<\d+ chars>$/);
            expect(dead!.responseBody).not.toContain("x");
          }
          // A retry that later dead-letters keeps the last attempt's body; none = "".
          const c2 = "support:nobody";
          await store.append(msg(c2, "n1"));
          const claim2 = expectClaimed(await store.claim(c2, { force: true }));
          await store.fail(c2, claim2.batch.batchId, claim2.token, {
            error: "processor timed out",
            delayMs: 0,
            permanent: true,
          });
          expect((await store.dlqGet(claim2.batch.batchId))!.responseBody).toBe("");
        }
      });

      it("dead by age: a failure after retryMaxAgeMs since the first claim", async () => {
        const { store, advance } = await setup({ retryMaxAgeMs: 100 });
        const c = "support:age";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await advance(150);
        expect(
          await store.fail(c, claim.batch.batchId, claim.token, {
            error: "timeout",
            delayMs: 0,
            permanent: false,
          }),
        ).toMatchObject({ status: "dead", attempt: 1 });
        expect((await store.dlqGet(claim.batch.batchId))?.lastError).toBe("timeout");
      });

      it("DLQ: list newest first, get, requeue (not found, busy, ok), delete", async () => {
        const { store, advance } = await setup();
        const c = "support:dlq";
        const other = "telegram:777";
        const permanent = { error: "HTTP 400", delayMs: 0, permanent: true };
        await store.append(msg(c, "m1"));
        const x = expectClaimed(await store.claim(c, { force: true }));
        await store.fail(c, x.batch.batchId, x.token, permanent);
        await advance(5); // distinct deadAt, so "newest first" is observable
        await store.append(msg(other, "t1"));
        const y = expectClaimed(await store.claim(other, { force: true }));
        await store.fail(other, y.batch.batchId, y.token, permanent);

        const list = await store.dlqList();
        expect(list.map((d) => d.batchId)).toEqual([y.batch.batchId, x.batch.batchId]);
        expect((await store.dlqList({ limit: 1 })).map((d) => d.batchId)).toEqual([
          y.batch.batchId,
        ]);
        expect(list.find((d) => d.batchId === x.batch.batchId)?.partition).toBe(
          partitionOf(c, 4),
        );
        expect(await store.dlqGet("b_missing")).toBeNull();
        await expect(store.dlqRequeue("b_missing")).rejects.toBeInstanceOf(
          DeadLetterNotFoundError,
        );

        // Busy while another batch of the conversation is outstanding.
        await store.append(msg(c, "m2"));
        const busy = expectClaimed(await store.claim(c, { force: true }));
        await expect(store.dlqRequeue(x.batch.batchId)).rejects.toBeInstanceOf(
          ConversationBusyError,
        );
        expect(await store.dlqGet(x.batch.batchId)).not.toBeNull();
        await store.ack(c, busy.batch.batchId, busy.token);

        // Requeued: claimable now, same batch id, attempt reset, new fence.
        await store.append(msg(c, "m3")); // waits behind the requeued batch
        const requeued = await store.dlqRequeue(x.batch.batchId);
        expect(requeued.conversation).toBe(c);
        // The answer says when (store time): the batch is due from then.
        const now = await store.now();
        expect(requeued.nowMs).toBeLessThanOrEqual(now);
        expect(requeued.nowMs).toBeGreaterThan(now - 5_000);
        expect(await store.dlqGet(x.batch.batchId)).toBeNull();
        const re = expectClaimed(await store.claim(c));
        expect(re.batch).toMatchObject({
          batchId: x.batch.batchId,
          reason: "requeue",
          attempt: 1,
        });
        expect(re.batch.fence).toBeGreaterThan(busy.batch.fence);
        expect(ids(re)).toEqual(["m1"]);
        await store.ack(c, re.batch.batchId, re.token);
        expect(ids(expectClaimed(await store.claim(c, { force: true })))).toEqual(["m3"]);

        expect(await store.dlqDelete(y.batch.batchId)).toBe(true);
        expect(await store.dlqDelete(y.batch.batchId)).toBe(false);
        expect(await store.dlqGet(y.batch.batchId)).toBeNull();
        expect(await store.dlqList()).toEqual([]);
      });
    });

    describe("purgeConversation (privacy request)", () => {
      it("removes buffer, waiting batch, dedup ids, dead letters and raw-keyed events; keeps the fence; others untouched", async () => {
        const { store, settings } = await setup({ logPii: true });
        const c = "whatsapp:111:966500000001";
        const other = "whatsapp:111:966500000002";
        // A dead letter, a batch awaiting retry and an open buffer behind it.
        await store.append(msg(c, "d1", "dead text"));
        const d = expectClaimed(await store.claim(c, { force: true }));
        await store.fail(c, d.batch.batchId, d.token, {
          error: "processor answered 400",
          delayMs: 0,
          permanent: true,
        });
        await store.append(msg(c, "r1", "retry text"));
        const r = expectClaimed(await store.claim(c, { force: true }));
        await store.fail(c, r.batch.batchId, r.token, {
          error: "processor answered 500",
          delayMs: 60_000,
          permanent: false,
        });
        await store.append(msg(c, "o1", "open text"));
        // The other conversation has the same shapes in the same store.
        await store.append(msg(other, "x1", "keep me"));
        const od = expectClaimed(await store.claim(other, { force: true }));
        await store.fail(other, od.batch.batchId, od.token, {
          error: "processor answered 400",
          delayMs: 0,
          permanent: true,
        });
        await store.append(msg(other, "x2", "keep me too"));
        const eventsBefore = (await store.readEvents({}, { limit: 1000 })).events;
        expect(eventsBefore.some((e) => e.conversation === c)).toBe(true);

        const purged = await store.purgeConversation(c);
        expect(purged).toEqual({
          buffered: 1,
          batchMessages: 1,
          dedupIds: 3,
          events: eventsBefore.filter((e) => e.conversation === c).length,
          deadLetters: 1,
        });
        const state = await store.inspect(c);
        expect(state.buffer).toBeNull();
        expect(state.batch).toBeNull();
        expect(state.dueAtMs).toBeNull();
        expect(await store.dlqGet(d.batch.batchId)).toBeNull();
        const p = partitionOf(c, settings.partitions);
        expect(await store.listConversations(p, 100)).not.toContain(c);
        const after = (await store.readEvents({}, { limit: 1000 })).events;
        expect(after.filter((e) => e.conversation === c)).toEqual([]);
        // The other conversation is exactly as it was.
        expect(after.filter((e) => e.conversation === other)).toEqual(
          eventsBefore.filter((e) => e.conversation === other),
        );
        expect((await store.dlqGet(od.batch.batchId))?.messages.map((m) => m.text)).toEqual([
          "keep me",
        ]);
        expect((await store.inspect(other)).buffer?.messages.map((m) => m.id)).toEqual(["x2"]);
        // Dedup ids are gone (a redelivery is buffered again); the fence went on, never back.
        expect((await store.append(msg(c, "o1", "again"))).status).toBe("appended");
        const next = expectClaimed(await store.claim(c, { force: true }));
        expect(next.batch.fence).toBeGreaterThan(r.batch.fence);
        expect(ids(next)).toEqual(["o1"]);
      });

      it("removes the delivered events that carry the conversation's texts (logPii)", async () => {
        const { store } = await setup({ logPii: true });
        const c = "whatsapp:966500000003";
        const other = "whatsapp:966500000004";
        for (const conv of [c, other]) {
          await store.append(msg(conv, "m1", `secret of ${conv}`));
          const claim = expectClaimed(await store.claim(conv, { force: true }));
          await store.ack(conv, claim.batch.batchId, claim.token, {
            messages: claim.batch.messages,
          });
        }
        const before = (await store.latestEvents({ type: "delivered" })).events;
        expect(before.map((e) => e.fields.texts).join()).toContain(`secret of ${c}`);
        const purged = await store.purgeConversation(c);
        expect(purged.events).toBe(3); // appended, claimed, delivered
        const after = await store.latestEvents({ limit: 1000 });
        expect(JSON.stringify(after.events)).not.toContain(`secret of ${c}`);
        expect(after.events.filter((e) => e.conversation === c)).toEqual([]);
        expect((await store.latestEvents({ type: "delivered" })).events.map((e) => e.fields.texts))
          .toEqual(before.filter((e) => e.conversation === other).map((e) => e.fields.texts));
      });

      it("refuses while a batch is in flight, changing nothing", async () => {
        const { store } = await setup();
        const c = "support:inflight";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await store.append(msg(c, "m2"));
        await expect(store.purgeConversation(c)).rejects.toBeInstanceOf(ConversationBusyError);
        const state = await store.inspect(c);
        expect(state.batch?.batchId).toBe(claim.batch.batchId);
        expect(state.buffer?.size).toBe(1);
        await store.ack(c, claim.batch.batchId, claim.token);
        expect((await store.purgeConversation(c)).buffered).toBe(1);
      });
    });

    describe("leases", () => {
      it("extend renews the lease past the original expiry", async () => {
        const { store, settings, advance } = await setup({ lockTtlMs: 500 });
        const c = "support:extend";
        const p = partitionOf(c, settings.partitions);
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await advance(300);
        const { leaseUntilMs } = await store.extend(c, claim.batch.batchId, claim.token);
        expect(leaseUntilMs).toBeGreaterThanOrEqual(claim.leaseUntilMs + 300);
        await advance(300); // past the first lease, inside the renewed one
        expect(await store.reapExpired(p, 10)).toEqual([]);
        expect((await store.claim(c, { force: true })).status).toBe("locked");
        await store.ack(c, claim.batch.batchId, claim.token);
      });

      it("crashed flusher: lease expiry -> reap -> claim takes the same batch over, attempt + 1", async () => {
        const { store, settings, advance } = await setup({ lockTtlMs: 200 });
        const c = "support:crash";
        const p = partitionOf(c, settings.partitions);
        await store.append(msg(c, "m1"));
        const dead = expectClaimed(await store.claim(c, { force: true }));
        expect(await store.reapExpired(p, 10)).toEqual([]);
        await advance(250);
        const { cursor } = await store.readEvents(null);
        expect(await store.reapExpired(p, 10)).toEqual([c]);
        expect((await store.readEvents(cursor)).events.map((e) => e.type)).toEqual(["reaped"]);
        expect(await store.reapExpired(p, 10)).toEqual([]);
        expect(await store.listDue(p, 10)).toContain(c);
        const taken = expectClaimed(await store.claim(c));
        expect(taken.batch.batchId).toBe(dead.batch.batchId);
        expect(taken.batch.fence).toBe(dead.batch.fence);
        expect(taken.batch.attempt).toBe(2);
        expect(taken.token).not.toBe(dead.token);
        await expect(store.ack(c, dead.batch.batchId, dead.token)).rejects.toBeInstanceOf(
          LockLostError,
        );
        await store.ack(c, taken.batch.batchId, taken.token);
        expect((await store.stats()).totals.reaped).toBe(1);
      });
    });

    describe("supersede", () => {
      it("nothing_newer leaves the batch and lock as they were", async () => {
        const { store } = await setup();
        const c = "support:nothing";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        expect(await store.supersede(c, claim.batch.batchId, claim.token)).toEqual({
          status: "nothing_newer",
        });
        expect((await store.claim(c, { force: true })).status).toBe("locked");
        expect(await store.ack(c, claim.batch.batchId, claim.token)).toEqual({
          alreadyAcked: false,
          dueAgainAtMs: null,
          partitionIdle: false,
        });
      });

      it("merged: the batch goes back ahead of newer messages, order kept, attempt not counted", async () => {
        const { store, settings, advance } = await setup();
        const c = "support:merge";
        await store.append(msg(c, "m1"));
        await store.append(msg(c, "m2"));
        const first = expectClaimed(await store.claim(c, { force: true }));
        await advance(5); // so the merged firstAt is observably the batch's, not the buffer's
        await store.append(msg(c, "m3"));
        const last = await store.append(msg(c, "m4"));
        const merged = await store.supersede(c, first.batch.batchId, first.token);
        expect(merged).toEqual({
          status: "merged",
          size: 4,
          flushAtMs: last.nowMs + settings.windowMs + settings.graceMs,
        });
        await expect(store.ack(c, first.batch.batchId, first.token)).rejects.toBeInstanceOf(
          LockLostError,
        );
        const state = await store.inspect(c);
        expect(state.batch).toBeNull();
        expect(state.buffer?.messages.map((m) => m.id)).toEqual(["m1", "m2", "m3", "m4"]);
        const next = expectClaimed(await store.claim(c, { force: true }));
        expect(ids(next)).toEqual(["m1", "m2", "m3", "m4"]);
        expect(next.batch.batchId).not.toBe(first.batch.batchId);
        expect(next.batch.attempt).toBe(1);
        expect(next.batch.firstAt).toBe(first.batch.firstAt);
        expect(next.batch.fence).toBeGreaterThan(first.batch.fence);
        expect((await store.stats()).totals.superseded).toBe(1);
      });
    });

    it("fences strictly increase per conversation and are independent across conversations", async () => {
      const { store } = await setup({ maxMessages: 1 });
      const c = "support:fence";
      const other = "support:fence-other";
      const fences: number[] = [];
      for (let i = 0; i < 4; i++) {
        await store.append(msg(c, `m${i}`));
        const claim = expectClaimed(await store.claim(c));
        fences.push(claim.batch.fence);
        if (i === 1) {
          // A retry keeps its fence; the next batch still gets a bigger one.
          await store.fail(c, claim.batch.batchId, claim.token, {
            error: "x",
            delayMs: 0,
            permanent: false,
          });
          const again = expectClaimed(await store.claim(c));
          expect(again.batch.fence).toBe(claim.batch.fence);
          await store.ack(c, again.batch.batchId, again.token);
        } else {
          await store.ack(c, claim.batch.batchId, claim.token);
        }
      }
      for (let i = 1; i < fences.length; i++) {
        expect(fences[i]).toBeGreaterThan(fences[i - 1]!);
      }
      await store.append(msg(other, "o1"));
      expect(expectClaimed(await store.claim(other)).batch.fence).toBe(1);
    });

    describe("inspect and listing", () => {
      it("inspect shows the open buffer, the batch and the due score", async () => {
        const { store, settings } = await setup();
        const c = "support:inspect";
        const empty = await store.inspect(c);
        expect(empty).toMatchObject({
          conversation: c,
          partition: partitionOf(c, settings.partitions),
          buffer: null,
          batch: null,
          dueAtMs: null,
        });
        const a = await store.append(msg(c, "m1", "hello"));
        const s1 = await store.inspect(c);
        expect(s1.buffer).toMatchObject({
          size: 1,
          firstAt: toIso(a.nowMs),
          lastAt: toIso(a.nowMs),
          flushAtMs: a.flushAtMs,
        });
        expect(s1.buffer?.messages[0]?.text).toBe("hello");
        expect(s1.dueAtMs).toBe(a.flushAtMs);
        expect(s1.nowMs).toBeGreaterThanOrEqual(a.nowMs);
        const claim = expectClaimed(await store.claim(c, { force: true }));
        const s2 = await store.inspect(c);
        expect(s2.buffer).toBeNull();
        expect(s2.batch).toEqual({
          batchId: claim.batch.batchId,
          fence: claim.batch.fence,
          attempt: 1,
          reason: "manual",
          size: 1,
          inFlight: true,
          nextAttemptAtMs: null,
          lastError: null,
        });
        expect(s2.dueAtMs).toBeNull();
      });

      it("listDue lists claimable conversations only; listConversations lists all pending", async () => {
        // A long window: "quiet:1 is not due yet" must hold however slow the calls are.
        const { store } = await setup({ partitions: 1, maxMessages: 2, windowMs: 60_000 });
        await store.append(msg("due:1", "a"));
        await store.append(msg("due:1", "b")); // full: due now
        await store.append(msg("quiet:1", "a")); // waiting for its window
        await store.append(msg("flight:1", "a"));
        expectClaimed(await store.claim("flight:1", { force: true }));
        expect(await store.listDue(0, 10)).toEqual(["due:1"]);
        expect([...await store.listConversations(0, 10)].sort()).toEqual([
          "due:1",
          "flight:1",
          "quiet:1",
        ]);
        // Every store answers alike, limit included: due ones by due time, then in-flight ones.
        expect(await store.listConversations(0, 10)).toEqual(["due:1", "quiet:1", "flight:1"]);
        expect(await store.listConversations(0, 2)).toEqual(["due:1", "quiet:1"]);
        expect(await store.listDue(0, 0)).toEqual([]);
      });
    });

    describe("live data never expires", () => {
      // Every TTL of the settings is short here, so the waits below pass all of them: dedup ids,
      // processed records and timer markers may go; buffers, batches and fences may not.
      const shortTtls = {
        dedupTtlMs: 120,
        processedTtlMs: 120,
        timerTtlMs: 120,
        retryMaxAgeMs: 120,
        maxWaitMs: 150,
      };

      it("an open buffer waits past every TTL and still flushes whole", async () => {
        const { store, advance } = await setup(shortTtls);
        const c = "support:idle-buffer";
        await store.append(msg(c, "m1"));
        await store.append(msg(c, "m2"));
        await advance(400); // no sweep ran (a Cron stopped): past every TTL
        expect((await store.inspect(c)).buffer?.size).toBe(2);
        expect(await store.listDue(partitionOf(c, 4), 10)).toContain(c);
        expect(ids(expectClaimed(await store.claim(c)))).toEqual(["m1", "m2"]);
      });

      it("a buffer queued behind a retrying batch waits past every TTL", async () => {
        const { store, advance } = await setup({ ...shortTtls, retryMaxAgeMs: 60_000 });
        const c = "support:queued";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await store.append(msg(c, "m2"));
        await store.fail(c, claim.batch.batchId, claim.token, {
          error: "processor down",
          delayMs: 300,
          permanent: false,
        });
        await advance(400); // the processor was down longer than every TTL
        const retry = expectClaimed(await store.claim(c));
        expect(retry.batch.batchId).toBe(claim.batch.batchId);
        expect(ids(retry)).toEqual(["m1"]);
        const acked = await store.ack(c, retry.batch.batchId, retry.token);
        expect(acked.dueAgainAtMs).not.toBeNull();
        expect(ids(expectClaimed(await store.claim(c, { force: true })))).toEqual(["m2"]);
      });

      it("fences strictly increase across idle gaps longer than every TTL", async () => {
        const { store, advance } = await setup(shortTtls);
        const c = "support:fence-gap";
        const fences: number[] = [];
        for (let burst = 0; burst < 3; burst++) {
          await store.append(msg(c, `m${burst}`));
          const claim = expectClaimed(await store.claim(c, { force: true }));
          fences.push(claim.batch.fence);
          await store.ack(c, claim.batch.batchId, claim.token);
          await advance(300); // quiet for longer than the dedup TTL
        }
        expect(fences).toEqual([1, 2, 3]);
      });

      it("a DLQ requeue after a quiet gap gets a fence above every earlier one", async () => {
        const { store, advance } = await setup(shortTtls);
        const c = "support:requeue-gap";
        await store.append(msg(c, "m1"));
        const first = expectClaimed(await store.claim(c, { force: true }));
        await store.fail(c, first.batch.batchId, first.token, {
          error: "bad request",
          delayMs: 0,
          permanent: true,
        });
        await store.append(msg(c, "m2"));
        const second = expectClaimed(await store.claim(c, { force: true }));
        await store.ack(c, second.batch.batchId, second.token);
        await advance(300);
        await store.dlqRequeue(first.batch.batchId);
        const requeued = expectClaimed(await store.claim(c));
        expect(requeued.batch.batchId).toBe(first.batch.batchId);
        expect([first.batch.fence, second.batch.fence, requeued.batch.fence]).toEqual([1, 2, 3]);
      });

      it("garbage still goes: an id forgotten past the dedup TTL is buffered again", async () => {
        const { store, advance } = await setup(shortTtls);
        const c = "support:garbage";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await store.ack(c, claim.batch.batchId, claim.token);
        await advance(300);
        expect((await store.append(msg(c, "m1"))).status).toBe("appended");
      });
    });

    describe("wake index (the idle sweep is O(1))", () => {
      it("idle: no partition to visit, no wake-up at all", async () => {
        const { store } = await setup();
        expect(await store.dueWakes(16)).toMatchObject({ partitions: [], earliestWakeAtMs: null });
      });

      it("a new burst lowers its partition's wake-up to its due time", async () => {
        const { store, advance, settings } = await setup();
        const c = "support:wake";
        const first = await store.append(msg(c, "m1"));
        const before = await store.dueWakes(16);
        expect(before.earliestWakeAtMs).toBe(first.flushAtMs);
        expect(before.partitions).toEqual([]);
        await store.append(msg(c, "m2")); // later messages keep the bound (the due only moves later)
        expect((await store.dueWakes(16)).earliestWakeAtMs).toBe(first.flushAtMs);
        await advance(settings.windowMs + settings.graceMs + 20);
        const due = await store.dueWakes(16);
        expect(due.partitions.map((w) => w.partition)).toEqual([partitionOf(c, 4)]);
      });

      it("an append that lowers the wake-up answers the epoch it left; wakeEpoch reads it", async () => {
        const { store } = await setup({ partitions: 1 });
        expect(await store.wakeEpoch(0)).toBe("0");
        const first = await store.append(msg("a:1", "m1"));
        expect(first.wake).toEqual({ partition: 0, epoch: "1" });
        expect(await store.wakeEpoch(0)).toBe("1");
        // A later message of the burst does not lower it: no epoch, none moved.
        expect((await store.append(msg("a:1", "m2"))).wake).toBeUndefined();
        expect(await store.wakeEpoch(0)).toBe("1");
        const other = await store.append(msg("b:1", "n1"));
        expect(other.wake).toEqual({ partition: 0, epoch: "2" });
        // The first burst's timer, done with it, may settle only with the current epoch.
        const claim = expectClaimed(await store.claim("a:1", { force: true }));
        await store.ack("a:1", claim.batch.batchId, claim.token);
        expect(await store.wakeEpoch(0)).not.toBe(first.wake!.epoch);
      });

      it("settling after the sweep delivered everything drops the wake-up", async () => {
        const { store, advance, settings } = await setup();
        const c = "support:settle";
        await store.append(msg(c, "m1"));
        await advance(settings.windowMs + settings.graceMs + 20);
        const [wake] = (await store.dueWakes(16)).partitions;
        const claim = expectClaimed(await store.claim(c));
        expect((await store.settleWake(wake!)).nextWakeAtMs).toBe(claim.leaseUntilMs);
        await store.ack(c, claim.batch.batchId, claim.token);
        // The lease was the wake-up; a later visit (no lowering since: same epoch) drops it.
        expect((await store.settleWake(wake!)).nextWakeAtMs).toBeNull();
        expect(await store.dueWakes(16)).toMatchObject({ partitions: [], earliestWakeAtMs: null });
      });

      it("an ack asked to probe says whether its partition is left holding nothing", async () => {
        const { store } = await setup({ partitions: 1 });
        await store.append(msg("a:1", "m1"));
        await store.append(msg("b:1", "n1"));
        const a = expectClaimed(await store.claim("a:1", { force: true }));
        // b's buffer is still on the due index: not idle. Not asked: never idle.
        expect(await store.ack("a:1", a.batch.batchId, a.token, { probePartition: true }))
          .toMatchObject({ dueAgainAtMs: null, partitionIdle: false });
        const b = expectClaimed(await store.claim("b:1", { force: true }));
        await store.append(msg("b:1", "n2")); // queued behind the batch: due again, not idle
        const queued = await store.ack("b:1", b.batch.batchId, b.token, { probePartition: true });
        expect(queued.partitionIdle).toBe(false);
        expect(queued.dueAgainAtMs).toBeGreaterThan(0);
        expect((await store.inspect("b:1")).buffer?.size).toBe(1);
        const b2 = expectClaimed(await store.claim("b:1", { force: true }));
        expect(await store.ack("b:1", b2.batch.batchId, b2.token)).toMatchObject({
          dueAgainAtMs: null,
          partitionIdle: false,
        });
        await store.append(msg("c:1", "o1"));
        const c = expectClaimed(await store.claim("c:1", { force: true }));
        expect(await store.ack("c:1", c.batch.batchId, c.token, { probePartition: true }))
          .toMatchObject({ dueAgainAtMs: null, partitionIdle: true, alreadyAcked: false });
      });

      it("a settle told the next due time drops the wake-up unless a noteWake came since", async () => {
        const { store } = await setup({ partitions: 1 });
        const first = await store.append(msg("a:1", "m1"));
        const a = expectClaimed(await store.claim("a:1", { force: true }));
        await store.ack("a:1", a.batch.batchId, a.token);
        // The epoch moved since first.wake (b's burst): the wake-up stays, at b's due time.
        const b = await store.append(msg("b:1", "n1"));
        const kept = await store.settleWake(first.wake!, { nextDueAtMs: null });
        expect(kept.nextWakeAtMs).not.toBeNull();
        expect(kept.nextWakeAtMs!).toBeLessThanOrEqual(b.flushAtMs!);
        const bc = expectClaimed(await store.claim("b:1", { force: true }));
        await store.ack("b:1", bc.batch.batchId, bc.token);
        // With the current epoch (the forced claim lowered it to its lease end) it is dropped,
        // with no read of the due index.
        const current = { partition: b.wake!.partition, epoch: await store.wakeEpoch(0) };
        expect(await store.settleWake(current, { nextDueAtMs: null })).toEqual({
          nextWakeAtMs: null,
        });
        expect(await store.dueWakes(16)).toMatchObject({ partitions: [], earliestWakeAtMs: null });
      });

      it("a noteWake during the sweep is never overwritten by the sweep's settle", async () => {
        const { store, advance, settings } = await setup({ partitions: 1 });
        await store.append(msg("a:1", "m1"));
        await advance(settings.windowMs + settings.graceMs + 20);
        const [wake] = (await store.dueWakes(16)).partitions;
        const claim = expectClaimed(await store.claim("a:1"));
        await store.ack("a:1", claim.batch.batchId, claim.token);
        // Meanwhile a new burst starts in the same partition and lowers the wake-up.
        const b = await store.append(msg("b:1", "n1"));
        // The settle saw the epoch move: it may only lower, never raise past b's due time.
        const settled = await store.settleWake(wake!);
        expect(settled.nextWakeAtMs!).toBeLessThanOrEqual(b.flushAtMs!);
        // The next visit (nothing due yet, same epoch) settles it exactly.
        const next = await store.dueWakes(16);
        const epoch = next.partitions[0]?.epoch ?? String(Number(wake!.epoch) + 1);
        expect((await store.settleWake({ partition: 0, epoch })).nextWakeAtMs).toBe(b.flushAtMs);
      });

      it("a retry, a requeue and a forced claim keep the wake-up at or before their times", async () => {
        const { store } = await setup({ partitions: 1 });
        const c = "support:retry-wake";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        const [wake] = (await store.dueWakes(16)).partitions.length > 0
          ? (await store.dueWakes(16)).partitions
          : [{ partition: 0, epoch: "-" }];
        const failed = await store.fail(c, claim.batch.batchId, claim.token, {
          error: "503",
          delayMs: 50,
          permanent: false,
        });
        if (failed.status !== "retry") throw new Error("expected a retry");
        await store.noteWake(c, failed.retryAtMs); // what the flusher does after a fail
        await store.settleWake(wake!);
        const earliest = (await store.dueWakes(16)).earliestWakeAtMs;
        expect(earliest).not.toBeNull();
        expect(earliest!).toBeLessThanOrEqual(failed.retryAtMs);
      });
    });

    describe("quotas (off by default)", () => {
      it("a conversation over its per-minute quota is refused, and nothing of it is written", async () => {
        const { store } = await setup({ maxMessagesPerMinute: 2 });
        const c = "support:flood";
        expect((await store.append(msg(c, "q1"))).status).toBe("appended");
        expect((await store.append(msg(c, "q2"))).status).toBe("appended");
        const refused = await store.append(msg(c, "q3"));
        expect(refused.status).toBe("refused");
        expect(refused.refused?.scope).toBe("conversation");
        expect(refused.refused!.retryAfterMs).toBeGreaterThan(0);
        expect(refused.refused!.retryAfterMs).toBeLessThanOrEqual(60_000);
        // A duplicate is never refused; another conversation has its own quota.
        expect((await store.append(msg(c, "q1"))).status).toBe("duplicate");
        expect((await store.append(msg("support:calm", "x1"))).status).toBe("appended");
        // Nothing of the refused message was kept, not even its id.
        expect((await store.inspect(c)).buffer?.messages.map((m) => m.id)).toEqual(["q1", "q2"]);
        // Acknowledged messages replayed from the outbox are never refused.
        expect((await store.append(msg(c, "q4"), { quota: false })).status).toBe("appended");
      });

      it("a provider over its quota is refused (per partition: ceil(quota / partitions))", async () => {
        const { store } = await setup({ partitions: 1, providerQuotas: { generic: 3 } });
        const results = [];
        for (let i = 0; i < 4; i++) results.push((await store.append(msg(`p:${i}`, "m"))).status);
        expect(results).toEqual(["appended", "appended", "appended", "refused"]);
        const other = await store.append({ ...msg("p:wa", "w"), provider: "whatsapp" });
        expect(other.status).toBe("appended");
      });

      it("without quotas nothing is ever refused", async () => {
        const { store } = await setup();
        for (let i = 0; i < 60; i++) {
          expect((await store.append(msg("support:many", `n${i}`))).status).toBe("appended");
        }
      });
    });

    describe("bounded batches", () => {
      it("a buffer that queued past MAX_MESSAGES behind a batch is split, in order", async () => {
        const { store } = await setup({ maxMessages: 3 });
        const c = "support:split";
        await store.append(msg(c, "a"));
        const first = expectClaimed(await store.claim(c, { force: true }));
        for (const id of ["b", "c", "d", "e", "f", "g", "h"]) await store.append(msg(c, id));
        await store.ack(c, first.batch.batchId, first.token);
        const batches: string[][] = [];
        for (let i = 0; i < 5; i++) {
          const r = await store.claim(c, { force: true });
          if (r.status !== "claimed") break;
          expect(r.claim.batch.messages.length).toBeLessThanOrEqual(3);
          batches.push(ids(r.claim));
          await store.ack(c, r.claim.batch.batchId, r.claim.token);
        }
        expect(batches).toEqual([["b", "c", "d"], ["e", "f", "g"], ["h"]]);
      });

      it("MAX_BYTES bounds every batch; a single oversized message goes alone", async () => {
        const { store } = await setup({ maxBytes: 400 });
        const c = "support:split-bytes";
        await store.append(msg(c, "x0"));
        const first = expectClaimed(await store.claim(c, { force: true }));
        await store.append(msg(c, "x1", "a".repeat(100)));
        await store.append(msg(c, "x2", "b".repeat(100)));
        await store.append(msg(c, "big", "c".repeat(900)));
        await store.append(msg(c, "x3", "d".repeat(100)));
        await store.ack(c, first.batch.batchId, first.token);
        const batches: string[][] = [];
        for (let i = 0; i < 5; i++) {
          const r = await store.claim(c, { force: true });
          if (r.status !== "claimed") break;
          batches.push(ids(r.claim));
          await store.ack(c, r.claim.batch.batchId, r.claim.token);
        }
        expect(batches).toEqual([["x1", "x2"], ["big"], ["x3"]]);
      });

      it("a split keeps the remainder's firstAt and reports the batch's own lastAt", async () => {
        const { store, advance } = await setup({ maxMessages: 2 });
        const c = "support:split-times";
        await store.append(msg(c, "a"));
        const first = expectClaimed(await store.claim(c, { force: true }));
        await store.append(msg(c, "b"));
        await advance(20);
        await store.append(msg(c, "c"));
        await advance(20);
        await store.append(msg(c, "d"));
        await store.ack(c, first.batch.batchId, first.token);
        const second = expectClaimed(await store.claim(c, { force: true }));
        expect(ids(second)).toEqual(["b", "c"]);
        expect(second.batch.lastAt).toBe(second.batch.messages[1]!.receivedAt);
        const rest = await store.inspect(c);
        expect(rest.buffer?.size).toBe(1);
        expect(rest.buffer?.firstAt).toBe(rest.buffer?.messages[0]?.receivedAt);
      });
    });

    describe("supersede keeps the batch's age", () => {
      it("past MAX_AGE a supersede is refused and the fail dead-letters the batch", async () => {
        const { store, advance } = await setup({ retryMaxAgeMs: 1500 });
        const c = "support:supersede-age";
        await store.append(msg(c, "m1"));
        let claim = expectClaimed(await store.claim(c, { force: true }));
        const createdAtMs = claim.createdAtMs;
        for (let i = 0; i < 2; i++) {
          await store.append(msg(c, `newer${i}`));
          const merged = await store.supersede(c, claim.batch.batchId, claim.token);
          expect(merged.status).toBe("merged");
          claim = expectClaimed(await store.claim(c, { force: true }));
          expect(claim.createdAtMs).toBe(createdAtMs);
          expect(claim.batch.attempt).toBe(1);
        }
        await advance(1600);
        await store.append(msg(c, "newest"));
        expect((await store.supersede(c, claim.batch.batchId, claim.token)).status).toBe(
          "expired",
        );
        const failed = await store.fail(c, claim.batch.batchId, claim.token, {
          error: "superseded past max age",
          delayMs: 0,
          permanent: false,
        });
        expect(failed.status).toBe("dead");
        const dead = await store.dlqList();
        expect(dead.map((d) => d.messages.map((m) => m.id))).toEqual([[
          "m1",
          "newer0",
          "newer1",
        ]]);
      });

      it("attempts before a supersede still count toward MAX_ATTEMPTS", async () => {
        const { store } = await setup({ retryMaxAttempts: 3 });
        const c = "support:supersede-attempts";
        await store.append(msg(c, "m1"));
        let claim = expectClaimed(await store.claim(c, { force: true }));
        await store.fail(c, claim.batch.batchId, claim.token, {
          error: "500",
          delayMs: 0,
          permanent: false,
        });
        claim = expectClaimed(await store.claim(c, { force: true }));
        expect(claim.batch.attempt).toBe(2);
        await store.append(msg(c, "m2"));
        await store.supersede(c, claim.batch.batchId, claim.token);
        claim = expectClaimed(await store.claim(c, { force: true }));
        expect(claim.batch.attempt).toBe(2); // the superseded delivery was not an attempt
      });
    });

    describe("ack is idempotent", () => {
      it("a repeated ack of a delivered batch finds its processed record", async () => {
        const { store } = await setup();
        const c = "support:ack-twice";
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        expect((await store.ack(c, claim.batch.batchId, claim.token)).alreadyAcked).toBe(false);
        expect((await store.ack(c, claim.batch.batchId, claim.token)).alreadyAcked).toBe(true);
        await expect(store.ack(c, "b_other", claim.token)).rejects.toBeInstanceOf(LockLostError);
      });
    });

    describe("stats and events", () => {
      it("stats count what happened, per day and in total, with current sizes", async () => {
        const { store } = await setup();
        await store.append(msg("s:a", "1"));
        await store.append(msg("s:a", "2"));
        await store.append(msg("s:a", "1"));
        await store.append(msg("s:b", "1"));
        await store.append(msg("s:c", "1"));
        const before = await store.stats();
        expect(before.openBuffers).toBe(3);
        expect(before.inFlight).toBe(0);
        const a = expectClaimed(await store.claim("s:a", { force: true }));
        const mid = await store.stats();
        expect(mid.openBuffers).toBe(2);
        expect(mid.inFlight).toBe(1);
        await store.ack("s:a", a.batch.batchId, a.token);
        const b = expectClaimed(await store.claim("s:b", { force: true }));
        await store.fail("s:b", b.batch.batchId, b.token, {
          error: "e",
          delayMs: 0,
          permanent: false,
        });
        // A batch awaiting retry waits to flush like an open buffer does: counted alike.
        expect((await store.stats()).openBuffers).toBe(2);
        const b2 = expectClaimed(await store.claim("s:b", { force: true }));
        await store.fail("s:b", b2.batch.batchId, b2.token, {
          error: "e",
          delayMs: 0,
          permanent: true,
        });
        await store.recordEvent("s:c", "fallback", { id: "1" }, "fallbacks");
        const s = await store.stats();
        // Ingested counts a burst's messages when it becomes a batch: s:a's two and s:b's one.
        expect(s.totals).toEqual({
          ingested: 3,
          duplicates: 1,
          batches: 1,
          batch_messages: 2,
          retries: 1,
          dead: 1,
          superseded: 0,
          reaped: 0,
          fallbacks: 1,
        });
        expect(s.dlqSize).toBe(1);
        expect(s.inFlight).toBe(0);
        expect(s.days).toHaveLength(7);
        const today = s.days[6]!;
        expect(today.day).toBe(toIso(s.nowMs).slice(0, 10));
        expect(today.counters).toEqual(s.totals);
        expect(s.days[0]!.day < today.day).toBe(true);
        expect(s.days[0]!.counters.ingested).toBe(0);
      });

      it("readEvents: a burst's events in order, masked, from the cursor on, paginated", async () => {
        const { store } = await setup();
        const c = "whatsapp:966501234567";
        await store.append(msg(c, "before"));
        const start = await store.readEvents(null);
        expect(start.events).toEqual([]);
        await store.append(msg(c, "m1"));
        await store.append(msg(c, "m2"));
        await store.append(msg(c, "m1"));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await store.ack(c, claim.batch.batchId, claim.token);
        const read = await store.readEvents(start.cursor, { limit: 100 });
        expect(read.events.map((e) => e.type)).toEqual([
          "appended",
          "appended",
          "duplicate",
          "claimed",
          "delivered",
        ]);
        const p = partitionOf(c, 4);
        for (const e of read.events) {
          expect(e.conversation).toBe(maskConversation(c, false));
          expect(e.conversation).not.toContain("501234");
          expect(e.partition).toBe(p);
        }
        expect(read.events[3]?.fields.batchId).toBe(claim.batch.batchId);
        expect(read.events[3]?.fields.reason).toBe("manual");
        for (let i = 1; i < read.events.length; i++) {
          expect(compareStreamIds(read.events[i - 1]!.id, read.events[i]!.id)).toBeLessThan(0);
        }
        expect((await store.readEvents(read.cursor)).events).toEqual([]);
        // Pagination resumes where the last page ended.
        const page1 = await store.readEvents(start.cursor, { limit: 2 });
        expect(page1.events.map((e) => e.id)).toEqual(read.events.slice(0, 2).map((e) => e.id));
        const page2 = await store.readEvents(page1.cursor, { limit: 100 });
        expect(page2.events.map((e) => e.id)).toEqual(read.events.slice(2).map((e) => e.id));
      });

      it("ack with the batch's messages: the delivered event carries their texts, masked, capped", async () => {
        const { store } = await setup();
        const c = "whatsapp:966501234567";
        await store.append(msg(c, "m1", "hello there"));
        await store.append(msg(c, "m2", "", {
          attachments: [{ kind: "image", id: "media-1", caption: "my face" }, {
            kind: "location",
            latitude: 1,
            longitude: 2,
          }],
        }));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await store.ack(c, claim.batch.batchId, claim.token, { messages: claim.batch.messages });
        const { events } = await store.latestEvents({ limit: 10, type: "delivered" });
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          type: "delivered",
          conversation: maskConversation(c, false),
          fields: { batchId: claim.batch.batchId, size: "2" },
        });
        expect(decodeDeliveredTexts(events[0]!.fields.texts)).toEqual({
          masked: true,
          messages: [{ text: "<11 chars>" }, {
            text: "<0 chars>",
            attachments: ["image", "location"],
          }],
          omitted: 0,
        });
        // Only the kind of an attachment: no media id, no caption.
        expect(events[0]!.fields.texts).not.toContain("media-1");
        expect(events[0]!.fields.texts).not.toContain("my face");
        expect(events[0]!.fields.texts).not.toContain("hello");
      });

      it("with logPii the texts are kept in clear, each capped, the whole field capped", async () => {
        const { store } = await setup({ logPii: true });
        const c = "support:long";
        const arabic = "مرحبا، أريد استرداد المبلغ";
        await store.append(msg(c, "ar", arabic));
        await store.append(msg(c, "long", "x".repeat(DELIVERED_TEXT_MAX_BYTES + 100)));
        for (let i = 0; i < 20; i++) await store.append(msg(c, `f${i}`, "y".repeat(400)));
        const claim = expectClaimed(await store.claim(c, { force: true }));
        await store.ack(c, claim.batch.batchId, claim.token, { messages: claim.batch.messages });
        const [delivered] = (await store.latestEvents({ type: "delivered" })).events;
        const field = delivered!.fields.texts!;
        expect(new TextEncoder().encode(field).length).toBeLessThanOrEqual(
          DELIVERED_TEXTS_MAX_BYTES,
        );
        const texts = decodeDeliveredTexts(field)!;
        expect(texts.masked).toBe(false);
        expect(texts.messages[0]).toEqual({ text: arabic });
        expect(texts.messages[1]).toEqual({
          text: "x".repeat(DELIVERED_TEXT_MAX_BYTES),
          truncated: true,
        });
        expect(texts.omitted).toBeGreaterThan(0);
        expect(texts.messages.length + texts.omitted).toBe(22);
        expect(delivered!.fields.size).toBe("22");
      });

      it("ack without messages writes the delivered event without texts", async () => {
        const { store } = await setup();
        await store.append(msg("s:plain", "m1"));
        const claim = expectClaimed(await store.claim("s:plain", { force: true }));
        await store.ack("s:plain", claim.batch.batchId, claim.token);
        const [delivered] = (await store.latestEvents({ type: "delivered" })).events;
        expect(delivered!.fields).toEqual({ batchId: claim.batch.batchId, size: "1" });
      });

      it("latestEvents: newest first across partitions, limited, by type, and a cursor to follow on", async () => {
        const { store, settings, advance } = await setup();
        const empty = await store.latestEvents();
        expect(empty.events).toEqual([]);
        // Conversations spread over more than one partition.
        const convs = ["s:a", "s:b", "s:c", "s:d", "s:e", "s:f"];
        expect(new Set(convs.map((c) => partitionOf(c, settings.partitions))).size)
          .toBeGreaterThan(1);
        const batchIds: string[] = [];
        for (const c of convs) {
          await store.append(msg(c, "m1"));
          const claim = expectClaimed(await store.claim(c, { force: true }));
          await store.ack(c, claim.batch.batchId, claim.token, {
            messages: claim.batch.messages,
          });
          batchIds.push(claim.batch.batchId);
          await advance(2);
        }
        const all = await store.latestEvents({ limit: 1000 });
        // 3 events per conversation (appended, claimed, delivered), newest first.
        expect(all.events).toHaveLength(convs.length * 3);
        for (let i = 1; i < all.events.length; i++) {
          expect(all.events[i - 1]!.at >= all.events[i]!.at).toBe(true);
        }
        expect(all.events[0]).toMatchObject({
          type: "delivered",
          fields: { batchId: batchIds[5] },
        });
        // Within a partition, strictly newest first by stream id.
        for (let p = 0; p < settings.partitions; p++) {
          const ids = all.events.filter((e) => e.partition === p).map((e) => e.id);
          for (let i = 1; i < ids.length; i++) {
            expect(compareStreamIds(ids[i - 1]!, ids[i]!)).toBeGreaterThan(0);
          }
        }
        const delivered = await store.latestEvents({ limit: 4, type: "delivered" });
        expect(delivered.events.map((e) => e.fields.batchId)).toEqual(
          batchIds.slice(2).reverse(),
        );
        expect((await store.latestEvents({ limit: 3 })).events.map((e) => e.id)).toEqual(
          all.events.slice(0, 3).map((e) => e.id),
        );
        expect((await store.latestEvents({ type: "reaped" })).events).toEqual([]);
        // The cursor follows on: readEvents from it sees only what came after.
        expect((await store.readEvents(all.cursor)).events).toEqual([]);
        await store.append(msg("s:a", "later"));
        expect((await store.readEvents(delivered.cursor)).events.map((e) => e.type)).toEqual([
          "appended",
        ]);
      });

      it("events carry the raw conversation only with logPii", async () => {
        const { store } = await setup({ logPii: true });
        const c = "whatsapp:966501234567";
        const start = await store.readEvents(null);
        await store.append(msg(c, "m1"));
        const read = await store.readEvents(start.cursor);
        expect(read.events.map((e) => [e.type, e.conversation])).toEqual([["appended", c]]);
      });
    });

    it("conversation ids with { } : spaces and unicode are kept apart and round-trip", async () => {
      const { store } = await setup();
      const odd = ["a{b}c:d e", "ü 🙂:{}", "a:b", "a%3Ab", "{lull:0}"];
      for (const c of odd) await store.append(msg(c, "same-id", `for ${c}`));
      for (const c of odd) {
        const claim = expectClaimed(await store.claim(c, { force: true }));
        expect(claim.batch.conversation).toBe(c);
        expect(claim.batch.messages.map((m) => m.text)).toEqual([`for ${c}`]);
        expect((await store.inspect(c)).batch?.batchId).toBe(claim.batch.batchId);
        await store.ack(c, claim.batch.batchId, claim.token);
      }
    });
  });
}
