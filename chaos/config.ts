/**
 * The two chaos modes and the lull configuration they run under. The lull settings are short
 * on purpose: a burst window of a few hundred ms, a dedup TTL of seconds, so a run of minutes
 * crosses every TTL the product has (idle gaps past the dedup TTL, an outage past the old
 * buffer TTL) many times.
 */

/** Which run: `short` fits CI (about 3 minutes wall), `long` is the full accounting. */
export type ChaosMode = "short" | "long";

/** Everything a run does, derived from the mode. */
export interface ChaosPlan {
  mode: ChaosMode;
  seed: number;
  /** `deno` processes serving supabase/functions/lull behind the same Redis. */
  isolates: number;
  /** Concurrent clients; each owns its conversations and sends them sequentially. */
  senders: number;
  conversations: number;
  /** Messages planned (each is sent until it gets a 2xx or its retries run out). */
  messages: number;
  /** How long the planned load spreads over. */
  loadMs: number;
  /** SIGKILLs of isolates over the load phase (half aimed at an isolate with a delivery in flight). */
  isolateKills: number;
  /** SIGKILLs of redis-server (restarted on the same port and dir). */
  redisKills: number;
  /** The full processor outage (every delivery 5xx, then refused), longer than the old buffer TTL. */
  outageMs: number;
  /** Share of conversations whose bursts are separated by more than the dedup TTL. */
  idleShare: number;
  /** Share of acknowledged requests that are sent again with the same ids. */
  redeliverShare: number;
  /** Processor answers while not in an outage. */
  processorFailShare: number;
  processorHangShare: number;
  /** Processor answers 422 (permanent): those batches go to the DLQ, which the checker reads. */
  processorPermanentShare: number;
  /** Share of requests that carry two or three messages of a burst in one body. */
  multiShare: number;
  /** Shares of conversations that arrive as signed Telegram / WhatsApp webhooks. */
  telegramShare: number;
  whatsappShare: number;
  /** Upper bound of the drain phase. */
  drainTimeoutMs: number;
  /** The cron emulation: POST /lull/flush this often on a live isolate. */
  sweepIntervalMs: number;
}

/** The lull environment of every isolate (secrets and URLs are added by the run). */
export const chaosLullEnv = {
  LULL_KEY_PREFIX: "chaos",
  LULL_PARTITIONS: "4",
  LULL_WINDOW_MS: "300",
  LULL_GRACE_MS: "100",
  LULL_MAX_WAIT_MS: "2000",
  LULL_MAX_MESSAGES: "8",
  LULL_MAX_BYTES: "4096",
  LULL_SWEEP_INTERVAL_MS: "500",
  LULL_TIMER_TTL_MS: "1000",
  LULL_PROCESSED_TTL_MS: "10000",
  // The lease must outlive one delivery plus 5 s of round trips (config rule).
  LULL_LOCK_TTL_MS: "6500",
  LULL_DELIVERY_TIMEOUT_MS: "1500",
  // Short enough that conversations go quiet past it within a run, long enough that a sender's
  // own retries (given up before it) and redeliveries stay inside it.
  LULL_DEDUP_TTL_MS: "15000",
  LULL_RETRY_BASE_MS: "100",
  LULL_RETRY_MAX_MS: "1000",
  LULL_RETRY_MAX_ATTEMPTS: "25",
  // Not above the dedup TTL (config rule: a redelivery during the retries must be recognised).
  LULL_RETRY_MAX_AGE_MS: "15000",
  LULL_LOG_LEVEL: "warn",
} as const satisfies Record<string, string>;

/** Numbers the run needs from the env above. */
export const chaosTimings = {
  dedupTtlMs: Number(chaosLullEnv.LULL_DEDUP_TTL_MS),
  // The buffer TTL the first version had with these windows; the outage is longer.
  bufferTtlMs: 4000,
  deliveryTimeoutMs: Number(chaosLullEnv.LULL_DELIVERY_TIMEOUT_MS),
  lockTtlMs: Number(chaosLullEnv.LULL_LOCK_TTL_MS),
  maxMessages: Number(chaosLullEnv.LULL_MAX_MESSAGES),
  windowMs: Number(chaosLullEnv.LULL_WINDOW_MS) + Number(chaosLullEnv.LULL_GRACE_MS),
};

/** The plan of a mode; `overrides` (from flags) win. */
export function chaosPlan(
  mode: ChaosMode,
  seed: number,
  overrides: Partial<ChaosPlan> = {},
): ChaosPlan {
  const common = {
    seed,
    idleShare: 0.15,
    redeliverShare: 0.1,
    processorFailShare: 0.3,
    processorHangShare: 0.1,
    processorPermanentShare: 0.02,
    multiShare: 0.1,
    telegramShare: 0.1,
    whatsappShare: 0.1,
    sweepIntervalMs: Number(chaosLullEnv.LULL_SWEEP_INTERVAL_MS),
    outageMs: 2 * chaosTimings.bufferTtlMs,
  };
  const byMode: Record<ChaosMode, ChaosPlan> = {
    short: {
      ...common,
      mode: "short",
      isolates: 3,
      senders: 12,
      conversations: 80,
      messages: 1200,
      loadMs: 75_000,
      isolateKills: 24,
      redisKills: 2,
      drainTimeoutMs: 45_000,
    },
    long: {
      ...common,
      mode: "long",
      isolates: 4,
      senders: 32,
      conversations: 520,
      messages: 10_400,
      loadMs: 240_000,
      isolateKills: 60,
      redisKills: 4,
      drainTimeoutMs: 120_000,
    },
  };
  return { ...byMode[mode], ...overrides };
}
