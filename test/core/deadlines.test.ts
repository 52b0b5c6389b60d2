/**
 * Deadlines: one interval for all pending calls. Time is a fake: the test moves it and fires the
 * interval by hand, so nothing here depends on the real clock.
 */
import { describe, expect, it } from "vitest";
import { Deadlines, type DeadlineTimers } from "../../src/core/deadlines.ts";
import { RedisTimeoutError } from "../../src/core/errors.ts";

/** Timers whose time only moves when the test says so. */
function fakeTimers() {
  let nowMs = 0;
  const intervals = new Map<number, { fn: () => void; ms: number }>();
  let next = 1;
  let created = 0;
  const timers: DeadlineTimers = {
    setInterval(fn, ms) {
      created++;
      intervals.set(next, { fn, ms });
      return next++;
    },
    clearInterval(handle) {
      intervals.delete(handle as number);
    },
    now: () => nowMs,
  };
  return {
    timers,
    get created() {
      return created;
    },
    get running() {
      return intervals.size;
    },
    /** Advances time in steps of each interval's period, firing it on the way. */
    async advance(ms: number) {
      const end = nowMs + ms;
      while (nowMs < end) {
        const step = Math.min(end - nowMs, ...[...intervals.values()].map((i) => i.ms), ms);
        nowMs += step;
        for (const i of [...intervals.values()]) i.fn();
        await Promise.resolve();
      }
    },
  };
}

const never = () => new Promise<never>(() => {});
const timeout = () => new RedisTimeoutError("no answer", {});

describe("Deadlines", () => {
  it("rejects with the caller's error once the timeout has passed, not before", async () => {
    const t = fakeTimers();
    const deadlines = new Deadlines({ tickMs: 10, timers: t.timers });
    let settled: unknown = "pending";
    void deadlines.race(never(), 100, timeout).catch((e) => (settled = e));
    await t.advance(90);
    expect(settled).toBe("pending");
    await t.advance(20);
    expect(settled).toBeInstanceOf(RedisTimeoutError);
    expect(deadlines.pending).toBe(0);
  });

  it("many concurrent calls share ONE interval, which stops when nothing is pending", async () => {
    const t = fakeTimers();
    const deadlines = new Deadlines({ tickMs: 10, timers: t.timers });
    const resolvers: ((v: number) => void)[] = [];
    const calls = Array.from(
      { length: 500 },
      (_, i) =>
        deadlines.race(new Promise<number>((r) => resolvers.push(r)), 1000, timeout).then(
          (v) => v === i,
        ),
    );
    expect(t.created).toBe(1);
    expect(deadlines.pending).toBe(500);
    resolvers.forEach((resolve, i) => resolve(i));
    expect(await Promise.all(calls)).toEqual(calls.map(() => true));
    expect(deadlines.pending).toBe(0);
    // The next tick finds nothing pending and stops the interval: an idle owner holds no timer.
    await t.advance(10);
    expect(t.running).toBe(0);
    expect(deadlines.ticking).toBe(false);
    // A later call starts it again.
    const late = deadlines.race(Promise.resolve("ok"), 1000, timeout);
    expect(t.created).toBe(2);
    expect(await late).toBe("ok");
  });

  it("passes a rejection through, and ignores what a call does after it expired", async () => {
    const t = fakeTimers();
    const deadlines = new Deadlines({ tickMs: 10, timers: t.timers });
    await expect(deadlines.race(Promise.reject(new Error("NOSCRIPT x")), 100, timeout)).rejects
      .toThrow(/^NOSCRIPT/);
    let answer!: (v: string) => void;
    const slow = deadlines.race(new Promise<string>((r) => (answer = r)), 50, timeout);
    const outcome = slow.then((v) => v, (e: unknown) => e);
    await t.advance(70);
    answer("too late");
    expect(await outcome).toBeInstanceOf(RedisTimeoutError);
  });

  it("expires only the calls whose deadline passed", async () => {
    const t = fakeTimers();
    const deadlines = new Deadlines({ tickMs: 10, timers: t.timers });
    const results: string[] = [];
    void deadlines.race(never(), 50, timeout).catch(() => results.push("short"));
    void deadlines.race(never(), 500, timeout).catch(() => results.push("long"));
    await t.advance(100);
    expect(results).toEqual(["short"]);
    expect(deadlines.pending).toBe(1);
    expect(deadlines.ticking).toBe(true);
    await t.advance(500);
    expect(results).toEqual(["short", "long"]);
    expect(deadlines.ticking).toBe(false);
  });

  it("a throwing onExpire still rejects the call (with what it threw)", async () => {
    const t = fakeTimers();
    const deadlines = new Deadlines({ tickMs: 10, timers: t.timers });
    const boom = new Error("boom");
    const call = deadlines.race(never(), 10, () => {
      throw boom;
    }).catch((e: unknown) => e);
    await t.advance(30);
    expect(await call).toBe(boom);
  });

  it("no deadline for a non-finite timeout", async () => {
    const t = fakeTimers();
    const deadlines = new Deadlines({ tickMs: 10, timers: t.timers });
    expect(await deadlines.race(Promise.resolve(1), Infinity, timeout)).toBe(1);
    expect(t.created).toBe(0);
  });
});
