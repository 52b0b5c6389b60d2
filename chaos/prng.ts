/**
 * A small seeded PRNG (mulberry32) so a chaos run's schedule (who sends what when, which
 * isolate dies, how the processor answers) is the same for the same seed. Timing under load
 * still varies, so two runs of one seed are alike, not identical.
 */

/** Seeded random numbers; every helper draws from one stream. */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Whole number in [min, max] (both included). */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** An independent stream derived from this one (so adding draws here does not shift it). */
  fork(salt: number): Prng {
    return new Prng((Math.floor(this.next() * 2 ** 32) ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  }
}
