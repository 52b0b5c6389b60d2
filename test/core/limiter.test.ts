/**
 * ConcurrencyLimiter: the bound, the order, and the yield between a freed slot and the next
 * task. Tasks are promises the test settles by hand, so nothing here waits on real time.
 */
import { describe, expect, it } from "vitest";
import { ConcurrencyLimiter } from "../../src/core/limiter.ts";

/** A promise the test settles. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

describe("ConcurrencyLimiter", () => {
  it("never runs more than `limit` tasks at once, and runs them all in arrival order", async () => {
    const limiter = new ConcurrencyLimiter({ limit: 3, yieldToIo: () => Promise.resolve() });
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates = Array.from({ length: 20 }, () => deferred());
    const all = gates.map((gate, i) =>
      limiter.run(async () => {
        started.push(i);
        peak = Math.max(peak, ++running);
        await gate.promise;
        running--;
        return i;
      })
    );
    await flush();
    expect(started).toEqual([0, 1, 2]);
    expect(limiter.waiting).toBe(17);
    // Finish them out of order: the next waiter (by arrival) takes each freed slot.
    for (const i of [1, 0, 2, ...Array.from({ length: 17 }, (_, k) => k + 3)]) {
      gates[i]!.resolve();
      await flush();
    }
    expect(await Promise.all(all)).toEqual(gates.map((_, i) => i));
    expect(peak).toBe(3);
    expect(started).toEqual(gates.map((_, i) => i));
    expect(limiter.active).toBe(0);
  });

  it("a freed slot passes on only after the yield, and nobody jumps the queue meanwhile", async () => {
    const yields: (() => void)[] = [];
    const limiter = new ConcurrencyLimiter({
      limit: 1,
      yieldToIo: () => new Promise<void>((resolve) => yields.push(resolve)),
    });
    const order: string[] = [];
    const first = deferred();
    const a = limiter.run(async () => {
      order.push("a");
      await first.promise;
    });
    const b = limiter.run(async () => {
      order.push("b");
    });
    first.resolve();
    await flush();
    // a is done, b waits for the yield; a newcomer queues behind b.
    expect(order).toEqual(["a"]);
    expect(yields).toHaveLength(1);
    const c = limiter.run(async () => {
      order.push("c");
    });
    await flush();
    expect(order).toEqual(["a"]);
    yields.shift()!();
    await flush();
    expect(order).toEqual(["a", "b"]);
    yields.shift()!();
    await Promise.all([a, b, c]);
    expect(order).toEqual(["a", "b", "c"]);
  });

  it("a failing task frees its slot and its error reaches its caller", async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, yieldToIo: () => Promise.resolve() });
    const failed = limiter.run(() => Promise.reject(new Error("claim failed")));
    const next = limiter.run(() => Promise.resolve("ran"));
    await expect(failed).rejects.toThrow("claim failed");
    expect(await next).toBe("ran");
    expect(limiter.active).toBe(0);
  });
});
