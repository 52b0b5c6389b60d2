/**
 * Flusher on top of the real MemoryStore, with a fake clock shared by store and flusher: time
 * only moves when every promise is idle, straight to the next sleeper, so slow deliveries,
 * lease renewals, timeouts and the grace re-check run deterministically and instantly.
 */
import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "../../src/core/breaker.ts";
import type { BufferSettings } from "../../src/core/config.ts";
import { LockLostError, RedisTimeoutError, RedisUnavailableError } from "../../src/core/errors.ts";
import { type DeliveryReport, Flusher, type FlusherConfig } from "../../src/core/flusher.ts";
import { partitionOf } from "../../src/core/keys.ts";
import type { TriggerWakeup } from "../../src/core/ports.ts";
import type { Batch, BufferStore, DeliveryOutcome, InboundMessage } from "../../src/core/types.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { ManualClock } from "../harness/clock.ts";

const settings: BufferSettings = {
  keyPrefix: "t",
  partitions: 4,
  windowMs: 1000,
  maxWaitMs: 10_000,
  maxMessages: 50,
  maxBytes: 65536,
  graceMs: 200,
  timerTtlMs: 5000,
  processedTtlMs: 60_000,
  lockTtlMs: 3000,
  dedupTtlMs: 86_400_000,
  retryMaxAttempts: 3,
  retryMaxAgeMs: 86_400_000,
  logPii: false,
};

const flusherConfig: FlusherConfig = {
  partitions: settings.partitions,
  retryBaseMs: 100,
  retryMaxMs: 1000,
  lockTtlMs: settings.lockTtlMs,
  deliveryTimeoutMs: 2000,
  graceMs: settings.graceMs,
  logPii: false,
};

/** What a scripted processor can reach: the fake clock and the store (to append mid-flight). */
interface Ctx {
  clock: ManualClock;
  memory: MemoryStore;
}

type Script = (
  batch: Batch,
  signal: AbortSignal,
  call: number,
  ctx: Ctx,
) => Promise<DeliveryOutcome>;

interface Call {
  batch: Batch;
  atMs: number;
  signal: AbortSignal;
}

function setup(options: {
  script?: Script;
  config?: Partial<FlusherConfig>;
  settings?: Partial<BufferSettings>;
  breaker?: (clock: ManualClock) => CircuitBreaker;
  store?: (store: MemoryStore, clock: ManualClock) => BufferStore;
  random?: () => number;
  trigger?: TriggerWakeup;
} = {}) {
  const clock = new ManualClock(Date.UTC(2026, 10, 22, 10, 0, 0));
  const memory = new MemoryStore({ settings: { ...settings, ...options.settings }, clock });
  const store = options.store ? options.store(memory, clock) : memory;
  const script: Script = options.script ?? (async () => ({ kind: "delivered" }));
  const calls: Call[] = [];
  const processor = (batch: Batch, signal: AbortSignal) => {
    calls.push({ batch: structuredClone(batch), atMs: clock.now(), signal });
    return script(batch, signal, calls.length, { clock, memory });
  };
  const reports: DeliveryReport[] = [];
  const breaker = options.breaker?.(clock);
  const makeFlusher = (over: { store?: BufferStore } = {}) =>
    new Flusher({
      store: over.store ?? store,
      processor,
      config: { ...flusherConfig, ...options.config },
      clock,
      random: options.random ?? (() => 0.5),
      processorBreaker: breaker,
      onOutcome: (r) => reports.push(r),
      ...(options.trigger ? { trigger: options.trigger } : {}),
    });
  return { clock, memory, store, flusher: makeFlusher(), makeFlusher, calls, reports, breaker };
}

const msg = (conversation: string, id: string, text = id): InboundMessage => ({
  conversation,
  id,
  provider: "generic",
  text,
});

const ids = (b: Batch) => b.messages.map((m) => m.id);

describe("Flusher.flushDue", () => {
  it("delivers a quiet burst in order once window + grace have passed, not before", async () => {
    const { clock, memory, flusher, calls } = setup();
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(300);
    await memory.append(msg("c:1", "b"));
    await memory.append(msg("c:1", "c"));

    await clock.advanceInOrder(1000); // quiet for the window, but still inside the grace
    const early = await clock.run(flusher.flushDue());
    expect(early.claimed).toBe(0);
    expect(calls).toHaveLength(0);

    await clock.advanceInOrder(200);
    const counts = await clock.run(flusher.flushDue());
    expect(counts).toMatchObject({ claimed: 1, delivered: 1, retried: 0, errors: 0 });
    expect(calls).toHaveLength(1);
    expect(ids(calls[0]!.batch)).toEqual(["a", "b", "c"]);
    expect(calls[0]!.batch).toMatchObject({ attempt: 1, reason: "quiet", text: "a\nb\nc" });
    expect((await memory.inspect("c:1")).batch).toBeNull();
  });

  it("retries with backoff, then delivers the same batchId as attempt 2", async () => {
    const { clock, memory, flusher, calls, reports } = setup({
      script: async (_b, _s, call) =>
        call === 1 ? { kind: "retry", error: "HTTP 503" } : { kind: "delivered" },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);

    const first = await clock.run(flusher.flushDue());
    expect(first).toMatchObject({ claimed: 1, retried: 1, delivered: 0 });
    const state = await memory.inspect("c:1");
    // random 0.5 over [0, 100] (attempt 1, base 100) -> 50 ms.
    expect(state.batch).toMatchObject({ attempt: 1, inFlight: false, lastError: "HTTP 503" });
    expect(state.batch!.nextAttemptAtMs).toBe(clock.now() + 50);

    // Backoff not elapsed: the retry is not claimable yet.
    expect((await clock.run(flusher.flushDue())).claimed).toBe(0);
    await clock.advanceInOrder(50);
    const second = await clock.run(flusher.flushDue());
    expect(second).toMatchObject({ claimed: 1, delivered: 1 });
    expect(calls.map((c) => c.batch.attempt)).toEqual([1, 2]);
    expect(calls[1]!.batch.batchId).toBe(calls[0]!.batch.batchId);
    expect(reports.map((r) => r.outcome)).toEqual(["retry", "delivered"]);
    expect(reports[0]).toMatchObject({ attempt: 1, error: "HTTP 503" });
  });

  it("honours the processor's Retry-After (capped at retryMaxMs)", async () => {
    const { clock, memory, flusher } = setup({
      script: async () => ({ kind: "retry", error: "HTTP 429", retryAfterMs: 800 }),
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    await clock.run(flusher.flushDue());
    expect((await memory.inspect("c:1")).batch!.nextAttemptAtMs).toBe(clock.now() + 800);
  });

  it("treats a thrown processor error as a retry", async () => {
    const { clock, memory, flusher } = setup({
      script: async () => {
        throw new Error("ECONNRESET");
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const counts = await clock.run(flusher.flushDue());
    expect(counts.retried).toBe(1);
    expect((await memory.inspect("c:1")).batch!.lastError).toContain("ECONNRESET");
  });

  it("dead-letters a permanent failure at once, with all messages and the error", async () => {
    const { clock, memory, flusher, reports } = setup({
      script: async () => ({ kind: "permanent", error: "HTTP 422" }),
    });
    await memory.append(msg("c:1", "a"));
    await memory.append(msg("c:1", "b"));
    await clock.advanceInOrder(1200);
    const counts = await clock.run(flusher.flushDue());
    expect(counts).toMatchObject({ claimed: 1, dead: 1, retried: 0 });
    const dlq = await memory.dlqList();
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ conversation: "c:1", attempts: 1, lastError: "HTTP 422" });
    expect(dlq[0]!.messages.map((m) => m.id)).toEqual(["a", "b"]);
    expect(reports[0]).toMatchObject({ outcome: "dead", error: "HTTP 422" });
    expect((await memory.inspect("c:1")).batch).toBeNull();
  });

  it("dead-letters after retryMaxAttempts retries", async () => {
    const { clock, memory, flusher, calls } = setup({
      script: async () => ({ kind: "retry", error: "HTTP 500" }),
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const outcomes: number[] = [];
    for (let i = 0; i < 3; i++) {
      outcomes.push((await clock.run(flusher.flushDue())).dead);
      await clock.advanceInOrder(1000); // past any backoff (retryMaxMs)
    }
    expect(outcomes).toEqual([0, 0, 1]);
    expect(calls.map((c) => c.batch.attempt)).toEqual([1, 2, 3]);
    expect((await memory.dlqList())[0]).toMatchObject({ attempts: 3, lastError: "HTTP 500" });
  });

  it("supersede: the batch goes back ahead of newer messages and they flush together", async () => {
    const { clock, memory, flusher, calls, reports } = setup({
      script: async (_b, _s, call, ctx) => {
        if (call === 1) {
          // A newer message arrives while the processor looks at the first batch.
          await ctx.memory.append(msg("c:1", "c"));
          return { kind: "supersede" };
        }
        return { kind: "delivered" };
      },
    });
    await memory.append(msg("c:1", "a"));
    await memory.append(msg("c:1", "b"));
    await clock.advanceInOrder(1200);
    const first = await clock.run(flusher.flushDue());
    expect(first).toMatchObject({ claimed: 1, superseded: 1 });
    const state = await memory.inspect("c:1");
    expect(state.batch).toBeNull();
    expect(state.buffer!.messages.map((m) => m.id)).toEqual(["a", "b", "c"]);

    await clock.advanceInOrder(1200);
    await clock.run(flusher.flushDue());
    expect(calls).toHaveLength(2);
    expect(ids(calls[1]!.batch)).toEqual(["a", "b", "c"]);
    expect(calls[1]!.batch.attempt).toBe(1); // supersede does not count an attempt
    expect(calls[1]!.batch.batchId).not.toBe(calls[0]!.batch.batchId);
    expect(reports.map((r) => r.outcome)).toEqual(["superseded", "delivered"]);
  });

  it("supersede with nothing newer pending is a retry", async () => {
    const { clock, memory, flusher } = setup({ script: async () => ({ kind: "supersede" }) });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const counts = await clock.run(flusher.flushDue());
    expect(counts).toMatchObject({ retried: 1, superseded: 0 });
    expect((await memory.inspect("c:1")).batch).toMatchObject({ attempt: 1, inFlight: false });
  });

  it("claims nothing while the processor breaker is open, and probes once after openMs", async () => {
    let down = true;
    const { clock, memory, flusher, calls, breaker } = setup({
      breaker: (clock) =>
        new CircuitBreaker({ name: "processor", failureThreshold: 2, openMs: 5000, clock }),
      script: async () => (down ? { kind: "retry", error: "HTTP 503" } : { kind: "delivered" }),
      config: { retryBaseMs: 10, retryMaxMs: 10 },
    });

    for (const c of ["c:1", "c:2", "c:3"]) await memory.append(msg(c, "a"));
    await clock.advanceInOrder(1200);
    const first = await clock.run(flusher.flushDue({ maxBatches: 2 }));
    expect(first.retried).toBe(2);
    expect(breaker!.state).toBe("open");
    const burnt = calls.length;

    await clock.advanceInOrder(100); // retries are due again, c:3 is due too
    const whileOpen = await clock.run(flusher.flushDue());
    expect(whileOpen).toMatchObject({ claimed: 0, skippedBreakerOpen: 3 });
    expect(calls).toHaveLength(burnt);
    // No attempt burnt: the retried batches still stand at attempt 1, the third was never
    // claimed.
    const retried = calls.map((c) => c.batch.conversation);
    const untouched = ["c:1", "c:2", "c:3"].find((c) => !retried.includes(c))!;
    for (const c of retried) {
      expect((await memory.inspect(c)).batch).toMatchObject({ attempt: 1, inFlight: false });
    }
    expect((await memory.inspect(untouched)).batch).toBeNull();

    await clock.advanceInOrder(5000);
    expect(breaker!.state).toBe("half_open");
    down = false;
    const probe = await clock.run(flusher.flushDue({ maxBatches: 1 }));
    expect(probe).toMatchObject({ claimed: 1, delivered: 1 });
    expect(breaker!.state).toBe("closed");
    const rest = await clock.run(flusher.flushDue());
    expect(rest.delivered).toBe(2);
  });

  it("is bounded by maxBatches and never claims one conversation twice per sweep", async () => {
    const { clock, memory, flusher, calls } = setup();
    for (let i = 0; i < 6; i++) await memory.append(msg(`c:${i}`, "a"));
    await clock.advanceInOrder(1200);
    expect((await clock.run(flusher.flushDue({ maxBatches: 4 }))).claimed).toBe(4);
    expect((await clock.run(flusher.flushDue({ maxBatches: 4 }))).claimed).toBe(2);
    const convs = calls.map((c) => c.batch.conversation);
    expect(new Set(convs).size).toBe(6);
  });

  it("stops claiming once the time budget is spent (started deliveries finish)", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 10, 0, 0));
    const memory = new MemoryStore({ settings, clock });
    let delivered = 0;
    const flusher = new Flusher({
      store: memory,
      processor: async (_b, signal) => {
        await clock.sleep(500, signal);
        delivered++;
        return { kind: "delivered" };
      },
      config: flusherConfig,
      clock,
      concurrency: 1,
    });
    for (let i = 0; i < 6; i++) await memory.append(msg(`c:${i}`, "a"));
    await clock.advanceInOrder(1200);
    const counts = await clock.run(flusher.flushDue({ budgetMs: 1000 }));
    // Claims start at +0 and +500; at +1000 the budget is spent.
    expect(counts).toMatchObject({ claimed: 2, delivered: 2 });
    expect(delivered).toBe(2);
  });

  it("delivers different conversations concurrently, up to the concurrency limit", async () => {
    let inFlight = 0;
    let peak = 0;
    const { clock, memory, flusher } = setup({
      script: async (_b, signal, _n, ctx) => {
        peak = Math.max(peak, ++inFlight);
        await ctx.clock.sleep(300, signal);
        inFlight--;
        return { kind: "delivered" };
      },
    });
    for (let i = 0; i < 10; i++) await memory.append(msg(`c:${i}`, "a"));
    await clock.advanceInOrder(1200);
    const counts = await clock.run(flusher.flushDue());
    expect(counts.delivered).toBe(10);
    expect(peak).toBe(4);
  });

  it("a wake index it cannot read makes the trigger come back now, not idle", async () => {
    const { clock, memory, flusher } = setup({
      store: (m) => {
        const broken = Object.create(m) as MemoryStore;
        broken.dueWakes = () => Promise.reject(new Error("ECONNREFUSED"));
        return broken;
      },
    });
    await memory.append(msg("c:1", "a"));
    const counts = await clock.run(flusher.flushDue());
    expect(counts).toMatchObject({ errors: 1, partitions: 0, nextWakeAtMs: clock.now() });
  });

  it("idle: nothing visited, no next wake-up; pending: the earliest one", async () => {
    const { clock, memory, flusher } = setup();
    expect(await clock.run(flusher.flushDue())).toMatchObject({
      partitions: 0,
      nextWakeAtMs: null,
    });
    const appended = await memory.append(msg("c:1", "a"));
    expect(await clock.run(flusher.flushDue())).toMatchObject({
      partitions: 0,
      nextWakeAtMs: appended.flushAtMs,
    });
  });

  it("counts store failures and keeps going", async () => {
    const { clock, memory, flusher } = setup({
      store: (m) => {
        const broken = Object.create(m) as MemoryStore;
        // Only the partition of c:1 is visited (its wake-up passed); its reap fails.
        broken.reapExpired = () => Promise.reject(new Error("ECONNREFUSED"));
        return broken;
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const counts = await clock.run(flusher.flushDue());
    expect(counts).toMatchObject({ errors: 1, delivered: 1 });
  });
});

describe("Flusher delivery under the lease", () => {
  it("renews the lease during a slow delivery, so no other flusher can take the batch", async () => {
    let extends_ = 0;
    const { clock, memory, flusher, makeFlusher, calls } = setup({
      // Lease 1000 ms, delivery takes 3500 ms (timeout 5000): only renewal keeps it ours.
      settings: { lockTtlMs: 1000 },
      config: { lockTtlMs: 1000, deliveryTimeoutMs: 5000 },
      store: (m) => {
        const counting = Object.create(m) as MemoryStore;
        counting.extend = (c: string, b: string, t: string) => {
          extends_++;
          return m.extend(c, b, t);
        };
        return counting;
      },
      script: async (_b, signal, call, ctx) => {
        if (call === 1) await ctx.clock.sleep(3500, signal);
        return { kind: "delivered" };
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const slow = flusher.flushConversation("c:1");
    const rival = makeFlusher({ store: memory });
    const rivalCounts = (async () => {
      await clock.sleep(2600); // well past the original lease
      return await rival.flushDue();
    })();
    const [outcome, counts] = await clock.run(Promise.all([slow, rivalCounts]));
    expect(outcome.status).toBe("delivered");
    expect(counts).toMatchObject({ reaped: 0, claimed: 0 });
    expect(extends_).toBeGreaterThanOrEqual(3);
    expect(calls).toHaveLength(1);
  });

  it("on a lost lock it aborts the delivery, records lock_lost and does NOT ack", async () => {
    let acks = 0;
    let stallExtend = true;
    const { clock, memory, makeFlusher, calls, reports } = setup({
      settings: { lockTtlMs: 1000 },
      config: { lockTtlMs: 1000, deliveryTimeoutMs: 5000 },
      store: (m, clock) => {
        // This flusher's isolate freezes: its first renewal reaches the store only after the
        // lease has lapsed and another flusher has taken the batch over.
        const frozen = Object.create(m) as MemoryStore;
        frozen.extend = async (c: string, b: string, t: string) => {
          if (stallExtend) {
            stallExtend = false;
            await clock.sleep(1500);
          }
          return await m.extend(c, b, t);
        };
        frozen.ack = (c: string, b: string, t: string) => {
          acks++;
          return m.ack(c, b, t);
        };
        return frozen;
      },
      script: async (_b, signal, call, ctx) => {
        if (call === 1) await ctx.clock.sleep(4000, signal);
        return { kind: "delivered" };
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const frozenFlusher = makeFlusher();
    const healthy = makeFlusher({ store: memory });
    const first = frozenFlusher.flushConversation("c:1");
    const takeover = (async () => {
      await clock.sleep(1200); // lease (1000 ms) has lapsed, renewal still stuck
      return await healthy.flushDue();
    })();
    const [outcome, counts] = await clock.run(Promise.all([first, takeover]));

    expect(counts).toMatchObject({ reaped: 1, claimed: 1, delivered: 1 });
    expect(outcome.status).toBe("lock_lost");
    expect(acks).toBe(0);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.signal.aborted).toBe(true);
    expect(calls[0]!.signal.reason).toBeInstanceOf(LockLostError);
    expect(calls[1]!.batch).toMatchObject({ batchId: calls[0]!.batch.batchId, attempt: 2 });
    expect(reports.map((r) => r.outcome).sort()).toEqual(["delivered", "lock_lost"]);
    const { events } = await memory.readEvents({}, { limit: 100 });
    expect(events.some((e) => e.type === "lock_lost")).toBe(true);
    expect((await memory.inspect("c:1")).batch).toBeNull();
  });

  it("retries recording the outcome when Redis surely did not get the call", async () => {
    let acks = 0;
    const { clock, memory, flusher } = setup({
      store: (m) => {
        const flaky = Object.create(m) as MemoryStore;
        flaky.ack = (c: string, b: string, t: string) =>
          ++acks <= 2
            ? Promise.reject(new RedisUnavailableError("connect ECONNREFUSED"))
            : m.ack(c, b, t);
        return flaky;
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const outcome = await clock.run(flusher.flushConversation("c:1"));
    expect(outcome.status).toBe("delivered");
    expect(acks).toBe(3);
    expect((await memory.inspect("c:1")).batch).toBeNull();
  });

  it("re-sends a timed-out ack (idempotent) and it lands exactly once", async () => {
    let acks = 0;
    const { clock, memory, flusher, calls } = setup({
      store: (m) => {
        const slow = Object.create(m) as MemoryStore;
        // The first ack commits but its answer is lost; the repeat finds the processed record.
        slow.ack = async (c: string, b: string, t: string) => {
          const result = await m.ack(c, b, t);
          if (++acks === 1) throw new RedisTimeoutError("no answer in 3000 ms");
          return result;
        };
        return slow;
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const outcome = await clock.run(flusher.flushConversation("c:1"));
    expect(outcome).toMatchObject({ status: "delivered", attempt: 1 });
    expect(acks).toBe(2);
    expect(calls).toHaveLength(1);
    expect((await memory.inspect("c:1")).batch).toBeNull();
  });

  it("never replays a timed-out fail: the outcome is unknown, the sweep redelivers later", async () => {
    let fails = 0;
    const { clock, memory, flusher, makeFlusher, calls } = setup({
      script: async (_b, _s, n) =>
        n === 1 ? { kind: "retry", error: "HTTP 503" } : { kind: "delivered" },
      store: (m) => {
        const slow = Object.create(m) as MemoryStore;
        slow.fail = () => {
          fails++;
          return Promise.reject(new RedisTimeoutError("no answer in 3000 ms"));
        };
        return slow;
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const outcome = await clock.run(flusher.flushConversation("c:1"));
    expect(outcome).toMatchObject({ status: "error", attempt: 1 });
    expect(fails).toBe(1);
    // The lease lapses; a healthy flusher reaps it and delivers the same batchId again.
    await clock.advanceInOrder(settings.lockTtlMs + 1);
    const counts = await clock.run(makeFlusher({ store: memory }).flushDue());
    expect(counts).toMatchObject({ reaped: 1, delivered: 1 });
    expect(calls.map((c) => [c.batch.batchId, c.batch.attempt])).toEqual([
      [calls[0]!.batch.batchId, 1],
      [calls[0]!.batch.batchId, 2],
    ]);
  });

  it("aborts a delivery at deliveryTimeoutMs and schedules a retry", async () => {
    const { clock, memory, flusher, calls } = setup({
      script: async (_b, signal, _n, ctx) => {
        await ctx.clock.sleep(60_000, signal);
        return { kind: "delivered" };
      },
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const startedMs = clock.now();
    const outcome = await clock.run(flusher.flushConversation("c:1"));
    expect(outcome).toMatchObject({ status: "retry", attempt: 1 });
    expect((outcome as { error: string }).error).toContain("timed out after 2000 ms");
    expect(clock.now() - startedMs).toBe(2000);
    expect(calls[0]!.signal.aborted).toBe(true);
  });

  it("does not wait on a processor that ignores its abort signal", async () => {
    const { clock, memory, flusher } = setup({
      script: () => new Promise<DeliveryOutcome>(() => {}),
    });
    await memory.append(msg("c:1", "a"));
    await clock.advanceInOrder(1200);
    const outcome = await clock.run(flusher.flushConversation("c:1"));
    expect(outcome.status).toBe("retry");
  });
});

describe("Flusher.flushConversation", () => {
  it("force claims a buffer before it is due, with reason manual", async () => {
    const { clock, memory, flusher, calls } = setup();
    await memory.append(msg("c:1", "a"));
    expect(await clock.run(flusher.flushConversation("c:1"))).toMatchObject({
      status: "not_due",
    });
    const outcome = await clock.run(flusher.flushConversation("c:1", { force: true }));
    expect(outcome).toMatchObject({ status: "delivered", attempt: 1, size: 1 });
    expect(calls[0]!.batch.reason).toBe("manual");
  });

  it("reports locked and empty without calling the processor", async () => {
    const { clock, memory, flusher, calls } = setup();
    expect((await clock.run(flusher.flushConversation("c:1"))).status).toBe("empty");
    await memory.append(msg("c:1", "a"));
    const held = await memory.claim("c:1", { force: true });
    expect(held.status).toBe("claimed");
    expect((await clock.run(flusher.flushConversation("c:1"))).status).toBe("locked");
    expect(calls).toHaveLength(0);
  });

  it("logs outcomes as JSON lines with the conversation masked", async () => {
    const lines: string[] = [];
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 10, 0, 0));
    const memory = new MemoryStore({ settings, clock });
    const flusher = new Flusher({
      store: memory,
      processor: async () => ({ kind: "retry", error: "HTTP 502" }),
      config: flusherConfig,
      clock,
      random: () => 0,
      logger: createLogger({ level: "info", sink: (l) => lines.push(l), clock }),
    });
    await memory.append(msg("whatsapp:966501234567", "a"));
    await clock.run(flusher.flushConversation("whatsapp:966501234567", { force: true }));
    const records = lines.map((l) => JSON.parse(l));
    const retry = records.find((r) => r.msg === "batch retry");
    expect(retry).toMatchObject({
      level: "warn",
      conversation: "whatsapp:**********67",
      attempt: 1,
      error: "HTTP 502",
      at: new Date(clock.now()).toISOString(),
    });
    expect(lines.join("\n")).not.toContain("966501234567");
  });
});

describe("Flusher.runTimer", () => {
  it("waits for window + grace; a message during the grace postpones the flush", async () => {
    const claims: number[] = [];
    const { clock, memory, flusher, calls } = setup({
      store: (m, clock) => {
        const spy = Object.create(m) as MemoryStore;
        spy.claim = (c: string, o?: { force?: boolean }) => {
          claims.push(clock.now());
          return m.claim(c, o);
        };
        return spy;
      },
    });
    const t0 = clock.now();
    const appended = await memory.append(msg("c:1", "a"));
    expect(appended.armTimer).toBe(true);
    const timer = flusher.runTimer("c:1", appended);
    const late = (async () => {
      await clock.sleep(1100); // window passed, inside the 200 ms grace
      const second = await memory.append(msg("c:1", "b"));
      expect(second.armTimer).toBe(false); // this burst already has its timer
    })();
    await clock.run(Promise.all([timer, late]));

    expect(claims).toEqual([t0 + 1200, t0 + 1100 + 1200]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.atMs).toBe(t0 + 2300);
    expect(ids(calls[0]!.batch)).toEqual(["a", "b"]);
  });

  it("after an ack reporting dueAgain, keeps flushing the burst that arrived mid-delivery", async () => {
    const { clock, memory, flusher, calls } = setup({
      script: async (_b, signal, call, ctx) => {
        if (call === 1) {
          await ctx.clock.sleep(100, signal);
          await ctx.memory.append(msg("c:1", "c"));
          await ctx.clock.sleep(100, signal);
        }
        return { kind: "delivered" };
      },
    });
    const t0 = clock.now();
    const appended = await memory.append(msg("c:1", "a"));
    await memory.append(msg("c:1", "b"));
    await clock.run(flusher.runTimer("c:1", appended));
    expect(calls).toHaveLength(2);
    expect(ids(calls[0]!.batch)).toEqual(["a", "b"]);
    expect(ids(calls[1]!.batch)).toEqual(["c"]);
    // "c" arrived at t0+1300; due at +1000 window +200 grace.
    expect(calls[1]!.atMs).toBe(t0 + 1300 + 1200);
    expect(calls[1]!.batch.fence).toBeGreaterThan(calls[0]!.batch.fence);
    expect((await memory.inspect("c:1")).buffer).toBeNull();
  });

  it("retries a failed delivery by itself when its backoff ends (no sweep needed)", async () => {
    const { clock, memory, flusher, calls } = setup({
      script: async (_b, _s, n) =>
        n <= 2 ? { kind: "retry", error: "HTTP 503" } : { kind: "delivered" },
    });
    const appended = await memory.append(msg("c:1", "a"));
    await clock.run(flusher.runTimer("c:1", appended));
    expect(calls.map((c) => c.batch.attempt)).toEqual([1, 2, 3]);
    expect(new Set(calls.map((c) => c.batch.batchId)).size).toBe(1);
    expect((await memory.inspect("c:1")).batch).toBeNull();
  });

  /** A durable trigger that records what the flusher told it. */
  function recordingTrigger() {
    const said: string[] = [];
    const trigger: TriggerWakeup = {
      version: async () => {
        said.push("version");
        return "v7";
      },
      settle: async (version, nextAtMs) => {
        said.push(`settle ${version} ${nextAtMs}`);
      },
    };
    return { trigger, said };
  }

  /** Wraps the store to record which of its methods the flusher calls, in order. */
  function recordingStore(used: string[]) {
    return (m: MemoryStore): BufferStore =>
      new Proxy(m, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => {
            used.push(String(prop));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
  }

  it("having delivered its burst, settles the wake-up it lowered: no sweep is called for nothing", async () => {
    const { trigger, said } = recordingTrigger();
    const used: string[] = [];
    const { clock, memory, flusher, calls } = setup({ trigger, store: recordingStore(used) });
    const appended = await memory.append(msg("c:1", "a"));
    expect(appended.wake).toEqual({ partition: partitionOf("c:1", 4), epoch: "1" });
    expect((await memory.dueWakes(16)).earliestWakeAtMs).toBe(appended.flushAtMs);
    await clock.run(flusher.runTimer("c:1", appended));
    expect(calls).toHaveLength(1);
    // Nothing buffered, pending or leased anywhere: the wake index is empty, the trigger idle.
    expect((await memory.dueWakes(16)).earliestWakeAtMs).toBeNull();
    expect(said).toEqual(["version", "settle v7 null"]);
    // The ack found the partition empty, so the settle read neither the epoch nor the due index.
    expect(used).toEqual(["claim", "ack", "settleWake"]);
  });

  it("a partition emptied again after another burst lowered it keeps its wake-up for the sweep", async () => {
    const { trigger, said } = recordingTrigger();
    const p = partitionOf("c:1", 4);
    const neighbour = ["c:2", "c:3", "c:4", "c:5", "c:6", "c:7", "c:8", "c:9"].find((c) =>
      partitionOf(c, 4) === p
    )!;
    const { clock, memory, flusher } = setup({
      trigger,
      script: async (batch, signal, _n, ctx) => {
        if (batch.conversation === "c:1") {
          // Mid-delivery a neighbour's burst lowers the wake-up, and is delivered before c:1's
          // ack: the ack finds the partition empty, but the epoch has moved.
          await ctx.memory.append(msg(neighbour, "x"));
          const other = await ctx.memory.claim(neighbour, { force: true });
          if (other.status !== "claimed") throw new Error("expected the neighbour claimed");
          await ctx.memory.ack(neighbour, other.claim.batch.batchId, other.claim.token);
          await ctx.clock.sleep(10, signal);
        }
        return { kind: "delivered" };
      },
    });
    const appended = await memory.append(msg("c:1", "a"));
    await clock.run(flusher.runTimer("c:1", appended));
    // The settle's epoch check refused to drop it: a later sweep settles it.
    const earliest = (await memory.dueWakes(16)).earliestWakeAtMs;
    expect(earliest).not.toBeNull();
    expect(said).toEqual(["version", `settle v7 ${earliest}`]);
  });

  it("leaves the wake-up to the sweep when its partition was lowered again meanwhile", async () => {
    const { trigger, said } = recordingTrigger();
    const used: string[] = [];
    const { clock, memory, flusher } = setup({
      trigger,
      store: recordingStore(used),
      script: async (_b, signal, _n, ctx) => {
        // Mid-delivery, a new burst in the same partition lowers the wake-up again.
        await ctx.memory.append(msg(neighbour, "x"));
        await ctx.clock.sleep(10, signal);
        return { kind: "delivered" };
      },
    });
    const p = partitionOf("c:1", 4);
    const neighbour = ["c:2", "c:3", "c:4", "c:5", "c:6", "c:7", "c:8", "c:9"].find((c) =>
      partitionOf(c, 4) === p
    )!;
    const appended = await memory.append(msg("c:1", "a"));
    await clock.run(flusher.runTimer("c:1", appended));
    expect(said).toEqual([]);
    // The neighbour's buffer is on the due index: the ack's probe says so, the epoch read
    // shows the lowering, and the timer leaves it.
    expect(used).toEqual(["claim", "ack", "wakeEpoch"]);
    const wakes = await memory.dueWakes(16);
    expect(wakes.earliestWakeAtMs).toBe(appended.flushAtMs);
  });

  it("stops when another flusher holds the lock", async () => {
    const { clock, memory, flusher, calls } = setup({
      script: async () => ({ kind: "delivered" }),
    });

    const other = await memory.append(msg("c:2", "a"));
    await clock.advanceInOrder(1200);
    await memory.claim("c:2");
    await clock.run(flusher.runTimer("c:2", other));
    expect(calls).toHaveLength(0);
  });

  it("a storm of timers due at once delivers at most timerConcurrency at a time, all of them", async () => {
    let inFlight = 0;
    let peak = 0;
    const { clock, memory, flusher, calls } = setup({
      script: async (_b, signal, _n, ctx) => {
        peak = Math.max(peak, ++inFlight);
        await ctx.clock.sleep(300, signal);
        inFlight--;
        return { kind: "delivered" };
      },
    });
    const timers: Promise<void>[] = [];
    for (let i = 0; i < 60; i++) {
      const appended = await memory.append(msg(`storm:${i}`, "a"));
      timers.push(flusher.runTimer(`storm:${i}`, appended));
    }
    await clock.run(Promise.all(timers));
    expect(calls).toHaveLength(60);
    expect(peak).toBe(4);
    expect((await memory.stats()).openBuffers).toBe(0);
  });

  it("a webhook arriving as a storm falls due waits behind a few flushes, not the storm", async () => {
    // A store that, like Redis, runs one call at a time in arrival order, 1 ms each.
    const served: string[] = [];
    const { clock, memory, store, flusher, calls } = setup({
      store: (m, clock) => {
        let tail: Promise<unknown> = Promise.resolve();
        return new Proxy(m, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver);
            if (typeof value !== "function") return value;
            return (...args: unknown[]) => {
              const call = tail.then(async () => {
                await clock.sleep(1);
                served.push(String(prop));
                return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
              });
              tail = call.catch(() => {});
              return call;
            };
          },
        });
      },
    });
    const timers: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const appended = await memory.append(msg(`storm:${i}`, "a"));
      timers.push(flusher.runTimer(`storm:${i}`, appended));
    }
    let servedBeforeWebhook = -1;
    const webhook = (async () => {
      // Wakes right after all 200 timers did: the whole storm is due.
      await clock.sleep(settings.windowMs + settings.graceMs);
      await store.append(msg("webhook:1", "w"));
      servedBeforeWebhook = served.lastIndexOf("append");
    })();
    await clock.run(Promise.all([...timers, webhook]));
    expect(calls).toHaveLength(200);
    // Only the flushes holding a slot (4) got their claims in ahead of it; without the bound
    // all 200 claims would be queued before the webhook's append.
    expect(servedBeforeWebhook).toBeGreaterThanOrEqual(0);
    expect(served.slice(0, servedBeforeWebhook).filter((c) => c === "claim").length)
      .toBeLessThanOrEqual(4);
  });

  it("gives up past timerMaxMs instead of sleeping forever, and never rejects", async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 10, 0, 0));
    const memory = new MemoryStore({ settings: { ...settings, maxWaitMs: 900_000 }, clock });
    const flusher = new Flusher({
      store: memory,
      processor: async () => ({ kind: "delivered" }),
      config: flusherConfig,
      clock,
      timerMaxMs: 5000,
    });
    const appended = await memory.append(msg("c:1", "a"));
    const startedMs = clock.now();
    const chatter = (async () => {
      for (let i = 0; i < 20; i++) {
        await clock.sleep(1000);
        await memory.append(msg("c:1", `m${i}`));
      }
    })();
    await clock.run(Promise.all([flusher.runTimer("c:1", appended), chatter]));
    expect((await memory.inspect("c:1")).buffer!.size).toBe(21);
    expect(clock.now() - startedMs).toBe(20_000);

    const broken = new Flusher({
      store: Object.assign(Object.create(memory) as MemoryStore, {
        claim: () => Promise.reject(new Error("down")),
      }),
      processor: async () => ({ kind: "delivered" }),
      config: flusherConfig,
      clock,
    });
    const result: Promise<void> = broken.runTimer("c:1", { ...appended, flushAtMs: clock.now() });
    await expect(clock.run(result)).resolves.toBeUndefined();
  });
});
