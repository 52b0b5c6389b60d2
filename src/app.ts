/**
 * The composition root: the one place that wires one isolate's services, above every layer it
 * wires: config -> breaker-wrapped store -> processor -> Flusher -> (breaker-wrapped outbox ->
 * replayer) -> handler (src/http). Runtime-agnostic: the Supabase entry
 * (supabase/functions/lull/index.ts, through src/supabase-function.ts) hands in the platform's
 * env and EdgeRuntime; tests pass their own store, clock and processor.
 */
import { type BreakerStateChange, CircuitBreaker } from "./core/breaker.ts";
import { type Clock, systemClock } from "./core/clock.ts";
import { type Config, processorKind } from "./core/config.ts";
import { ConfigError } from "./core/errors.ts";
import { type DeliveryReport, Flusher } from "./core/flusher.ts";
import type { BufferStore, Processor } from "./core/types.ts";
import { createProcessor } from "./delivery/create-processor.ts";
import { type Alerter, createAlerter } from "./observability/alerts.ts";
import { createLogger } from "./observability/logger.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import type { Outbox } from "./outbox/outbox.ts";
import { withWakeupMirror } from "./wakeup/mirror.ts";
import { settledWakeAt, type Wakeup } from "./wakeup/wakeup.ts";
import { isOutboxFailure, OutboxReplayer, withOutboxBreaker } from "./outbox/replay.ts";
import { createWaitUntil } from "./runtime/wait-until.ts";
import { isRedisFailure, withBreaker } from "./http/breaker-store.ts";
import type { ServiceContext, StoreKind } from "./http/context.ts";
import type { EdgeRuntimeLike, Logger, TriggerWakeup } from "./core/ports.ts";
import { createHandler, type Handler } from "./http/handler.ts";

/** Circuit-breaker tuning (not environment variables: the defaults suit every deployment). */
export interface BreakerTuning {
  /** Consecutive failures that open it. */
  failureThreshold: number;
  /** How long it stays open before one probe goes through. */
  openMs: number;
}

/**
 * Redis: open after 3 consecutive transport failures, probe again after 2 s. Small numbers on
 * purpose: while open every webhook takes the fallback at once instead of waiting a Redis
 * timeout, and a probe every 2 s finds a recovered Redis quickly.
 */
export const REDIS_BREAKER: BreakerTuning = { failureThreshold: 3, openMs: 2000 };
/** Processor: open after 5 failed deliveries in a row, probe again after 10 s. */
export const PROCESSOR_BREAKER: BreakerTuning = { failureThreshold: 5, openMs: 10_000 };
/**
 * The outbox's Postgres: like Redis, open after 3 failures and probe every 2 s, so a dead
 * database costs the normal path (its per-append "rows pending?" check) one fast failure.
 */
export const POSTGRES_BREAKER: BreakerTuning = { failureThreshold: 3, openMs: 2000 };

/**
 * When the oldest outbox row is older than this, the outbox is stuck (health `degraded`, an
 * `outbox_stuck` alert): at least a minute, and at least 12 sweeps that did not drain it.
 */
export function defaultOutboxStuckMs(config: Config): number {
  return Math.max(60_000, 12 * config.sweepIntervalMs);
}

/** Inputs of {@link createApp}. */
export interface AppOptions {
  config: Config;
  /** The raw store; the app wraps it in the Redis breaker. */
  store: BufferStore;
  storeKind: StoreKind;
  /** @default the processor LULL_PROCESSOR_URL / LULL_PROCESSOR_FUNCTION names */
  processor?: Processor;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  metrics?: Metrics;
  alerter?: Alerter;
  /** @default EdgeRuntime.waitUntil when present, else a shim that logs rejections */
  waitUntil?: (work: Promise<unknown>) => void;
  /**
   * The platform's `EdgeRuntime` (Supabase Edge Runtime), handed in by the function entry; the
   * default waitUntil hands background work to it. @default the global `EdgeRuntime`, if any
   */
  edgeRuntime?: EdgeRuntimeLike;
  /** Used by the processor and the alerter. @default globalThis.fetch */
  fetch?: typeof fetch;
  redisBreaker?: Partial<BreakerTuning>;
  processorBreaker?: Partial<BreakerTuning>;
  /**
   * The durable outbox (Postgres) for Redis outages; the app wraps it in its own breaker and
   * closes it on `close()`. @default none: a Redis outage falls back to direct delivery
   */
  outbox?: Outbox;
  postgresBreaker?: Partial<BreakerTuning>;
  /** @default {@link defaultOutboxStuckMs} */
  outboxStuckMs?: number;
  /** The durable trigger's wake-up (Postgres lull.wakeup), lowered per burst, settled per sweep. */
  wakeup?: Wakeup;
}

/** A wired app: the handler plus what owners need to observe or shut it down. */
export interface App {
  handler: Handler;
  ctx: ServiceContext;
  /** Waits for background work tracked by the waitUntil shim, then closes the store. */
  close(): Promise<void>;
}

/** Builds the context and handler. */
export function createApp(options: AppOptions): App {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ??
    createLogger({ level: config.logLevel, clock, base: { fn: "lull" } });
  const metrics = options.metrics ?? createMetrics();
  const alerter = options.alerter ?? createAlerter({
    ...(config.alertWebhookUrl ? { url: config.alertWebhookUrl } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    logger,
    clock,
  });
  const shim = options.waitUntil ? undefined : createWaitUntil(logger, options.edgeRuntime);
  const waitUntil = options.waitUntil ?? shim!;

  const onStateChange = (change: BreakerStateChange) => {
    const fields = { breaker: change.name, from: change.from, to: change.to };
    if (change.to === "open") {
      logger.warn("circuit breaker opened", { ...fields, failures: change.failures });
      void alerter.alert(
        `breaker_open_${change.name}`,
        `circuit breaker '${change.name}' opened after ${change.failures} consecutive failures`,
        fields,
      );
    } else {
      logger.info("circuit breaker state changed", fields);
    }
  };
  const redisBreaker = new CircuitBreaker({
    name: "redis",
    ...REDIS_BREAKER,
    ...options.redisBreaker,
    clock,
    isFailureError: isRedisFailure,
    onStateChange,
  });
  const processorBreaker = new CircuitBreaker({
    name: "processor",
    ...PROCESSOR_BREAKER,
    ...options.processorBreaker,
    clock,
    onStateChange,
  });

  const breakered = withBreaker(options.store, redisBreaker);
  const store = options.wakeup
    ? withWakeupMirror(breakered, {
      wakeup: options.wakeup,
      waitUntil,
      onError: (error) =>
        logger.warn("could not lower the durable wake-up; the heartbeat covers it", {
          error: error instanceof Error ? error.message : String(error),
        }),
    })
    : breakered;
  const processor = options.processor ??
    createProcessor(config, options.fetch ? { fetch: options.fetch } : {});

  const onOutcome = (report: DeliveryReport) => {
    metrics.inc("lull_deliveries_total", { outcome: report.outcome });
    metrics.observe("lull_delivery_duration_ms", report.durationMs);
    if (report.outcome === "dead") {
      void alerter.alert("dead_letter", "a batch was moved to the dead-letter queue", {
        conversation: report.conversation,
        batchId: report.batchId,
        attempt: report.attempt,
        error: (report.error ?? "").slice(0, 200),
      });
    }
  };
  let outbox: OutboxReplayer | undefined;
  // A timer that delivered its burst settles the durable trigger too, so it calls no sweep that
  // would find nothing to do; rows still in the outbox keep it coming (the sweep replays them).
  const wakeup = options.wakeup;
  const trigger: TriggerWakeup | undefined = wakeup && {
    version: () => wakeup.version(),
    settle: async (version, nextAtMs) => {
      const outboxPending = outbox !== undefined && (await outbox.outbox.depth()).depth > 0;
      const next = settledWakeAt(nextAtMs, outboxPending, clock.now(), config.sweepIntervalMs);
      await wakeup.settle(version, next);
    },
  };
  const flusher = new Flusher({
    store,
    processor,
    config,
    clock,
    ...(options.random ? { random: options.random } : {}),
    logger,
    processorBreaker,
    onOutcome,
    ...(trigger ? { trigger } : {}),
  });

  let postgresBreaker: CircuitBreaker | undefined;
  if (options.outbox) {
    postgresBreaker = new CircuitBreaker({
      name: "postgres",
      ...POSTGRES_BREAKER,
      ...options.postgresBreaker,
      clock,
      isFailureError: isOutboxFailure,
      onStateChange,
    });
    outbox = new OutboxReplayer({
      outbox: withOutboxBreaker(options.outbox, postgresBreaker),
      // Outbox rows were acknowledged already: no quota may refuse them now.
      append: (message) => store.append(message, { quota: false }),
      logger,
      logPii: config.logPii,
      onReplayed: ({ conversation, result }) => {
        metrics.inc("lull_outbox_replayed_total", { result: result.status });
        // A replayed burst flushes by the in-isolate timer like any other, not only by sweep.
        if (result.armTimer) {
          metrics.inc("lull_flush_runs_total", { trigger: "timer" });
          waitUntil(flusher.runTimer(conversation, result));
        }
      },
    });
  }

  const ctx: ServiceContext = {
    config,
    store,
    processor,
    clock,
    logger,
    waitUntil,
    metrics,
    flusher,
    storeKind: options.storeKind,
    processorKind: processorKind(config),
    breakers: {
      redis: redisBreaker,
      processor: processorBreaker,
      ...(postgresBreaker ? { postgres: postgresBreaker } : {}),
    },
    alerter,
    ...(outbox ? { outbox } : {}),
    outboxStuckMs: options.outboxStuckMs ?? defaultOutboxStuckMs(config),
    ...(options.wakeup ? { wakeup: options.wakeup } : {}),
  };
  const handler = createHandler(ctx);
  // Once per isolate, after its first response: say whether this Redis can keep the promise
  // (an evicting policy, the partition layout). Not at module load, so an idle isolate costs
  // no command; not on the response path.
  let checked = false;
  const checkFitness = async () => {
    try {
      const fitness = await store.fitness();
      for (const problem of fitness.problems) logger.error(`redis unfit: ${problem}`, {});
      for (const note of fitness.notes) logger.warn(`redis: ${note}`, {});
    } catch (error) {
      if (error instanceof ConfigError) logger.error(error.message, {});
    }
  };
  return {
    handler: async (req) => {
      const res = await handler(req);
      if (!checked) {
        checked = true;
        // Best effort and only a log line: not tracked by waitUntil.
        void checkFitness();
      }
      return res;
    },
    ctx,
    async close() {
      await shim?.drain();
      await options.store.close();
      await options.outbox?.close();
      await options.wakeup?.close();
    },
  };
}
