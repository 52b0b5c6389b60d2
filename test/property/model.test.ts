/**
 * Model-based test of MemoryStore on a fake clock: random interleavings of appends,
 * duplicates, claims, acks, failures, crashes, reaps, time and requeues (test/property/
 * store-model.ts), then a drain through the due index and the end-state invariants.
 */
import fc from "fast-check";
import { it } from "vitest";
import type { BufferSettings } from "../../src/core/config.ts";
import { MemoryStore } from "../../src/store/memory-store.ts";
import { ManualClock } from "../harness/clock.ts";
import { drainAndCheck, modelCommands, type ModelOptions, StoreModel } from "./store-model.ts";

const sweepIntervalMs = 100;
const settings: BufferSettings = {
  keyPrefix: "model",
  partitions: 2,
  windowMs: 100,
  graceMs: 50,
  maxWaitMs: 400,
  maxMessages: 4,
  maxBytes: 600,
  // Exactly the config invariant's lower bound (maxWait + grace + 2 x sweep interval): any
  // sweep, PERSIST or TTL slip loses a message and the drain notices.
  timerTtlMs: 1000,
  processedTtlMs: 1000,
  lockTtlMs: 250,
  dedupTtlMs: 2000,
  retryMaxAttempts: 3,
  retryMaxAgeMs: 700,
  logPii: false,
};

const options: ModelOptions = {
  settings,
  sweepIntervalMs,
  conversations: ["support:1", "{a}:b c", "ü:🙂"],
  forceOnly: false,
  maxAdvanceSteps: 8,
  quietGapMs: 2500,
  partitionChange: false,
  maxDelayMs: 300,
  drain: "sweep",
};

it("MemoryStore follows the buffer state machine model (500 runs)", async () => {
  await fc.assert(
    fc.asyncProperty(
      modelCommands(options, 60),
      fc.boolean(),
      async (commands, requeueDead) => {
        const clock = new ManualClock();
        const store = new MemoryStore({ settings, clock });
        const model = new StoreModel(options);
        const real = { store, advance: async (ms: number) => clock.advance(ms) };
        await fc.asyncModelRun(() => ({ model, real }), commands);
        await drainAndCheck(model, real, requeueDead);
      },
    ),
    { numRuns: 500 },
  );
});
