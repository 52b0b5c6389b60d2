import { describe, expect, it } from "vitest";
import { BatchNotFoundError, LockLostError } from "../../src/core/errors.ts";
import { useRedisServer } from "../harness/redis-server.ts";
import { claimOne, counters, fixture, msg, streamEvents } from "./helpers.ts";

const server = useRedisServer();

describe("ackBatch-11.lua", () => {
  it("LOCK_LOST when the lock is gone or held by another token; BATCH_NOT_FOUND", async () => {
    const f = fixture(server, "ack-codes");
    const conv = "c:ack-codes";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv);
    await expect(f.store.ack(conv, c.batch.batchId, "not-my-token")).rejects.toBeInstanceOf(
      LockLostError,
    );
    await expect(f.store.ack(conv, "b_other", c.token)).rejects.toBeInstanceOf(
      BatchNotFoundError,
    );
    await f.raw.del(k.lock);
    const err = await f.store.ack(conv, c.batch.batchId, c.token).catch((e) => e);
    expect(err).toBeInstanceOf(LockLostError);
    expect(err).toMatchObject({ conversation: conv, script: "ackBatch" });
    expect(await f.raw.exists(k.batch)).toBe(1); // nothing changed
    await f.close();
  });

  it("delivered: drops batch and lock, records processed, counts, no open buffer -> null", async () => {
    const f = fixture(server, "ack-ok");
    const conv = "c:ack-ok";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv, [`${conv}-0`, `${conv}-1`, `${conv}-2`]);
    const r = await f.store.ack(conv, c.batch.batchId, c.token);
    expect(r.dueAgainAtMs).toBeNull();
    expect(await f.raw.exists(k.batch, k.batchMessages, k.lock)).toBe(0);
    expect(await f.raw.zscore(k.partition.leases, conv)).toBeNull();
    expect(await f.raw.zscore(k.partition.due, conv)).toBeNull();
    const processed = k.processed(c.batch.batchId);
    expect(await f.raw.get(processed)).toBe("1");
    expect(await f.raw.pttl(processed)).toBeGreaterThan(f.s.processedTtlMs - 5_000);
    expect(await counters(f, k.partition.partition)).toMatchObject({
      batches: "1",
      batch_messages: "3",
    });
    const last = (await streamEvents(f, k.partition.partition)).at(-1);
    expect(last).toMatchObject({ type: "delivered", batchId: c.batch.batchId, size: "3" });
    // A second ack of the same batch: the lock is gone, but the processed record answers it.
    expect(await f.store.ack(conv, c.batch.batchId, c.token, { probePartition: true })).toEqual({
      dueAgainAtMs: null,
      alreadyAcked: true,
      partitionIdle: false, // a repeat probes nothing
    });
    await f.raw.del(k.processed(c.batch.batchId));
    await expect(f.store.ack(conv, c.batch.batchId, c.token)).rejects.toBeInstanceOf(
      LockLostError,
    );
    await f.close();
  });

  it("the lock names its batch and size; a plain token from an older claim still acks, from the batch hash", async () => {
    const f = fixture(server, "ack-lock-value");
    const conv = "c:ack-lock-value";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv, [`${conv}-0`, `${conv}-1`]);
    expect(await f.raw.get(k.lock)).toBe(c.token);
    expect(c.token.endsWith(`|${c.batch.batchId}|2`)).toBe(true);
    await f.store.ack(conv, c.batch.batchId, c.token);
    expect(await counters(f, k.partition.partition)).toMatchObject({ batch_messages: "2" });

    // A batch claimed by the claim script before the lock named its batch: the value is the
    // bare token, so the ack reads id and size from the batch hash, as it did.
    const d = await claimOne(f, conv, [`${conv}-2`, `${conv}-3`, `${conv}-4`]);
    const plain = "0123456789abcdef";
    await f.raw.set(k.lock, plain, "PX", 60_000);
    await expect(f.store.ack(conv, "b_other", plain)).rejects.toBeInstanceOf(BatchNotFoundError);
    await expect(f.store.ack(conv, d.batch.batchId, d.token)).rejects.toBeInstanceOf(
      LockLostError,
    );
    expect(await f.store.ack(conv, d.batch.batchId, plain)).toEqual({
      dueAgainAtMs: null,
      alreadyAcked: false,
      partitionIdle: false,
    });
    expect(await counters(f, k.partition.partition)).toMatchObject({
      batches: "2",
      batch_messages: "5",
    });
    expect(await f.raw.exists(k.batch, k.batchMessages, k.lock)).toBe(0);
    await f.close();
  });

  it("messages that arrived during the flight: back on the due index, still no TTL", async () => {
    const f = fixture(server, "ack-newer");
    const conv = "c:ack-newer";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv);
    const a = await f.store.append(msg(conv, "late"));
    expect(await f.raw.pttl(k.buffer)).toBe(-1);
    const r = await f.store.ack(conv, c.batch.batchId, c.token);
    expect(r.dueAgainAtMs).toBe(a.flushAtMs);
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(a.flushAtMs);
    expect(await f.raw.pttl(k.buffer)).toBe(-1);
    expect(await f.raw.pttl(k.meta)).toBe(-1);
    await f.close();
  });
});

describe("failBatch-12.lua", () => {
  it("LOCK_LOST and BATCH_NOT_FOUND", async () => {
    const f = fixture(server, "fail-codes");
    const conv = "c:fail-codes";
    const c = await claimOne(f, conv);
    const opts = { error: "e", delayMs: 10, permanent: false };
    await expect(f.store.fail(conv, c.batch.batchId, "x", opts)).rejects.toBeInstanceOf(
      LockLostError,
    );
    await expect(f.store.fail(conv, "b_nope", c.token, opts)).rejects.toBeInstanceOf(
      BatchNotFoundError,
    );
    await f.close();
  });

  it("retry: nextAt, lastError, inFlight 0, lock released, due at retryAt, counted", async () => {
    const f = fixture(server, "fail-retry");
    const conv = "c:fail-retry";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv);
    const r = await f.store.fail(conv, c.batch.batchId, c.token, {
      error: "HTTP 503",
      delayMs: 5_000,
      permanent: false,
    });
    expect(r.status).toBe("retry");
    if (r.status !== "retry") return;
    expect(r.attempt).toBe(1);
    const now = await f.store.now();
    expect(r.retryAtMs).toBeGreaterThan(now);
    expect(r.retryAtMs).toBeLessThanOrEqual(now + 5_000);
    expect(await f.raw.hgetall(k.batch)).toMatchObject({
      nextAt: String(r.retryAtMs),
      lastError: "HTTP 503",
      inFlight: "0",
      attempt: "1",
    });
    expect(await f.raw.exists(k.lock)).toBe(0);
    expect(await f.raw.zscore(k.partition.leases, conv)).toBeNull();
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(r.retryAtMs);
    expect(await counters(f, k.partition.partition)).toMatchObject({ retries: "1" });
    const last = (await streamEvents(f, k.partition.partition)).at(-1);
    expect(last).toMatchObject({ type: "retry_scheduled", attempt: "1", error: "HTTP 503" });
    await f.close();
  });

  it("dead by attempts: the whole batch goes to the DLQ hash with its fields", async () => {
    const f = fixture(server, "fail-attempts", { retryMaxAttempts: 2 });
    const conv = "c:fail-attempts";
    const k = f.keys.conversation(conv);
    let c = await claimOne(f, conv, [`${conv}-0`, `${conv}-1`, `${conv}-2`]);
    const first = await f.store.fail(conv, c.batch.batchId, c.token, {
      error: "e1",
      delayMs: 0,
      permanent: false,
    });
    expect(first.status).toBe("retry");
    const again = await f.store.claim(conv);
    if (again.status !== "claimed") throw new Error("expected a claim");
    c = again.claim;
    const dead = await f.store.fail(conv, c.batch.batchId, c.token, {
      error: "e2",
      delayMs: 0,
      permanent: false,
    });
    expect(dead).toMatchObject({ status: "dead", attempt: 2 });
    const p = k.partition;
    const hash = await f.raw.hgetall(f.keys.deadLetter(p.partition, c.batch.batchId));
    expect(hash).toMatchObject({
      batchId: c.batch.batchId,
      conversation: conv,
      fence: "1",
      attempts: "2",
      reason: "manual",
      lastError: "e2",
    });
    const entries = JSON.parse(hash.messages!) as string[];
    expect(entries).toHaveLength(3);
    expect(entries[0]).toMatch(/^\d+\|\{"id":"c:fail-attempts-0"/);
    expect(await f.raw.zscore(p.dlq, c.batch.batchId)).toBe(hash.deadAt);
    expect(await f.raw.exists(k.batch, k.batchMessages, k.lock)).toBe(0);
    expect(await f.raw.zscore(p.leases, conv)).toBeNull();
    expect(await f.raw.zscore(p.due, conv)).toBeNull();
    expect(await counters(f, p.partition)).toMatchObject({ dead: "1", retries: "1" });
    expect((await streamEvents(f, p.partition)).at(-1)).toMatchObject({
      type: "dead_lettered",
      error: "e2",
    });
    await f.close();
  });

  it("dead by age, and permanent at attempt 1", async () => {
    const f = fixture(server, "fail-age", { retryMaxAgeMs: 60_000 });
    const aged = "c:aged";
    const c = await claimOne(f, aged);
    await f.raw.hset(f.keys.conversation(aged).batch, "createdAt", c.createdAtMs - 61_000);
    const r = await f.store.fail(aged, c.batch.batchId, c.token, {
      error: "old",
      delayMs: 0,
      permanent: false,
    });
    expect(r).toMatchObject({ status: "dead", attempt: 1 });

    const perm = "c:perm";
    const c2 = await claimOne(f, perm);
    const r2 = await f.store.fail(perm, c2.batch.batchId, c2.token, {
      error: "HTTP 422",
      delayMs: 1_000,
      permanent: true,
    });
    expect(r2).toMatchObject({ status: "dead", attempt: 1 });
    await f.close();
  });

  it("dead-lettering reschedules an open buffer that queued behind the batch", async () => {
    const f = fixture(server, "fail-reschedule");
    const conv = "c:fail-resched";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv);
    const a = await f.store.append(msg(conv, "late"));
    await f.store.fail(conv, c.batch.batchId, c.token, { error: "x", delayMs: 0, permanent: true });
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(a.flushAtMs);
    expect(await f.raw.pttl(k.buffer)).toBe(-1);
    await f.close();
  });
});
