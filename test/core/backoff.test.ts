import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { backoffDelayMs, parseRetryAfter } from "../../src/core/backoff.ts";

const fixed = (x: number) => () => x;

describe("backoffDelayMs", () => {
  it("grows the ceiling exponentially: random ~1 hits base * 2^(attempt-1)", () => {
    const top = fixed(0.999999999);
    expect(backoffDelayMs({ attempt: 1, baseMs: 1000, maxMs: 300_000, random: top })).toBe(1000);
    expect(backoffDelayMs({ attempt: 2, baseMs: 1000, maxMs: 300_000, random: top })).toBe(2000);
    expect(backoffDelayMs({ attempt: 4, baseMs: 1000, maxMs: 300_000, random: top })).toBe(8000);
  });

  it("caps the ceiling at maxMs, even for huge attempts", () => {
    const top = fixed(0.999999999);
    expect(backoffDelayMs({ attempt: 12, baseMs: 1000, maxMs: 300_000, random: top })).toBe(
      300_000,
    );
    expect(backoffDelayMs({ attempt: 5000, baseMs: 1000, maxMs: 300_000, random: top })).toBe(
      300_000,
    );
  });

  it("uses full jitter: the injected random picks anywhere from 0 up to the ceiling", () => {
    expect(backoffDelayMs({ attempt: 3, baseMs: 1000, maxMs: 300_000, random: fixed(0) })).toBe(0);
    expect(backoffDelayMs({ attempt: 3, baseMs: 1000, maxMs: 300_000, random: fixed(0.5) }))
      .toBe(2000);
    expect(backoffDelayMs({ attempt: 3, baseMs: 1000, maxMs: 300_000, random: fixed(0.25) }))
      .toBe(1000);
  });

  it("treats attempt < 1 as the first attempt", () => {
    const top = fixed(0.999999999);
    expect(backoffDelayMs({ attempt: 0, baseMs: 500, maxMs: 10_000, random: top })).toBe(500);
    expect(backoffDelayMs({ attempt: -3, baseMs: 500, maxMs: 10_000, random: top })).toBe(500);
  });

  it("survives a misbehaving random source", () => {
    expect(backoffDelayMs({ attempt: 2, baseMs: 100, maxMs: 1000, random: fixed(-1) })).toBe(0);
    expect(backoffDelayMs({ attempt: 2, baseMs: 100, maxMs: 1000, random: fixed(7) })).toBe(200);
    expect(backoffDelayMs({ attempt: 2, baseMs: 100, maxMs: 1000, random: fixed(NaN) })).toBe(0);
  });

  it("honours Retry-After as a floor", () => {
    expect(
      backoffDelayMs({
        attempt: 1,
        baseMs: 1000,
        maxMs: 300_000,
        random: fixed(0),
        retryAfterMs: 42_000,
      }),
    ).toBe(42_000);
    // A shorter Retry-After does not shorten the jittered delay.
    expect(
      backoffDelayMs({
        attempt: 3,
        baseMs: 1000,
        maxMs: 300_000,
        random: fixed(0.5),
        retryAfterMs: 10,
      }),
    ).toBe(2000);
  });

  it("caps Retry-After at maxMs, and ignores nonsense values", () => {
    expect(
      backoffDelayMs({
        attempt: 1,
        baseMs: 1000,
        maxMs: 60_000,
        random: fixed(0),
        retryAfterMs: 86_400_000,
      }),
    ).toBe(60_000);
    for (const retryAfterMs of [-5, NaN, Infinity, 0]) {
      expect(
        backoffDelayMs({ attempt: 1, baseMs: 1000, maxMs: 60_000, random: fixed(0), retryAfterMs }),
      ).toBe(0);
    }
  });

  it("property: always an integer within [0, min(max, base*2^(n-1))] or the Retry-After floor", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.option(fc.integer({ min: 1, max: 20_000_000 }), { nil: undefined }),
        (attempt, baseMs, maxMs, r, retryAfterMs) => {
          const delay = backoffDelayMs({ attempt, baseMs, maxMs, random: () => r, retryAfterMs });
          const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.max(ceiling, Math.min(retryAfterMs ?? 0, maxMs)));
          if (retryAfterMs !== undefined) {
            expect(delay).toBeGreaterThanOrEqual(Math.min(retryAfterMs, maxMs));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("parseRetryAfter", () => {
  const now = Date.UTC(2026, 10, 22, 10, 0, 0);

  it("reads delta-seconds", () => {
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("1.5", now)).toBe(1500);
  });

  it("reads an HTTP-date relative to now, never negative", () => {
    expect(parseRetryAfter("Sun, 22 Nov 2026 10:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Sun, 22 Nov 2026 09:59:00 GMT", now)).toBe(0);
  });

  it("returns undefined for absent or unparseable values", () => {
    for (const v of [null, undefined, "", "  ", "soon", "-5", "12abc", "1e3", "Foo, 99 Bar"]) {
      expect(parseRetryAfter(v, now)).toBeUndefined();
    }
  });
});
