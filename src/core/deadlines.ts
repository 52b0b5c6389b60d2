/**
 * Deadlines for many concurrent calls without a timer per call. A per-call `setTimeout` plus a
 * `Promise.race` showed up in profiles of every Redis call (a timer armed and cleared, and two
 * extra promises, for a call that takes a fraction of a millisecond). Here every pending call is
 * one entry in a set, and ONE interval, running only while something is pending, rejects the
 * entries whose deadline has passed. A call therefore expires between `timeoutMs` and
 * `timeoutMs + tickMs` after it started; the interval stops on the first tick that finds
 * nothing pending, so an idle process holds no timer.
 *
 * Runtime-agnostic: `setInterval`, `clearInterval` and `performance.now` (injectable for tests).
 */

/** The timer functions {@link Deadlines} uses. */
export interface DeadlineTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  /** Monotonic milliseconds. */
  now(): number;
}

const platformTimers: DeadlineTimers = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
  now: () => performance.now(),
};

/** Options of {@link Deadlines}. */
export interface DeadlinesOptions {
  /** How often pending deadlines are checked: the most a call can expire late. */
  tickMs: number;
  /** @default the platform's setInterval / clearInterval / performance.now */
  timers?: DeadlineTimers;
}

interface Entry {
  atMs: number;
  expire(): void;
}

/** Shared deadline checking for the calls of one owner (one Redis client, one handler). */
export class Deadlines {
  readonly #tickMs: number;
  readonly #timers: DeadlineTimers;
  readonly #pending = new Set<Entry>();
  #interval: unknown = undefined;

  constructor(options: DeadlinesOptions) {
    this.#tickMs = Math.max(1, Math.floor(options.tickMs));
    this.#timers = options.timers ?? platformTimers;
  }

  /** Calls whose deadline has not passed and that have not settled yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whether the checking interval is running (only while something is pending). */
  get ticking(): boolean {
    return this.#interval !== undefined;
  }

  /**
   * Settles as `work` does, unless `timeoutMs` passes first: then it rejects with `onExpire()`
   * and whatever `work` does later is ignored (`work` itself is not cancelled). A non-finite
   * `timeoutMs` means no deadline.
   */
  race<T>(work: Promise<T>, timeoutMs: number, onExpire: () => Error): Promise<T> {
    if (!Number.isFinite(timeoutMs)) return work;
    return new Promise<T>((resolve, reject) => {
      const entry: Entry = {
        atMs: this.#timers.now() + Math.max(0, timeoutMs),
        expire: () => {
          let error: unknown;
          try {
            error = onExpire();
          } catch (thrown) {
            error = thrown;
          }
          reject(error);
        },
      };
      this.#pending.add(entry);
      this.#start();
      work.then(
        (value) => {
          if (this.#pending.delete(entry)) resolve(value);
        },
        (error: unknown) => {
          if (this.#pending.delete(entry)) reject(error);
        },
      );
    });
  }

  #start(): void {
    if (this.#interval !== undefined) return;
    this.#interval = this.#timers.setInterval(() => this.#tick(), this.#tickMs);
  }

  #tick(): void {
    const now = this.#timers.now();
    for (const entry of this.#pending) {
      if (entry.atMs > now) continue;
      this.#pending.delete(entry);
      entry.expire();
    }
    if (this.#pending.size === 0 && this.#interval !== undefined) {
      this.#timers.clearInterval(this.#interval);
      this.#interval = undefined;
    }
  }
}
