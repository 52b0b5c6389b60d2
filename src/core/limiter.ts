/**
 * A FIFO concurrency limiter: at most `limit` tasks run at once, the rest wait their turn. Used
 * for the flushes in-isolate timers fire: when a thousand conversations fall due together they
 * must not all claim, deliver and ack at once, or every webhook arriving meanwhile waits behind
 * thousands of Redis calls and processor requests. Ingest never goes through the limiter.
 *
 * A freed slot is handed to the next waiter only after `yieldToIo` (a zero sleep: a macrotask),
 * so requests that arrived meanwhile are read and reach Redis before the next flush does.
 */

/** Options of {@link ConcurrencyLimiter}. */
export interface ConcurrencyLimiterOptions {
  /** Tasks running at once (at least 1). */
  limit: number;
  /** Resolves once pending I/O had a chance to run (e.g. `() => clock.sleep(0)`). */
  yieldToIo: () => Promise<void>;
}

/** See the module comment. */
export class ConcurrencyLimiter {
  readonly limit: number;
  readonly #yieldToIo: () => Promise<void>;
  readonly #waiting: (() => void)[] = [];
  #active = 0;

  constructor(options: ConcurrencyLimiterOptions) {
    this.limit = Math.max(1, Math.floor(options.limit));
    this.#yieldToIo = options.yieldToIo;
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `task` once a slot is free (in arrival order); settles as `task` does. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active < this.limit && this.#waiting.length === 0) this.#active++;
    // The slot is handed over already counted (see #release).
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      this.#release();
    }
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next === undefined) {
      this.#active--;
      return;
    }
    // The slot stays taken while it passes to `next`, so nobody can jump in meanwhile.
    this.#yieldToIo().then(next, next);
  }
}
