/**
 * Wraps a {@link BufferStore} in the Redis circuit breaker: every store step goes through
 * `breaker.run`, so after a few transport failures requests fail fast with CircuitOpenError
 * (straight into the fallback) instead of each waiting a full Redis timeout. Only transport
 * failures count; a lost lock or a missing batch says nothing about Redis' health.
 */
import type { CircuitBreaker } from "../core/breaker.ts";
import { RedisTimeoutError, RedisUnavailableError } from "../core/errors.ts";
import type { BufferStore } from "../core/types.ts";

/** Whether an error says Redis itself is unhealthy (for the breaker's `isFailureError`). */
export function isRedisFailure(error: unknown): boolean {
  return error instanceof RedisUnavailableError || error instanceof RedisTimeoutError;
}

/** `store` with every method (but close) routed through `breaker`. */
export function withBreaker(store: BufferStore, breaker: CircuitBreaker): BufferStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || prop === "close") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (...args: unknown[]) =>
        breaker.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
    },
  });
}
