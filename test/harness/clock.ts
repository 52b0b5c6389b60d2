/**
 * The one test clock: a hand-driven {@link Clock} for tests and the model. Time moves only when
 * a test moves it:
 * - `advance(ms)` jumps at once and wakes every sleeper that is due (synchronous);
 * - `advanceInOrder(ms)` walks there sleeper by sleeper, letting each woken task run first;
 * - `run(work)` lets `work` run, and whenever everything is idle jumps to the next sleeper.
 */
import type { Clock } from "../../src/core/clock.ts";

interface Sleeper {
  until: number;
  seq: number;
  wake: () => void;
}

/** Resolves once the event loop has run everything already queued. */
const idle = () => new Promise<void>((r) => setImmediate(r));

/** A hand-driven clock (see the file header). */
export class ManualClock implements Clock {
  private current: number;
  private sleepers: Sleeper[] = [];
  private seq = 0;

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /** Moves time forward and wakes the sleepers that are due. */
  advance(ms: number): void {
    this.current += Math.max(0, ms);
    const due = this.sleepers.filter((s) => s.until <= this.current);
    this.sleepers = this.sleepers.filter((s) => s.until > this.current);
    for (const s of due) s.wake();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      if (ms <= 0) return resolve();
      const sleeper: Sleeper = {
        until: this.current + ms,
        seq: this.seq++,
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  /** Runs until `work` settles, advancing time only when everything is idle. */
  async run<T>(work: Promise<T>, maxMs = 600_000): Promise<T> {
    let settled = false;
    work.then(() => (settled = true), () => (settled = true));
    const limit = this.current + maxMs;
    for (;;) {
      await idle();
      if (settled) return await work;
      this.sleepers.sort((a, b) => a.until - b.until || a.seq - b.seq);
      const next = this.sleepers.shift();
      if (!next) throw new Error("deadlock: work is pending but nothing sleeps");
      if (next.until > limit) throw new Error("manual clock ran past its limit");
      this.current = Math.max(this.current, next.until);
      next.wake();
    }
  }

  /** Moves time forward by `ms`, waking sleepers in order on the way. */
  async advanceInOrder(ms: number): Promise<void> {
    const target = this.current + ms;
    const stop = this.sleep(ms);
    await this.run(stop);
    this.current = target;
  }
}
