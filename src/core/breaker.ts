/**
 * A small circuit breaker. Closed: calls go through and consecutive failures are counted.
 * After `failureThreshold` of them it opens: calls fail fast with {@link CircuitOpenError}
 * until `openMs` has elapsed. Then it is half-open: exactly ONE probe call goes through; its
 * success closes the breaker, its failure opens it again for another `openMs`.
 *
 * Used around Redis (fail fast into the fallback instead of waiting on a dead server) and
 * around the processor (the flusher stops claiming, so a down processor burns no attempts).
 */
import { type Clock, systemClock } from "./clock.ts";
import { CircuitOpenError } from "./errors.ts";

/** Where the breaker is. */
export type BreakerState = "closed" | "open" | "half_open";

/** Passed to {@link CircuitBreaker.onStateChange}. */
export interface BreakerStateChange {
  name: string;
  from: BreakerState;
  to: BreakerState;
  /** Clock time of the change. */
  atMs: number;
  /** Consecutive failures counted when it happened. */
  failures: number;
}

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Shows up in errors, logs and metrics (e.g. `redis`, `processor`). */
  name: string;
  /** Consecutive failures that open the breaker. @default 5 */
  failureThreshold?: number;
  /** How long it stays open before letting one probe through. @default 30000 */
  openMs?: number;
  /** @default systemClock */
  clock?: Clock;
  /**
   * Whether a thrown error counts against the breaker. Errors that say nothing about the
   * dependency's health (a lost lock, a validation error) should not open it.
   * @default every error counts
   */
  isFailureError?: (error: unknown) => boolean;
  /** Called on every transition (metrics, alerts). Also settable later as a property. */
  onStateChange?: (change: BreakerStateChange) => void;
}

/**
 * The right to make one call, handed out by {@link CircuitBreaker.acquire}. Report how it went
 * exactly once; later reports are ignored.
 */
export interface BreakerPermit {
  /** The dependency answered sensibly. */
  success(): void;
  /** The dependency failed (counts towards opening). */
  failure(): void;
  /** No verdict (the call was not made after all, or failed for unrelated reasons). */
  release(): void;
}

/** See the module comment. */
export class CircuitBreaker {
  readonly name: string;
  /** Transition hook; may be replaced after construction (the HTTP layer wires metrics). */
  onStateChange?: (change: BreakerStateChange) => void;

  readonly #threshold: number;
  readonly #openMs: number;
  readonly #clock: Clock;
  readonly #isFailureError: (error: unknown) => boolean;
  #state: BreakerState = "closed";
  #failures = 0;
  #openedAtMs = 0;
  /** Whether the single half-open probe is out, and since when. */
  #probeStartedAtMs: number | null = null;
  /** Bumped on every transition, so a permit from an older era cannot flip the current one. */
  #era = 0;

  constructor(options: CircuitBreakerOptions) {
    this.name = options.name;
    this.#threshold = Math.max(1, options.failureThreshold ?? 5);
    this.#openMs = Math.max(0, options.openMs ?? 30_000);
    this.#clock = options.clock ?? systemClock;
    this.#isFailureError = options.isFailureError ?? (() => true);
    this.onStateChange = options.onStateChange;
  }

  /** Current state; an open breaker whose `openMs` has elapsed reads as half-open. */
  get state(): BreakerState {
    this.#refresh();
    return this.#state;
  }

  /** Consecutive failures counted so far (0 after a success). */
  get failures(): number {
    return this.#failures;
  }

  /** When an open breaker lets its next probe through (clock ms), or null if not open. */
  get retryAtMs(): number | null {
    this.#refresh();
    return this.#state === "open" ? this.#openedAtMs + this.#openMs : null;
  }

  /**
   * Whether a call would be let through right now, without reserving it. Callers that must not
   * start work they cannot finish (the flusher claiming a batch) use {@link acquire} instead.
   */
  get allowsCall(): boolean {
    this.#refresh();
    if (this.#state === "closed") return true;
    if (this.#state === "open") return false;
    return !this.#probeOut();
  }

  /**
   * Reserves one call. Throws {@link CircuitOpenError} when open, or when half-open with the
   * probe already out.
   */
  acquire(): BreakerPermit {
    this.#refresh();
    if (this.#state === "open") {
      throw new CircuitOpenError(this.name, this.#openedAtMs + this.#openMs);
    }
    if (this.#state === "half_open") {
      if (this.#probeOut()) {
        throw new CircuitOpenError(this.name, this.#probeStartedAtMs! + this.#openMs);
      }
      this.#probeStartedAtMs = this.#clock.now();
      return this.#permit(this.#era, true);
    }
    return this.#permit(this.#era, false);
  }

  /**
   * Runs `fn` through the breaker. A thrown error counts as a failure (unless
   * `isFailureError` says otherwise) and is rethrown; a resolved value counts as a failure when
   * `isFailure(value)` is true (e.g. a processor answering "retry later") and is returned.
   */
  async run<T>(fn: () => Promise<T>, isFailure?: (value: T) => boolean): Promise<T> {
    const permit = this.acquire();
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      if (this.#isFailureError(error)) permit.failure();
      else permit.release();
      throw error;
    }
    if (isFailure?.(value)) permit.failure();
    else permit.success();
    return value;
  }

  /** Forces the breaker closed (admin action, tests). */
  reset(): void {
    this.#failures = 0;
    this.#probeStartedAtMs = null;
    this.#transition("closed");
  }

  #permit(era: number, probe: boolean): BreakerPermit {
    let settled = false;
    const settle = (verdict: "success" | "failure" | "release") => {
      if (settled) return;
      settled = true;
      this.#settle(era, probe, verdict);
    };
    return {
      success: () => settle("success"),
      failure: () => settle("failure"),
      release: () => settle("release"),
    };
  }

  #settle(era: number, probe: boolean, verdict: "success" | "failure" | "release"): void {
    this.#refresh();
    if (probe) {
      // A probe that outlived its era (timed out and was replaced) no longer decides anything.
      if (era !== this.#era || this.#state !== "half_open") return;
      this.#probeStartedAtMs = null;
      if (verdict === "success") {
        this.#failures = 0;
        this.#transition("closed");
      } else if (verdict === "failure") {
        this.#failures++;
        this.#open();
      }
      return;
    }
    // Calls started while closed only count while it is still closed: a late success must not
    // close a breaker that opened meanwhile, nor a late failure re-open a fresh one.
    if (this.#state !== "closed" || era !== this.#era) return;
    if (verdict === "success") this.#failures = 0;
    else if (verdict === "failure") {
      this.#failures++;
      if (this.#failures >= this.#threshold) this.#open();
    }
  }

  #probeOut(): boolean {
    if (this.#probeStartedAtMs === null) return false;
    // A probe that never reports back must not wedge the breaker half-open forever.
    if (this.#clock.now() - this.#probeStartedAtMs >= this.#openMs) {
      this.#probeStartedAtMs = null;
      this.#era++;
      return false;
    }
    return true;
  }

  #open(): void {
    this.#openedAtMs = this.#clock.now();
    this.#transition("open");
  }

  /** Open → half-open happens lazily, when someone looks. */
  #refresh(): void {
    if (this.#state === "open" && this.#clock.now() - this.#openedAtMs >= this.#openMs) {
      this.#probeStartedAtMs = null;
      this.#transition("half_open");
    }
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#era++;
    if (from === to) return;
    this.#state = to;
    try {
      this.onStateChange?.({
        name: this.name,
        from,
        to,
        atMs: this.#clock.now(),
        failures: this.#failures,
      });
    } catch {
      // A broken metrics hook must not break the call path it observes.
    }
  }
}
