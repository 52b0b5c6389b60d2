import { describe, expect, it } from "vitest";
import { byteLength, encodeMessage } from "../../src/store/codec.ts";
import { RedisStore } from "../../src/store/redis-store.ts";
import { useRedisServer } from "../harness/redis-server.ts";
import { claimOne, counters, fixture, msg, patchMeta, readMeta, streamEvents } from "./helpers.ts";

const server = useRedisServer();

describe("appendMessage-8.lua", () => {
  it("buffers a new message: entry, meta, due score, no TTLs, timer armed by the burst's first", async () => {
    const f = fixture(server, "append-new");
    const conv = "support:42";
    const k = f.keys.conversation(conv);
    const first = await f.store.append(msg(conv, "m-1", "hi"));
    expect(first.status).toBe("appended");
    expect(first.size).toBe(1);
    expect(first.armTimer).toBe(true);
    expect(first.flushAtMs).toBe(first.nowMs + f.s.windowMs + f.s.graceMs);

    const entries = await f.raw.lrange(k.buffer, 0, -1);
    expect(entries).toEqual([`${first.nowMs}|${encodeMessage(msg(conv, "m-1", "hi"))}`]);
    expect(await f.raw.type(k.meta)).toBe("string"); // BITFIELD fields, one command to update
    // Four i64 fields (no carried-over ones), small enough to share the key's allocation.
    expect(await f.raw.strlen(k.meta)).toBe(32);
    expect(await f.raw.object("ENCODING", k.meta)).toBe("embstr");
    expect(await readMeta(f, conv)).toEqual({
      firstAt: first.nowMs,
      lastAt: first.nowMs,
      count: 1,
      bytes: byteLength(entries[0]!),
      createdAt: 0,
      attempts: 0,
      counted: 0,
    });
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(first.flushAtMs);
    // Live data carries no TTL: nothing but a claim ever removes the buffer.
    // Nor do the dedup records while the buffer is open (the emptying claim starts their TTL).
    for (const key of [k.buffer, k.meta, k.seen]) expect(await f.raw.pttl(key)).toBe(-1);

    const second = await f.store.append(msg(conv, "m-2", "there"));
    expect(second).toMatchObject({ status: "appended", size: 2, armTimer: false });
    expect(await readMeta(f, conv)).toMatchObject({
      firstAt: first.nowMs,
      lastAt: second.nowMs,
      count: 2,
    });
    expect(await f.raw.lrange(k.buffer, 0, -1)).toHaveLength(2);
    expect(await f.raw.strlen(k.meta)).toBe(32); // the append's BITFIELD does not grow it
    // Later messages leave the due entry alone: it stays a lower bound of the due time.
    expect(second.flushAtMs).toBeGreaterThanOrEqual(first.flushAtMs!);
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(first.flushAtMs);

    // The claim that empties the buffer starts the dedup TTL; the next burst arms a timer again.
    const claim = await f.store.claim(conv, { force: true });
    expect(claim.status).toBe("claimed");
    const pttl = await f.raw.pttl(k.seen);
    expect(pttl).toBeGreaterThan(f.s.dedupTtlMs - 5_000);
    expect(pttl).toBeLessThanOrEqual(f.s.dedupTtlMs);
    const third = await f.store.append(msg(conv, "m-3"));
    expect(third).toMatchObject({ status: "appended", size: 1, armTimer: true });
    expect(await f.raw.pttl(k.seen)).toBe(-1);
    await f.close();
  });

  it("answers duplicate for a seen id: nothing buffered twice, counted, no timer", async () => {
    const f = fixture(server, "append-dup");
    const conv = "support:7";
    const k = f.keys.conversation(conv);
    const first = await f.store.append(msg(conv, "m-1"));
    const dup = await f.store.append(msg(conv, "m-1", "different text"));
    expect(dup.status).toBe("duplicate");
    expect(dup.size).toBe(1);
    expect(dup.flushAtMs).toBe(first.flushAtMs);
    expect(dup.armTimer).toBe(false);
    expect(dup.wakeAtMs).toBe(first.flushAtMs);
    // m-2 noted no wake (the burst was open): its redelivery is answered without a read.
    await f.store.append(msg(conv, "m-2"));
    const dup2 = await f.store.append(msg(conv, "m-2"));
    expect(dup2).toMatchObject({ status: "duplicate", size: 0, flushAtMs: null, wakeAtMs: null });
    expect(await f.raw.llen(k.buffer)).toBe(2);
    const p = k.partition.partition;
    // Ingested messages are counted when their burst becomes a batch.
    expect(await counters(f, p)).toMatchObject({ duplicates: "2" });
    expect((await counters(f, p)).ingested).toBeUndefined();
    const types = (await streamEvents(f, p)).map((e) => e.type);
    expect(types).toEqual(["appended", "duplicate", "appended", "duplicate"]);
    await f.close();
  });

  it("a duplicate with no open buffer reports size 0 and no flush time", async () => {
    const f = fixture(server, "append-dup-empty");
    const conv = "support:8";
    const k = f.keys.conversation(conv);
    await f.store.append(msg(conv, "m-1"));
    await f.raw.del(k.buffer, k.meta); // as after a claim
    const dup = await f.store.append(msg(conv, "m-1"));
    expect(dup).toMatchObject({ status: "duplicate", size: 0, flushAtMs: null, armTimer: false });
    await f.close();
  });

  it("forgets ids older than the dedup TTL at every 8th emptying claim", async () => {
    const f = fixture(server, "append-trim", { dedupTtlMs: 60_000 });
    const conv = "support:9";
    const k = f.keys.conversation(conv);
    const first = await f.store.append(msg(conv, "old"));
    await f.store.append(msg(conv, "recent"));
    // "old" was seen (store time) past the window; "recent" inside it.
    await f.raw.zadd(k.seen, first.nowMs - 61_000, "old");
    await f.raw.zadd(k.seen, first.nowMs - 59_000, "recent");
    // Still remembered while the buffer is open.
    expect((await f.store.append(msg(conv, "old"))).status).toBe("duplicate");
    // The trim runs at every 8th batch (fence 8, 16, ...): make this claim the 8th.
    await f.raw.set(k.fence, 7);
    expect((await f.store.claim(conv, { force: true })).status).toBe("claimed");
    expect(await f.raw.zrange(k.seen, 0, -1)).toEqual(["recent"]);
    const again = await f.store.append(msg(conv, "old"));
    expect(again).toMatchObject({ status: "appended", size: 1 });
    expect((await f.store.append(msg(conv, "recent"))).status).toBe("duplicate");
    await f.close();
  });

  it("an isolate clock behind or far ahead of Redis never scores a dedup record before its arrival", async () => {
    const f = fixture(server, "append-skew");
    const conv = "support:skew";
    const k = f.keys.conversation(conv);
    const skews = [0, -3_600_000, -2_000, 30_000, 3_600_000, 400 * 86_400_000];
    for (const [i, skew] of skews.entries()) {
      const skewed = new RedisStore({
        client: f.client,
        settings: f.s,
        now: () => Date.now() + skew,
      });
      const r = await skewed.append(msg(conv, `m-${i}`));
      expect(r.status).toBe("appended");
      const score = Number(await f.raw.zscore(k.seen, `m-${i}`));
      // At or after its arrival in store time, and at most a minute later.
      expect(score).toBeGreaterThanOrEqual(r.nowMs);
      expect(score).toBeLessThanOrEqual(r.nowMs + 60_000);
      // Whatever the clock, a redelivery is a duplicate.
      expect((await skewed.append(msg(conv, `m-${i}`))).status).toBe("duplicate");
    }
    // A trim at the emptying claim keeps every id of the last dedup TTL, skewed or not.
    expect((await f.store.claim(conv, { force: true })).status).toBe("claimed");
    expect(await f.raw.zcard(k.seen)).toBe(skews.length);
    await f.close();
  });

  it("writes no per-message event unless messageEvents is on", async () => {
    const f = fixture(server, "append-no-events", { messageEvents: false });
    const conv = "c:quiet-stream";
    const p = f.keys.partitionOf(conv);
    await f.store.append(msg(conv, "1"));
    await f.store.append(msg(conv, "1"));
    expect(await streamEvents(f, p)).toEqual([]);
    expect((await counters(f, p)).duplicates).toBe("1");
    await f.close();
  });

  it("full by count: due now, reason max_messages", async () => {
    const f = fixture(server, "append-full-count", { maxMessages: 3 });
    const conv = "c:count";
    const k = f.keys.conversation(conv);
    await f.store.append(msg(conv, "1"));
    await f.store.append(msg(conv, "2"));
    const third = await f.store.append(msg(conv, "3"));
    expect(third.flushAtMs).toBe(third.nowMs);
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(third.nowMs);
    const claim = await f.store.claim(conv);
    expect(claim.status).toBe("claimed");
    if (claim.status === "claimed") expect(claim.claim.batch.reason).toBe("max_messages");
    await f.close();
  });

  it("full by bytes: due now, reason max_bytes", async () => {
    const f = fixture(server, "append-full-bytes", { maxBytes: 200 });
    const conv = "c:bytes";
    const first = await f.store.append(msg(conv, "1", "short"));
    expect(first.flushAtMs).toBe(first.nowMs + f.s.windowMs + f.s.graceMs);
    const big = await f.store.append(msg(conv, "2", "x".repeat(200)));
    expect(big.flushAtMs).toBe(big.nowMs);
    const claim = await f.store.claim(conv);
    expect(claim.status).toBe("claimed");
    if (claim.status === "claimed") expect(claim.claim.batch.reason).toBe("max_bytes");
    await f.close();
  });

  it("caps the due time at firstAt + maxWait (max_wait)", async () => {
    const f = fixture(server, "append-cap", { windowMs: 10_000, graceMs: 0, maxWaitMs: 15_000 });
    const conv = "c:cap";
    const first = await f.store.append(msg(conv, "1"));
    expect(first.flushAtMs).toBe(first.nowMs + 10_000); // quiet
    await patchMeta(f, conv, { firstAt: first.nowMs - 10_000 }); // the burst began 10 s ago
    const second = await f.store.append(msg(conv, "2"));
    expect(second.flushAtMs).toBe(first.nowMs - 10_000 + 15_000);
    await f.close();
  });

  it("behind an outstanding batch: no TTLs, indexed on its own; a locked claim moves it to the lease end", async () => {
    const f = fixture(server, "append-behind");
    const conv = "c:behind";
    const k = f.keys.conversation(conv);
    const claim = await claimOne(f, conv, ["1"]);
    expect(await f.raw.zscore(k.partition.due, conv)).toBeNull();
    const r = await f.store.append(msg(conv, "2"));
    expect(r).toMatchObject({ status: "appended", size: 1, wakeAtMs: r.flushAtMs });
    expect(await f.raw.pttl(k.buffer)).toBe(-1);
    expect(await f.raw.pttl(k.meta)).toBe(-1);
    // Found without the batch's ack (an ack that failed after its writes cannot orphan it).
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(r.flushAtMs);
    // A visit while the batch is in flight: locked, and the entry waits for the lease's end.
    await f.raw.zadd(k.partition.due, r.nowMs - 1, conv);
    expect((await f.store.claim(conv)).status).toBe("locked");
    const moved = Number(await f.raw.zscore(k.partition.due, conv));
    expect(moved).toBeGreaterThan(claim.leaseUntilMs - 1_000);
    expect(moved).toBeLessThanOrEqual(claim.leaseUntilMs);
    // The ack puts it back at its own due time.
    await f.store.ack(conv, claim.batch.batchId, claim.token);
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(r.flushAtMs);
    await f.close();
  });

  it("a retry keeps its time when a burst queues behind it (NX)", async () => {
    const f = fixture(server, "append-behind-retry");
    const conv = "c:behind-retry";
    const k = f.keys.conversation(conv);
    const claim = await claimOne(f, conv, ["1"]);
    const failed = await f.store.fail(conv, claim.batch.batchId, claim.token, {
      error: "down",
      delayMs: 3_600_000,
      permanent: false,
    });
    expect(failed.status).toBe("retry");
    const retryAt = Number(await f.raw.zscore(k.partition.due, conv));
    const r = await f.store.append(msg(conv, "2"));
    expect(r).toMatchObject({ status: "appended", size: 1, wakeAtMs: null });
    expect(Number(await f.raw.zscore(k.partition.due, conv))).toBe(retryAt);
    await f.close();
  });

  it("writes events with the masked label (raw only with logPii); the claim counts per day", async () => {
    const masked = fixture(server, "append-events");
    const conv = "whatsapp:966501234567";
    const p = masked.keys.partitionOf(conv);
    await masked.store.append(msg(conv, "m-1"));
    const [ev] = await streamEvents(masked, p);
    expect(ev).toMatchObject({ type: "appended", conv: "whatsapp:**********67", id: "m-1" });
    expect(ev!.size).toBe("1");
    await masked.store.append(msg(conv, "m-2"));
    expect((await masked.store.claim(conv, { force: true })).status).toBe("claimed");
    const now = await masked.store.now();
    const day = Math.floor(now / 86_400_000);
    const daily = await masked.raw.hgetall(masked.keys.partition(p).daily);
    expect(daily[`${day}:ingested`]).toBe("2");
    expect((await counters(masked, p)).ingested).toBe("2");
    await masked.close();

    const clear = fixture(server, "append-pii", { logPii: true });
    await clear.store.append(msg(conv, "m-1"));
    const [ev2] = await streamEvents(clear, p);
    expect(ev2!.conv).toBe(conv);
    await clear.close();
  });

  it("the day's first ingested (at a claim) drops day-8 buckets, keeps the last week", async () => {
    const f = fixture(server, "append-daily");
    const conv = "c:daily";
    const daily = f.keys.partition(f.keys.partitionOf(conv)).daily;
    const day = Math.floor((await f.store.now()) / 86_400_000);
    await f.raw.hset(
      daily,
      `${day - 8}:ingested`,
      5,
      `${day - 8}:dead`,
      1,
      `${day - 7}:ingested`,
      2,
    );
    await f.store.append(msg(conv, "1"));
    expect((await f.store.claim(conv, { force: true })).status).toBe("claimed");
    const after = await f.raw.hgetall(daily);
    expect(after[`${day - 8}:ingested`]).toBeUndefined();
    expect(after[`${day - 8}:dead`]).toBeUndefined();
    expect(after[`${day - 7}:ingested`]).toBe("2");
    expect(after[`${day}:ingested`]).toBe("1");
    await f.close();
  });

  it("caps the event stream near 10000 entries (MAXLEN ~)", async () => {
    const f = fixture(server, "append-cap-stream");
    const conv = "c:stream";
    const events = f.keys.partition(f.keys.partitionOf(conv)).events;
    // Pre-fill close to the cap with raw XADDs (fast), then let the script trim.
    const pipeline = f.raw.pipeline();
    for (let i = 0; i < 10_500; i++) pipeline.xadd(events, "*", "type", "x");
    await pipeline.exec();
    for (let i = 0; i < 200; i++) await f.store.append(msg(conv, `m-${i}`));
    const len = await f.raw.xlen(events);
    expect(len).toBeLessThan(10_700);
    expect(len).toBeGreaterThanOrEqual(10_000);
    await f.close();
  });
});
