import { describe, expect, it } from "vitest";
import { BatchNotFoundError, LockLostError } from "../../src/core/errors.ts";
import { maskConversation } from "../../src/core/mask.ts";
import { useRedisServer } from "../harness/redis-server.ts";
import { claimOne, counters, fixture, msg, readMeta, streamEvents } from "./helpers.ts";

const server = useRedisServer();

describe("extendLock-3.lua", () => {
  it("renews the lock TTL and the lease; codes for a lost lock or another batch", async () => {
    const f = fixture(server, "extend", { lockTtlMs: 10_000 });
    const conv = "c:extend";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv, ["1"]);
    await f.raw.pexpire(k.lock, 1_000);
    const r = await f.store.extend(conv, c.batch.batchId, c.token);
    expect(r.leaseUntilMs).toBeGreaterThanOrEqual(c.leaseUntilMs);
    expect(await f.raw.pttl(k.lock)).toBeGreaterThan(5_000);
    expect(Number(await f.raw.zscore(k.partition.leases, conv))).toBe(r.leaseUntilMs);
    await expect(f.store.extend(conv, "b_x", c.token)).rejects.toBeInstanceOf(BatchNotFoundError);
    await expect(f.store.extend(conv, c.batch.batchId, "x")).rejects.toBeInstanceOf(LockLostError);
    // A bare token (a claim from before the lock named its batch): the batch hash decides.
    await f.raw.set(k.lock, "plain-token", "PX", 1_000);
    await expect(f.store.extend(conv, "b_x", "plain-token")).rejects.toBeInstanceOf(
      BatchNotFoundError,
    );
    await f.store.extend(conv, c.batch.batchId, "plain-token");
    expect(await f.raw.pttl(k.lock)).toBeGreaterThan(5_000);
    await f.close();
  });
});

describe("supersedeBatch-11.lua", () => {
  it("nothing_newer: no open buffer, state unchanged", async () => {
    const f = fixture(server, "supersede-none");
    const conv = "c:sup-none";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv, ["1"]);
    const before = await f.raw.hgetall(k.batch);
    expect(await f.store.supersede(conv, c.batch.batchId, c.token)).toEqual({
      status: "nothing_newer",
    });
    expect(await f.raw.hgetall(k.batch)).toEqual(before);
    expect(await f.raw.get(k.lock)).toBe(c.token);
    await f.close();
  });

  it("merged: batch entries go in front of the newer ones, meta summed, lock released", async () => {
    const f = fixture(server, "supersede-merge");
    const conv = "c:sup-merge";
    const k = f.keys.conversation(conv);
    const c = await claimOne(f, conv, ["a", "b"]);
    await f.store.append(msg(conv, "c"));
    const last = await f.store.append(msg(conv, "d"));
    const r = await f.store.supersede(conv, c.batch.batchId, c.token);
    expect(r.status).toBe("merged");
    if (r.status !== "merged") return;
    expect(r.size).toBe(4);
    expect(r.flushAtMs).toBe(last.nowMs + f.s.windowMs + f.s.graceMs);
    const ids = (await f.raw.lrange(k.buffer, 0, -1)).map((e) =>
      JSON.parse(e.slice(e.indexOf("|") + 1)).id
    );
    expect(ids).toEqual(["a", "b", "c", "d"]);
    const meta = await readMeta(f, conv);
    expect(meta.firstAt).toBe(Date.parse(c.batch.firstAt));
    expect(meta.lastAt).toBe(last.nowMs);
    expect(meta.count).toBe(4);
    const bytes = (await f.raw.lrange(k.buffer, 0, -1)).reduce(
      (n, e) => n + Buffer.byteLength(e),
      0,
    );
    expect(meta.bytes).toBe(bytes);
    // The carried-over fields make the meta 56 bytes (a burst's own is 32).
    expect(meta.counted).toBe(2);
    expect(meta.attempts).toBe(0);
    expect(meta.createdAt).toBeGreaterThan(0);
    expect(await f.raw.strlen(k.meta)).toBe(56);
    expect(await f.raw.exists(k.batch, k.batchMessages, k.lock)).toBe(0);
    expect(await f.raw.zscore(k.partition.leases, conv)).toBeNull();
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(r.flushAtMs);
    expect(await f.raw.pttl(k.buffer)).toBe(-1);
    expect(await counters(f, k.partition.partition)).toMatchObject({ superseded: "1" });
    // The merged buffer becomes a new batch; the superseded delivery was not an attempt.
    const next = await f.store.claim(conv, { force: true });
    expect(next.status).toBe("claimed");
    if (next.status !== "claimed") return;
    expect(next.claim.batch.batchId).not.toBe(c.batch.batchId);
    expect(next.claim.batch.attempt).toBe(1);
    expect(next.claim.batch.fence).toBe(2);
    expect(next.claim.batch.messages.map((m) => m.id)).toEqual(["a", "b", "c", "d"]);
    await f.close();
  });

  it("codes for a lost lock or another batch", async () => {
    const f = fixture(server, "supersede-codes");
    const conv = "c:sup-codes";
    const c = await claimOne(f, conv, ["1"]);
    await expect(f.store.supersede(conv, c.batch.batchId, "x")).rejects.toBeInstanceOf(
      LockLostError,
    );
    await expect(f.store.supersede(conv, "b_x", c.token)).rejects.toBeInstanceOf(
      BatchNotFoundError,
    );
    await f.close();
  });
});

describe("reapExpiredLeases-4.lua", () => {
  it("moves expired leases to due (limit honoured), counts and records events", async () => {
    const f = fixture(server, "reap", { partitions: 1 });
    const convs = ["c:r1", "c:r2", "c:r3"];
    for (const conv of convs) await claimOne(f, conv, [`${conv}-m`]);
    const p = f.keys.partition(0);
    const now = await f.store.now();
    // Two leases expired in the past, one still live.
    await f.raw.zadd(p.leases, now - 2_000, "c:r1", now - 1_000, "c:r2");
    expect(await f.store.reapExpired(0, 1)).toEqual(["c:r1"]);
    expect(await f.store.reapExpired(0, 10)).toEqual(["c:r2"]);
    expect(await f.store.reapExpired(0, 10)).toEqual([]);
    expect(await f.raw.zscore(p.leases, "c:r3")).not.toBeNull();
    expect(await f.raw.zscore(p.due, "c:r1")).not.toBeNull();
    expect(await f.raw.zscore(p.due, "c:r3")).toBeNull();
    expect(await counters(f, 0)).toMatchObject({ reaped: "2" });
    const reaped = (await streamEvents(f, 0)).filter((e) => e.type === "reaped");
    expect(reaped.map((e) => e.conv)).toEqual([
      maskConversation("c:r1", false),
      maskConversation("c:r2", false),
    ]);
    // The claim does not take it over while the lock still exists: it stays due.
    expect((await f.store.claim("c:r1")).status).toBe("locked");
    await f.raw.del(f.keys.conversation("c:r1").lock);
    const taken = await f.store.claim("c:r1");
    expect(taken.status === "claimed" && taken.claim.batch.attempt).toBe(2);
    await f.close();
  });
});
