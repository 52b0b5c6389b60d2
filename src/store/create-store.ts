/**
 * Picks the store from configuration: TCP Redis (LULL_REDIS_URL), Upstash REST
 * (UPSTASH_REDIS_REST_*), or the embedded in-memory store when neither is set.
 */
import type { Clock } from "../core/clock.ts";
import type { BufferSettings, Config } from "../core/config.ts";
import type { DatabaseWakeIndex } from "../core/ports.ts";
import type { BufferStore } from "../core/types.ts";
import { createTcpClient } from "../redis/tcp-client.ts";
import { createUpstashClient } from "../redis/upstash-client.ts";
import { MemoryStore } from "./memory-store.ts";
import { RedisStore } from "./redis-store.ts";

/**
 * Per-call Redis deadline. Well under the webhook providers' own timeouts, so a stuck Redis
 * still leaves time for the fallback delivery.
 */
export const REDIS_CALL_TIMEOUT_MS = 3000;

/** The buffering knobs of a {@link Config}. */
export function bufferSettings(config: Config): BufferSettings {
  return {
    keyPrefix: config.keyPrefix,
    partitions: config.partitions,
    windowMs: config.windowMs,
    maxWaitMs: config.maxWaitMs,
    maxMessages: config.maxMessages,
    maxBytes: config.maxBytes,
    graceMs: config.graceMs,
    timerTtlMs: config.timerTtlMs,
    processedTtlMs: config.processedTtlMs,
    lockTtlMs: config.lockTtlMs,
    dedupTtlMs: config.dedupTtlMs,
    retryMaxAttempts: config.retryMaxAttempts,
    retryMaxAgeMs: config.retryMaxAgeMs,
    logPii: config.logPii,
    maxMessagesPerMinute: config.maxMessagesPerMinute,
    providerQuotas: config.providerQuotas,
    messageEvents: config.messageEvents,
  };
}

/** Options of {@link createStore}. */
export interface CreateStoreOptions {
  /** Only matters to the in-memory store. */
  clock?: Clock;
  /**
   * A Redis store keeps its partitions' wake-ups here (the project's Postgres), Redis's own wake
   * index standing in for what it refuses (RedisStoreOptions.wakeIndex). The in-memory store
   * keeps its own.
   */
  wakeIndex?: DatabaseWakeIndex;
  onWakeIndexError?: (operation: string, error: unknown) => void;
}

/** Builds the store `config` asks for. */
export function createStore(
  config: Config,
  options: CreateStoreOptions = {},
): { store: BufferStore; kind: "tcp" | "upstash" | "memory" } {
  const settings = bufferSettings(config);
  const wake = options.wakeIndex
    ? {
      wakeIndex: options.wakeIndex,
      ...(options.onWakeIndexError ? { onWakeIndexError: options.onWakeIndexError } : {}),
    }
    : {};
  switch (config.redis.kind) {
    case "tcp":
      return {
        kind: "tcp",
        store: new RedisStore({
          client: createTcpClient({ url: config.redis.url, timeoutMs: REDIS_CALL_TIMEOUT_MS }),
          settings,
          ...wake,
        }),
      };
    case "upstash":
      return {
        kind: "upstash",
        store: new RedisStore({
          client: createUpstashClient({
            url: config.redis.url,
            token: config.redis.token,
            timeoutMs: REDIS_CALL_TIMEOUT_MS,
          }),
          settings,
          ...wake,
        }),
      };
    case "none":
      return { kind: "memory", store: new MemoryStore({ settings, clock: options.clock }) };
  }
}
