/**
 * What every route handler gets: the parsed config and the runtime-agnostic services. Built once
 * per isolate by the function entry (supabase/functions/_shared) and by tests.
 */
import type { Clock } from "../core/clock.ts";
import type { Config } from "../core/config.ts";
import type { BufferStore, Processor } from "../core/types.ts";

/** Minimal structured logger (JSON lines). Implementation: src/observability/logger.ts. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** In-process metrics (Prometheus names, e.g. `lull_http_requests_total`). */
export interface MetricsSink {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  observe(name: string, value: number, labels?: Record<string, string>): void;
}

/** Services shared by all routes. */
export interface AppContext {
  config: Config;
  /** The buffer store, already wrapped in the Redis circuit breaker. */
  store: BufferStore;
  /** Where batches go (HTTP URL or Supabase function), signed per DESIGN.md. */
  processor: Processor;
  clock: Clock;
  logger: Logger;
  /** Keeps work alive after the response (EdgeRuntime.waitUntil, or a shim). */
  waitUntil: (work: Promise<unknown>) => void;
  metrics: MetricsSink;
}
