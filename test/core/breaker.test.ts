import { describe, expect, it } from "vitest";
import { type BreakerStateChange, CircuitBreaker } from "../../src/core/breaker.ts";
import type { Clock } from "../../src/core/clock.ts";
import { CircuitOpenError, LockLostError } from "../../src/core/errors.ts";

/** Only `now` matters to the breaker; time moves when the test says so. */
function fakeClock(startMs = 1_000_000): Clock & { advance(ms: number): void } {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    sleep: () => Promise.reject(new Error("the breaker must not sleep")),
    advance: (ms) => {
      nowMs += ms;
    },
  };
}

const ok = () => Promise.resolve("ok");
const boom = () => Promise.reject(new Error("boom"));

function setup(options: { failureThreshold?: number; openMs?: number } = {}) {
  const clock = fakeClock();
  const changes: BreakerStateChange[] = [];
  const breaker = new CircuitBreaker({
    name: "processor",
    failureThreshold: options.failureThreshold ?? 3,
    openMs: options.openMs ?? 10_000,
    clock,
    onStateChange: (c) => changes.push(c),
  });
  return { clock, breaker, changes };
}

describe("CircuitBreaker", () => {
  it("stays closed below the threshold; a success resets the count", async () => {
    const { breaker } = setup();
    await expect(breaker.run(boom)).rejects.toThrow("boom");
    await expect(breaker.run(boom)).rejects.toThrow("boom");
    expect(breaker.failures).toBe(2);
    await expect(breaker.run(ok)).resolves.toBe("ok");
    expect(breaker.failures).toBe(0);
    await expect(breaker.run(boom)).rejects.toThrow("boom");
    await expect(breaker.run(boom)).rejects.toThrow("boom");
    expect(breaker.state).toBe("closed");
  });

  it("opens after N consecutive failures and then fails fast without calling fn", async () => {
    const { breaker, changes, clock } = setup();
    for (let i = 0; i < 3; i++) await expect(breaker.run(boom)).rejects.toThrow("boom");
    expect(breaker.state).toBe("open");
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(["closed->open"]);
    let called = 0;
    const err = await breaker.run(async () => {
      called++;
      return 1;
    }).catch((e) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err).toMatchObject({ breaker: "processor", retryAtMs: clock.now() + 10_000 });
    expect(called).toBe(0);
    expect(breaker.allowsCall).toBe(false);
    expect(breaker.retryAtMs).toBe(clock.now() + 10_000);
  });

  it("counts resolved values as failures when isFailure says so", async () => {
    const { breaker } = setup({ failureThreshold: 2 });
    const retryLater = () => Promise.resolve({ kind: "retry" });
    const isFailure = (v: { kind: string }) => v.kind === "retry";
    await expect(breaker.run(retryLater, isFailure)).resolves.toEqual({ kind: "retry" });
    await breaker.run(retryLater, isFailure);
    expect(breaker.state).toBe("open");
  });

  it("ignores errors that isFailureError rules out", async () => {
    const clock = fakeClock();
    const breaker = new CircuitBreaker({
      name: "redis",
      failureThreshold: 1,
      clock,
      isFailureError: (e) => !(e instanceof LockLostError),
    });
    await expect(breaker.run(() => Promise.reject(new LockLostError("c", "ack")))).rejects
      .toBeInstanceOf(LockLostError);
    expect(breaker.state).toBe("closed");
    await expect(breaker.run(boom)).rejects.toThrow("boom");
    expect(breaker.state).toBe("open");
  });

  it("half-opens after openMs and lets exactly ONE probe through; success closes", async () => {
    const { breaker, clock, changes } = setup();
    for (let i = 0; i < 3; i++) await expect(breaker.run(boom)).rejects.toThrow();
    clock.advance(9_999);
    expect(breaker.state).toBe("open");
    clock.advance(1);
    expect(breaker.state).toBe("half_open");

    let release!: () => void;
    const probe = breaker.run(() => new Promise<string>((r) => (release = () => r("probe"))));
    // While the probe is out, everyone else fails fast.
    await expect(breaker.run(ok)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(breaker.allowsCall).toBe(false);
    release();
    await expect(probe).resolves.toBe("probe");
    expect(breaker.state).toBe("closed");
    expect(changes.map((c) => c.to)).toEqual(["open", "half_open", "closed"]);
    await expect(breaker.run(ok)).resolves.toBe("ok");
  });

  it("a failed probe re-opens for another openMs", async () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) await expect(breaker.run(boom)).rejects.toThrow();
    clock.advance(10_000);
    await expect(breaker.run(boom)).rejects.toThrow("boom");
    expect(breaker.state).toBe("open");
    expect(breaker.retryAtMs).toBe(clock.now() + 10_000);
    clock.advance(10_000);
    expect(breaker.state).toBe("half_open");
  });

  it("a probe that never reports back does not wedge it: another probe after openMs", async () => {
    const { breaker, clock } = setup();
    for (let i = 0; i < 3; i++) await expect(breaker.run(boom)).rejects.toThrow();
    clock.advance(10_000);
    const stuck = breaker.acquire();
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    clock.advance(10_000);
    const second = breaker.acquire();
    // The stale probe's late verdict is ignored; the live one decides.
    stuck.failure();
    expect(breaker.state).toBe("half_open");
    second.success();
    expect(breaker.state).toBe("closed");
  });

  it("late results of calls started while closed do not flip an open breaker", async () => {
    const { breaker } = setup({ failureThreshold: 2 });
    const early = breaker.acquire();
    await expect(breaker.run(boom)).rejects.toThrow();
    await expect(breaker.run(boom)).rejects.toThrow();
    expect(breaker.state).toBe("open");
    early.success();
    expect(breaker.state).toBe("open");
  });

  it("permits settle once; release gives no verdict", () => {
    const { breaker } = setup({ failureThreshold: 2 });
    const p = breaker.acquire();
    p.failure();
    p.failure();
    expect(breaker.failures).toBe(1);
    breaker.acquire().release();
    expect(breaker.failures).toBe(1);
    expect(breaker.state).toBe("closed");
  });

  it("reset() closes it; a throwing hook does not break calls", async () => {
    const clock = fakeClock();
    const breaker = new CircuitBreaker({
      name: "x",
      failureThreshold: 1,
      clock,
      onStateChange: () => {
        throw new Error("hook");
      },
    });
    await expect(breaker.run(boom)).rejects.toThrow("boom");
    expect(breaker.state).toBe("open");
    breaker.reset();
    expect(breaker.state).toBe("closed");
    await expect(breaker.run(ok)).resolves.toBe("ok");
  });
});
