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
  // One wrapper per method, made on first use instead of on every call (a fresh closure per
  // store call showed in profiles); rebuilt if the method itself was replaced meanwhile.
  const wrappers = new Map<PropertyKey, { method: unknown; wrapper: unknown }>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      const cached = wrappers.get(prop);
      if (cached !== undefined && cached.method === value) return cached.wrapper;
      const method = value as (...a: unknown[]) => Promise<unknown>;
      const wrapper = prop === "close"
        ? method.bind(target)
        : (...args: unknown[]) => breaker.run(() => method.apply(target, args));
      wrappers.set(prop, { method: value, wrapper });
      return wrapper;
    },
  });
}
