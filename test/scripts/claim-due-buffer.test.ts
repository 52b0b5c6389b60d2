import { describe, expect, it } from "vitest";
import { useRedisServer } from "../harness/redis-server.ts";
import { backdate, fixture, msg, patchMeta, streamEvents } from "./helpers.ts";

const server = useRedisServer();

describe("claimDueBuffer-12.lua", () => {
  it("empty: nothing buffered, a stale due entry is removed", async () => {
    const f = fixture(server, "claim-empty");
    const conv = "c:empty";
    const due = f.keys.conversation(conv).partition.due;
    await f.raw.zadd(due, 1, conv);
    const r = await f.store.claim(conv);
    expect(r.status).toBe("empty");
    expect(await f.raw.zscore(due, conv)).toBeNull();
    await f.close();
  });

  it("the lock expires exactly at the lease end the claim answers and indexes, however long the claim ran", async () => {
    const f = fixture(server, "claim-lease-end");
    const conv = "c:lease-end";
    const k = f.keys.conversation(conv);
    await f.store.append(msg(conv, "1"));
    // A buffer of 20,000 entries (the meta still counts one, so the claim takes them all): the
    // claim runs for milliseconds between its TIME and its lock write.
    const first = (await f.raw.lindex(k.buffer, 0))!;
    const at = first.slice(0, first.indexOf("|"));
    const entries = Array.from(
      { length: 20_000 },
      (_, i) =>
        `${at}|${JSON.stringify({ id: `x${i}`, provider: "generic", text: "x".repeat(100) })}`,
    );
    await f.raw.rpush(k.buffer, ...entries);
    const r = await f.store.claim(conv, { force: true });
    if (r.status !== "claimed") throw new Error(`expected a claim, got ${r.status}`);
    expect(r.claim.batch.messages).toHaveLength(20_001);
    const expiresAt = Number(await f.raw.call("PEXPIRETIME", k.lock));
    expect(expiresAt).toBe(r.claim.leaseUntilMs);
    expect(Number(await f.raw.zscore(k.partition.leases, conv))).toBe(r.claim.leaseUntilMs);
    await f.close();
  });

  it("not_due: the open buffer's quiet window (plus grace) has not passed; index repaired", async () => {
    const f = fixture(server, "claim-notdue");
    const conv = "c:notdue";
    const k = f.keys.conversation(conv);
    const a = await f.store.append(msg(conv, "1"));
    await f.raw.zadd(k.partition.due, 1, conv); // index says due: the claim is the authority
    const r = await f.store.claim(conv);
    expect(r).toMatchObject({ status: "not_due", dueAtMs: a.flushAtMs });
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(a.flushAtMs);
    expect(await f.raw.exists(k.lock)).toBe(0);
    await f.close();
  });

  it("grace re-check: quiet for the window but not the grace is still not due", async () => {
    const f = fixture(server, "claim-grace", { windowMs: 10_000, graceMs: 5_000 });
    const conv = "c:grace";
    await f.store.append(msg(conv, "1"));
    await backdate(f, conv, 12_000); // window passed, grace not
    expect((await f.store.claim(conv)).status).toBe("not_due");
    await backdate(f, conv, 4_000); // now 16 s quiet
    expect((await f.store.claim(conv)).status).toBe("claimed");
    await f.close();
  });

  it("claims a due buffer: generation swap, fence, lock, lease, events", async () => {
    const f = fixture(server, "claim-new");
    const conv = "support:42";
    const k = f.keys.conversation(conv);
    await f.store.append(msg(conv, "1", "hi"));
    await f.store.append(msg(conv, "2", "pizza"));
    await backdate(f, conv, 70_000);
    const r = await f.store.claim(conv);
    expect(r.status).toBe("claimed");
    if (r.status !== "claimed") return;
    const { batch, token, leaseUntilMs, createdAtMs, nowMs } = r.claim;
    expect(batch).toMatchObject({
      conversation: conv,
      fence: 1,
      attempt: 1,
      reason: "quiet",
      degraded: false,
      text: "hi\npizza",
    });
    expect(batch.messages.map((m) => m.id)).toEqual(["1", "2"]);
    expect(createdAtMs).toBe(nowMs);
    expect(leaseUntilMs).toBe(nowMs + f.s.lockTtlMs);
    // Generation swap: buffer and meta gone, entries moved, no TTL on the batch.
    expect(await f.raw.exists(k.buffer, k.meta)).toBe(0);
    expect(await f.raw.llen(k.batchMessages)).toBe(2);
    expect(await f.raw.pttl(k.batchMessages)).toBe(-1);
    expect(await f.raw.pttl(k.batch)).toBe(-1);
    expect(await f.raw.hgetall(k.batch)).toMatchObject({
      batchId: batch.batchId,
      fence: "1",
      attempt: "1",
      reason: "quiet",
      count: "2",
      createdAt: String(createdAtMs),
      nextAt: "0",
      lastError: "",
      inFlight: "1",
    });
    expect(await f.raw.get(k.lock)).toBe(token);
    const lockTtl = await f.raw.pttl(k.lock);
    expect(lockTtl).toBeGreaterThan(f.s.lockTtlMs - 5_000);
    expect(Number(await f.raw.zscore(k.partition.leases, conv))).toBe(leaseUntilMs);
    expect(await f.raw.zscore(k.partition.due, conv)).toBeNull();
    expect(await f.raw.pttl(k.fence)).toBe(-1); // (f.s.dedupTtlMs - 5_000);
    const events = await streamEvents(f, k.partition.partition);
    // One event per claim, carrying the reason.
    expect(events.slice(-2).map((e) => e.type)).toEqual(["appended", "claimed"]);
    expect(events.at(-1)).toMatchObject({
      batchId: batch.batchId,
      attempt: "1",
      size: "2",
      reason: "quiet",
    });

    // A message arriving now starts a fresh buffer, not the batch handed out.
    await f.store.append(msg(conv, "3"));
    expect(await f.raw.lrange(k.buffer, 0, -1)).toHaveLength(1);
    expect(await f.raw.llen(k.batchMessages)).toBe(2);
    await f.close();
  });

  it("locked: another flusher holds the lock", async () => {
    const f = fixture(server, "claim-locked");
    const conv = "c:locked";
    await f.store.append(msg(conv, "1"));
    expect((await f.store.claim(conv, { force: true })).status).toBe("claimed");
    expect((await f.store.claim(conv, { force: true })).status).toBe("locked");
    await f.close();
  });

  it("force claims an undue buffer with reason manual; max_wait reason when capped", async () => {
    const f = fixture(server, "claim-force", { windowMs: 10_000, graceMs: 0, maxWaitMs: 20_000 });
    const manual = "c:manual";
    await f.store.append(msg(manual, "1"));
    const r = await f.store.claim(manual, { force: true });
    expect(r.status === "claimed" && r.claim.batch.reason).toBe("manual");

    const capped = "c:capped";
    const a = await f.store.append(msg(capped, "1"));
    await patchMeta(f, capped, { firstAt: a.nowMs - 25_000 }); // burst began 25 s ago
    const r2 = await f.store.claim(capped);
    expect(r2.status === "claimed" && r2.claim.batch.reason).toBe("max_wait");
    await f.close();
  });

  it("a batch awaiting retry: not_due before nextAt (index repaired), taken after or forced", async () => {
    const f = fixture(server, "claim-retry");
    const conv = "c:retry";
    const k = f.keys.conversation(conv);
    await f.store.append(msg(conv, "1"));
    const first = await f.store.claim(conv, { force: true });
    if (first.status !== "claimed") throw new Error("expected a claim");
    const failed = await f.store.fail(conv, first.claim.batch.batchId, first.claim.token, {
      error: "503",
      delayMs: 60_000,
      permanent: false,
    });
    if (failed.status !== "retry") throw new Error("expected a retry");
    await f.raw.zadd(k.partition.due, 1, conv);
    const notDue = await f.store.claim(conv);
    expect(notDue).toMatchObject({ status: "not_due", dueAtMs: failed.retryAtMs });
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(failed.retryAtMs);

    const forced = await f.store.claim(conv, { force: true });
    expect(forced.status).toBe("claimed");
    if (forced.status !== "claimed") return;
    expect(forced.claim.batch.batchId).toBe(first.claim.batch.batchId);
    expect(forced.claim.batch.attempt).toBe(2);
    expect(forced.claim.batch.fence).toBe(1); // same batch, same fence
    await f.store.fail(conv, forced.claim.batch.batchId, forced.claim.token, {
      error: "503",
      delayMs: 0,
      permanent: false,
    });
    const third = await f.store.claim(conv);
    expect(third.status === "claimed" && third.claim.batch.attempt).toBe(3);
    await f.close();
  });

  it("a due buffer behind an outstanding batch stays the buffer: in flight, awaiting retry, retried", async () => {
    // The claim tries RENAMENX buffer -> batchMessages before it asks EXISTS: the outstanding
    // batch's entries must refuse it, and the batch decides the answer as before.
    const f = fixture(server, "claim-behind", { windowMs: 0, graceMs: 0 });
    const conv = "c:behind";
    const k = f.keys.conversation(conv);
    await f.store.append(msg(conv, "1"));
    const first = await f.store.claim(conv, { force: true });
    if (first.status !== "claimed") throw new Error("expected a claim");
    await f.store.append(msg(conv, "2"));
    await f.store.append(msg(conv, "3"));
    const bufferOf = async () => (await f.raw.lrange(k.buffer, 0, -1)).map((e) => e.split("|")[0]);
    const before = await bufferOf();
    expect(before).toHaveLength(2);
    expect(await f.store.claim(conv)).toMatchObject({ status: "locked" });
    expect(await bufferOf()).toEqual(before);
    expect(await f.raw.lrange(k.batchMessages, 0, -1)).toHaveLength(1);

    const failed = await f.store.fail(conv, first.claim.batch.batchId, first.claim.token, {
      error: "503",
      delayMs: 60_000,
      permanent: false,
    });
    if (failed.status !== "retry") throw new Error("expected a retry");
    expect(await f.store.claim(conv)).toMatchObject({
      status: "not_due",
      dueAtMs: failed.retryAtMs,
    });
    expect(await bufferOf()).toEqual(before);
    expect(await f.raw.lrange(k.batchMessages, 0, -1)).toHaveLength(1);

    const retried = await f.store.claim(conv, { force: true });
    if (retried.status !== "claimed") throw new Error("expected the retry");
    expect(retried.claim.batch.batchId).toBe(first.claim.batch.batchId);
    expect(retried.claim.batch.messages.map((m) => m.id)).toEqual(["1"]);
    await f.store.ack(conv, retried.claim.batch.batchId, retried.claim.token);
    const next = await f.store.claim(conv);
    if (next.status !== "claimed") throw new Error("expected the queued buffer");
    expect(next.claim.batch.messages.map((m) => m.id)).toEqual(["2", "3"]);
    expect(next.claim.batch.fence).toBe(2);
    await f.close();
  });

  it("a batch orphaned by a crashed flusher (inFlight, lock expired) is taken over", async () => {
    const f = fixture(server, "claim-orphan");
    const conv = "c:orphan";
    const k = f.keys.conversation(conv);
    await f.store.append(msg(conv, "1"));
    const first = await f.store.claim(conv, { force: true });
    if (first.status !== "claimed") throw new Error("expected a claim");
    await f.raw.del(k.lock); // the lease ran out
    const second = await f.store.claim(conv);
    expect(second.status).toBe("claimed");
    if (second.status !== "claimed") return;
    expect(second.claim.batch.batchId).toBe(first.claim.batch.batchId);
    expect(second.claim.batch.attempt).toBe(2);
    expect(second.claim.token).not.toBe(first.claim.token);
    await f.close();
  });

  it("each new batch of a conversation gets the next fence", async () => {
    const f = fixture(server, "claim-fence");
    const conv = "c:fence";
    const fences: number[] = [];
    for (let i = 0; i < 3; i++) {
      await f.store.append(msg(conv, `m-${i}`));
      const r = await f.store.claim(conv, { force: true });
      if (r.status !== "claimed") throw new Error("expected a claim");
      fences.push(r.claim.batch.fence);
      await f.store.ack(conv, r.claim.batch.batchId, r.claim.token);
    }
    expect(fences).toEqual([1, 2, 3]);
    await f.close();
  });

  it("meta without buffer entries is treated as empty and cleaned", async () => {
    const f = fixture(server, "claim-stray");
    const conv = "c:stray";
    const k = f.keys.conversation(conv);
    await patchMeta(f, conv, { firstAt: 1, lastAt: 1, count: 1, bytes: 1 });
    expect((await f.store.claim(conv)).status).toBe("empty");
    expect(await f.raw.exists(k.meta)).toBe(0);
    // The same with a meta as 0.2 wrote it (a hash).
    await f.raw.hset(k.meta, "firstAt", 1, "lastAt", 1, "count", 1, "bytes", 1);
    expect((await f.store.claim(conv)).status).toBe("empty");
    expect(await f.raw.exists(k.meta)).toBe(0);
    await f.close();
  });
});
