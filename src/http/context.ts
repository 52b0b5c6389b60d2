/**
 * What every route handler gets: the parsed config and the runtime-agnostic services. Built once
 * per isolate by the function entry (supabase/functions/_shared) and by tests.
 */
import type { Wakeup } from "../wakeup/wakeup.ts";
import type { Clock } from "../core/clock.ts";
import type { Config, ProcessorKind } from "../core/config.ts";
import type { BufferStore, Processor } from "../core/types.ts";
import type { CircuitBreaker } from "../core/breaker.ts";
import type { Flusher } from "../core/flusher.ts";
import type { Alerter } from "../observability/alerts.ts";
import type { OutboxReplayer } from "../outbox/replay.ts";
import type { Logger, MetricsSink } from "../core/ports.ts";

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

/** Which backend the store talks to (reported by /lull/health). */
export type StoreKind = "tcp" | "upstash" | "memory";

/**
 * Everything the full route table needs: {@link AppContext} plus the flusher, the circuit
 * breakers and the alerter. Built by `createApp` (src/app.ts).
 */
export interface ServiceContext extends AppContext {
  flusher: Flusher;
  storeKind: StoreKind;
  processorKind: ProcessorKind;
  /**
   * The Redis breaker (around every store call), the processor breaker, and the outbox's
   * Postgres breaker when an outbox is configured.
   */
  breakers: { redis: CircuitBreaker; processor: CircuitBreaker; postgres?: CircuitBreaker };
  alerter: Alerter;
  /** The durable outbox and its replayer; undefined when no database is configured. */
  outbox?: OutboxReplayer;
  /** Oldest outbox row age past which the outbox counts as stuck (health, alert). */
  outboxStuckMs: number;
  /** The durable trigger's wake-up (Postgres); undefined when no database is configured. */
  wakeup?: Wakeup;
}
