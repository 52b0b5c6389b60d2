/**
 * What MemoryStore does beyond the shared contract (test/contract/): the event stream's cap and
 * ids, atomicity of concurrent calls on one event loop, injected randomness, ManualClock.
 */
import { describe, expect, it } from "vitest";
import type { Clock } from "../../src/core/clock.ts";
import type { BufferSettings } from "../../src/core/config.ts";
import { EVENT_STREAM_MAX_LENGTH, MemoryStore } from "../../src/store/memory-store.ts";
import { ManualClock } from "../harness/clock.ts";

const settings: BufferSettings = {
  keyPrefix: "unit",
  partitions: 1,
  windowMs: 100,
  graceMs: 50,
  maxWaitMs: 1000,
  maxMessages: 50,
  maxBytes: 65536,
  timerTtlMs: 1000,
  processedTtlMs: 10_000,
  lockTtlMs: 5000,
  dedupTtlMs: 60_000,
  retryMaxAttempts: 3,
  retryMaxAgeMs: 60_000,
  logPii: false,
};

describe("MemoryStore", () => {
  it("caps each partition's event stream at EVENT_STREAM_MAX_LENGTH, dropping the oldest", async () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ settings, clock });
    const total = EVENT_STREAM_MAX_LENGTH + 25;
    for (let i = 0; i < total; i++) {
      await store.recordEvent("c:1", "fallback", { n: String(i) });
      if (i % 1000 === 0) clock.advance(1);
    }
    const read = await store.readEvents({ 0: "0-0" }, { limit: total });
    expect(read.events).toHaveLength(EVENT_STREAM_MAX_LENGTH);
    expect(read.events[0]?.fields.n).toBe("25");
    expect(read.events.at(-1)?.fields.n).toBe(String(total - 1));
  });

  it("event ids never go backwards, even when the clock does", async () => {
    let now = 5_000;
    const clock: Clock = { now: () => now, sleep: () => Promise.resolve() };
    const store = new MemoryStore({ settings, clock });
    await store.recordEvent("c:1", "fallback", {});
    await store.recordEvent("c:1", "fallback", {});
    now = 4_000; // NTP step back
    await store.recordEvent("c:1", "fallback", {});
    now = 6_000;
    await store.recordEvent("c:1", "fallback", {});
    const { events } = await store.readEvents({ 0: "0-0" });
    expect(events.map((e) => e.id)).toEqual(["5000-0", "5000-1", "5000-2", "6000-0"]);
  });

  it("each call is atomic: of concurrent claims exactly one wins", async () => {
    const store = new MemoryStore({ settings, clock: new ManualClock() });
    await store.append({ conversation: "c:1", id: "m1", provider: "generic", text: "hi" });
    const results = await Promise.all(
      Array.from({ length: 10 }, () => store.claim("c:1", { force: true })),
    );
    expect(results.filter((r) => r.status === "claimed")).toHaveLength(1);
    expect(results.filter((r) => r.status === "locked")).toHaveLength(9);
  });

  it("uses the injected randomness for batch ids and lock tokens", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 23));
    let n = 0;
    const store = new MemoryStore({ settings, clock, random: () => `r${++n}` });
    await store.append({ conversation: "c:1", id: "m1", provider: "generic", text: "hi" });
    const res = await store.claim("c:1", { force: true });
    if (res.status !== "claimed") throw new Error(res.status);
    expect(res.claim.batch.batchId).toBe(`b_${clock.now().toString(36)}_r1`);
    expect(res.claim.token).toBe("r2");
  });

  it("answers a partition that does not exist with nothing (a sweep with a stale count)", async () => {
    const store = new MemoryStore({ settings, clock: new ManualClock() });
    await store.append({ conversation: "c:1", id: "m1", provider: "generic", text: "hi" });
    expect(await store.listDue(3, 10)).toEqual([]);
    expect(await store.reapExpired(3, 10)).toEqual([]);
    expect(await store.listConversations(3, 10)).toEqual([]);
    expect(await store.listConversations(0, 10)).toEqual(["c:1"]);
  });
});

describe("ManualClock", () => {
  it("moves only on advance and wakes sleepers that are due", async () => {
    const clock = new ManualClock(1000);
    const woke: number[] = [];
    const a = clock.sleep(50).then(() => woke.push(50));
    const b = clock.sleep(200).then(() => woke.push(200));
    clock.advance(49);
    await Promise.resolve();
    expect(woke).toEqual([]);
    clock.advance(1);
    await a;
    expect(woke).toEqual([50]);
    expect(clock.now()).toBe(1050);
    clock.advance(150);
    await b;
    expect(woke).toEqual([50, 200]);
  });

  it("rejects a sleep when its signal aborts", async () => {
    const clock = new ManualClock();
    const ctl = new AbortController();
    const sleeping = clock.sleep(1000, ctl.signal);
    ctl.abort(new Error("stop"));
    await expect(sleeping).rejects.toThrow("stop");
    await expect(clock.sleep(10, ctl.signal)).rejects.toThrow("stop");
  });
});
