/**
 * lull's configuration: one zod schema for every environment variable in DESIGN.md, parsed once
 * at start-up. Every error names the variable and the rule it broke; cross-field invariants
 * (TTLs that could expire live data, windows that contradict each other) are rejected here so a
 * misconfigured deployment never starts.
 *
 * Why one long file: the schema, the typed {@link Config} and the invariants between its fields
 * must change together (a new variable touches all three), so they stay on one page.
 */
import { redisUrlProblem } from "./redis-url.ts";
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import type { Provider } from "./types.ts";

/** Raw environment, as `Deno.env.toObject()` or `process.env` give it. */
export type Env = Record<string, string | undefined>;

const emptyToUndefined = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);

const optionalString = z.preprocess(emptyToUndefined, z.string().optional());

const ms = (def: number, min = 1) =>
  z.preprocess(
    emptyToUndefined,
    z.coerce.number({ error: "must be a number of milliseconds" })
      .int("must be a whole number of milliseconds")
      .min(min, `must be at least ${min} ms`)
      .default(def),
  );

const count = (def: number, min: number, max: number) =>
  z.preprocess(
    emptyToUndefined,
    z.coerce.number({ error: "must be a whole number" })
      .int("must be a whole number")
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`)
      .default(def),
  );

/** Comma list of secrets; the first signs, any verifies (rotation). */
const secretList = z.preprocess(
  emptyToUndefined,
  z.string().optional().transform((v) =>
    v === undefined ? [] : v.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
  ),
);

const url = (schemes: string[]) =>
  z.preprocess(
    emptyToUndefined,
    z.string().optional().refine((v) => {
      if (v === undefined) return true;
      try {
        return schemes.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    }, `must be a URL starting with ${schemes.map((s) => s + "//").join(" or ")}`),
  );

const bool = (def: boolean) =>
  z.preprocess(
    emptyToUndefined,
    z.enum(["true", "false", "1", "0", "yes", "no"], { error: "must be true or false" })
      .optional()
      .transform((v) => (v === undefined ? def : v === "true" || v === "1" || v === "yes")),
  );

/** One Telegram bot lull serves: its name (in the route and the key) and its webhook secret. */
export interface TelegramBot {
  /** `[A-Za-z0-9_-]{1,64}`; `default` when TELEGRAM_WEBHOOK_SECRET is a single secret. */
  name: string;
  /** The `secret_token` given to setWebhook (Telegram allows `A-Za-z0-9_-`, 1-256). */
  secret: string;
}

/** The bot name a plain (unnamed) TELEGRAM_WEBHOOK_SECRET serves. */
export const DEFAULT_TELEGRAM_BOT = "default";

const TELEGRAM_BOT_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const TELEGRAM_SECRET = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * TELEGRAM_WEBHOOK_SECRET: one secret (the bot `default`, served at /lull/webhooks/telegram), or
 * `name=secret,name=secret` (each bot at /lull/webhooks/telegram/<name>). `=` and `,` cannot
 * occur in a Telegram secret_token, so the two forms never collide.
 */
const telegramBots = z.preprocess(
  emptyToUndefined,
  z.string().optional().transform((v, ctx): TelegramBot[] => {
    if (v === undefined) return [];
    const entries = v.split(",").map((e) => e.trim()).filter((e) => e.length > 0);
    const bots: TelegramBot[] = entries.length === 1 && !entries[0]!.includes("=")
      ? [{ name: DEFAULT_TELEGRAM_BOT, secret: entries[0]! }]
      : entries.map((e) => {
        const at = e.indexOf("=");
        return at < 0
          ? { name: "", secret: e }
          : { name: e.slice(0, at).trim(), secret: e.slice(at + 1).trim() };
      });
    const seen = new Set<string>();
    for (const bot of bots) {
      if (!TELEGRAM_BOT_NAME.test(bot.name)) {
        ctx.addIssue({
          code: "custom",
          message: "must be one secret or a list name=secret,... with bot names of 1-64 " +
            "letters, digits, _ or -",
        });
        return z.NEVER;
      }
      if (!TELEGRAM_SECRET.test(bot.secret)) {
        ctx.addIssue({
          code: "custom",
          message: `secret of bot '${bot.name}' must be 1-256 of A-Z a-z 0-9 _ - (Telegram's rule)`,
        });
        return z.NEVER;
      }
      if (seen.has(bot.name)) {
        ctx.addIssue({ code: "custom", message: `names bot '${bot.name}' twice` });
        return z.NEVER;
      }
      seen.add(bot.name);
    }
    return bots;
  }),
);

/** The environment schema, keyed by variable name exactly as users set them. */
export const envSchema = z.object({
  LULL_REDIS_URL: z.preprocess(
    emptyToUndefined,
    z.string().optional().superRefine((v, ctx) => {
      const problem = v === undefined ? null : redisUrlProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  ),
  /** Postgres for the durable outbox; defaults to SUPABASE_DB_URL. */
  LULL_DATABASE_URL: url(["postgres:", "postgresql:"]),
  /** Set by the Supabase platform for every function. */
  SUPABASE_DB_URL: url(["postgres:", "postgresql:"]),
  UPSTASH_REDIS_REST_URL: url(["http:", "https:"]),
  UPSTASH_REDIS_REST_TOKEN: optionalString,
  LULL_KEY_PREFIX: z.preprocess(
    emptyToUndefined,
    z.string().regex(
      /^[A-Za-z0-9_.:-]{1,64}$/,
      "must be 1-64 characters of letters, digits, _ . : - (no braces: they are hash tags)",
    ).default("lull"),
  ),
  LULL_PARTITIONS: count(16, 1, 1024),
  LULL_WINDOW_MS: ms(8000),
  LULL_MAX_WAIT_MS: ms(30000),
  LULL_MAX_MESSAGES: count(50, 1, 10000),
  LULL_MAX_BYTES: count(65536, 64, 16 * 1024 * 1024),
  LULL_GRACE_MS: ms(2000, 0),
  /** Removed in 0.2 (live buffers never expire); set, it is refused so nobody relies on it. */
  LULL_BUFFER_TTL_MS: optionalString,
  /** Unused since 0.3: the append that opens a burst arms its timer (no marker key). */
  LULL_TIMER_TTL_MS: ms(30000),
  LULL_PROCESSED_TTL_MS: ms(300000),
  LULL_LOCK_TTL_MS: ms(30000, 100),
  LULL_DEDUP_TTL_MS: ms(86400000),
  LULL_PROCESSOR_URL: url(["http:", "https:"]),
  LULL_PROCESSOR_FUNCTION: z.preprocess(
    emptyToUndefined,
    z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "must be a Supabase function name").optional(),
  ),
  LULL_PROCESSOR_SECRET: secretList,
  LULL_DELIVERY_TIMEOUT_MS: ms(10000, 10),
  LULL_RETRY_BASE_MS: ms(1000),
  LULL_RETRY_MAX_MS: ms(300000),
  LULL_RETRY_MAX_ATTEMPTS: count(20, 1, 1000),
  LULL_RETRY_MAX_AGE_MS: ms(86400000),
  LULL_INGEST_TOKEN: secretList,
  LULL_CRON_SECRET: optionalString,
  LULL_ADMIN_TOKEN: optionalString,
  WHATSAPP_APP_SECRET: optionalString,
  WHATSAPP_VERIFY_TOKEN: optionalString,
  TELEGRAM_WEBHOOK_SECRET: telegramBots,
  TELEGRAM_FORUM_TOPICS: bool(true),
  TWILIO_AUTH_TOKEN: optionalString,
  LULL_PUBLIC_URL: url(["http:", "https:"]),
  LULL_MAX_BODY_BYTES: count(262144, 1024, 64 * 1024 * 1024),
  LULL_BODY_TIMEOUT_MS: ms(10000, 100),
  LULL_MAX_MESSAGES_PER_MINUTE: z.preprocess(
    emptyToUndefined,
    z.coerce.number({ error: "must be a whole number of messages" }).int("must be a whole number")
      .min(1, "must be at least 1 (leave it unset for no quota)").optional(),
  ),
  LULL_PROVIDER_QUOTAS: z.preprocess(
    emptyToUndefined,
    z.string().optional().transform((v, ctx) => {
      const out: Partial<Record<"generic" | "whatsapp" | "telegram" | "twilio", number>> = {};
      if (v === undefined) return out;
      for (const part of v.split(",").map((p) => p.trim()).filter((p) => p.length > 0)) {
        const m = part.match(/^(generic|whatsapp|telegram|twilio)=([1-9][0-9]*)$/);
        if (!m) {
          ctx.addIssue({
            code: "custom",
            message: `must be provider=messages per minute, comma separated ` +
              `(e.g. whatsapp=600,telegram=300); '${part}' is not`,
          });
          return out;
        }
        out[m[1] as keyof typeof out] = Number(m[2]);
      }
      return out;
    }),
  ),
  LULL_DEFAULT_COUNTRY_CODE: z.preprocess(
    emptyToUndefined,
    z.string().regex(/^[1-9][0-9]{0,3}$/, "must be 1-4 digits without + (e.g. 966)").default("966"),
  ),
  LULL_SWEEP_INTERVAL_MS: ms(5000, 100),
  LULL_LOG_LEVEL: z.preprocess(
    emptyToUndefined,
    z.enum(["debug", "info", "warn", "error"], { error: "must be debug, info, warn or error" })
      .default("info"),
  ),
  LULL_LOG_PII: bool(false),
  LULL_MESSAGE_EVENTS: bool(false),
  LULL_ALERT_WEBHOOK_URL: url(["http:", "https:"]),
  /** Set by the Supabase platform; needed only for LULL_PROCESSOR_FUNCTION. */
  SUPABASE_URL: url(["http:", "https:"]),
  SUPABASE_SERVICE_ROLE_KEY: optionalString,
});

/** How lull reaches Redis. `memory` is the embedded store (local only, said loudly). */
export type RedisTarget =
  | { kind: "tcp"; url: string }
  | { kind: "upstash"; url: string; token: string }
  | { kind: "none" };

/** Parsed, validated configuration. Durations are milliseconds. */
export interface Config {
  redis: RedisTarget;
  /**
   * Postgres for the durable outbox (LULL_DATABASE_URL, else SUPABASE_DB_URL). Unset: no
   * outbox, and a Redis outage falls back to direct (degraded) delivery.
   */
  databaseUrl?: string;
  keyPrefix: string;
  partitions: number;
  /** Quiet window: due = lastAt + windowMs. @default 8000 */
  windowMs: number;
  /** Cap from the first message of a burst. @default 30000 */
  maxWaitMs: number;
  maxMessages: number;
  maxBytes: number;
  /** Grace-period double check after the due time. @default 2000 */
  graceMs: number;
  /** @deprecated Unused since 0.3 (the burst's first append arms its timer); still parsed. */
  timerTtlMs: number;
  processedTtlMs: number;
  lockTtlMs: number;
  dedupTtlMs: number;
  processorUrl?: string;
  processorFunction?: string;
  /** First signs; any verifies. */
  processorSecrets: string[];
  deliveryTimeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  retryMaxAttempts: number;
  retryMaxAgeMs: number;
  ingestTokens: string[];
  cronSecret?: string;
  adminToken?: string;
  whatsappAppSecret?: string;
  whatsappVerifyToken?: string;
  /** Telegram bots by name (TELEGRAM_WEBHOOK_SECRET); empty = the route is not exposed. */
  telegramBots: TelegramBot[];
  /** Forum topics (`message_thread_id`) are conversations of their own. @default true */
  telegramForumTopics: boolean;
  twilioAuthToken?: string;
  publicUrl?: string;
  maxBodyBytes: number;
  /** A request body must have arrived completely within this; else 408. @default 10000 */
  bodyTimeoutMs: number;
  /**
   * Messages per minute one conversation may send (fixed windows of store time); 0 = no quota.
   * @default 0
   */
  maxMessagesPerMinute: number;
  /**
   * Messages per minute per provider; enforced per partition as ceil(quota / LULL_PARTITIONS)
   * (one hash slot per script), so the total is about the quota. Empty = no quotas.
   */
  providerQuotas: Partial<Record<Provider, number>>;
  defaultCountryCode: string;
  sweepIntervalMs: number;
  logLevel: "debug" | "info" | "warn" | "error";
  logPii: boolean;
  /**
   * Also write an `appended`/`duplicate` event per message (one more Redis command each) for
   * `lull tail` and the dashboard's live view; batch events are always written. `lull dev`
   * turns it on. @default false
   */
  messageEvents: boolean;
  alertWebhookUrl?: string;
  supabaseUrl?: string;
  supabaseServiceRoleKey?: string;
}

/**
 * Margin of the lease over one delivery: the claim and the ack/fail round trips, each bounded
 * by the Redis call timeout (3 s TCP, 5 s REST), with renewal at half the lease on top.
 */
export const LEASE_MARGIN_MS = 5000;

/** The shortest dedup window that covers Twilio's redeliveries (they carry no timestamp). */
export const MIN_DEDUP_TTL_MS = 3_600_000;

/** One broken rule, naming the variable(s) involved. */
export interface ConfigIssue {
  variables: string[];
  message: string;
}

/**
 * Cross-field rules. Each returns the variables it names and why, so the start-up error tells
 * the operator exactly which knobs contradict each other.
 */
function invariants(c: Config & { bufferTtlRemoved?: string }): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const rule = (ok: boolean, variables: string[], message: string) => {
    if (!ok) out.push({ variables, message });
  };
  rule(
    c.maxWaitMs >= c.windowMs,
    ["LULL_MAX_WAIT_MS", "LULL_WINDOW_MS"],
    `LULL_MAX_WAIT_MS (${c.maxWaitMs}) must be >= LULL_WINDOW_MS (${c.windowMs})`,
  );
  rule(
    c.dedupTtlMs >= c.maxWaitMs + c.graceMs,
    ["LULL_DEDUP_TTL_MS", "LULL_MAX_WAIT_MS", "LULL_GRACE_MS"],
    `LULL_DEDUP_TTL_MS (${c.dedupTtlMs}) must be >= LULL_MAX_WAIT_MS + LULL_GRACE_MS ` +
      `(${c.maxWaitMs + c.graceMs}) or a redelivered webhook could be buffered twice in one burst`,
  );
  // The flusher aborts a delivery at LULL_DELIVERY_TIMEOUT_MS, but the lease must outlive it even
  // if every renewal fails: the claim's round trip comes first and the ack/fail after, each up
  // to a Redis call timeout (LEASE_MARGIN_MS). With less, a second flusher could reclaim the
  // batch while the first delivery is still running.
  rule(
    c.lockTtlMs >= c.deliveryTimeoutMs + LEASE_MARGIN_MS,
    ["LULL_LOCK_TTL_MS", "LULL_DELIVERY_TIMEOUT_MS"],
    `LULL_LOCK_TTL_MS (${c.lockTtlMs}) must be >= LULL_DELIVERY_TIMEOUT_MS + ${LEASE_MARGIN_MS} ` +
      `(${c.deliveryTimeoutMs + LEASE_MARGIN_MS}): the lease has to outlive one delivery plus ` +
      `the claim and ack round trips, or two deliveries of a conversation could overlap`,
  );
  // A batch can wait for its retries up to MAX_AGE; a redelivery of one of its messages within
  // that time must still be recognised, or it would be buffered (and delivered) again.
  rule(
    c.dedupTtlMs >= c.retryMaxAgeMs,
    ["LULL_DEDUP_TTL_MS", "LULL_RETRY_MAX_AGE_MS"],
    `LULL_DEDUP_TTL_MS (${c.dedupTtlMs}) must be >= LULL_RETRY_MAX_AGE_MS (${c.retryMaxAgeMs}): ` +
      `a message redelivered while its batch still retries would be buffered twice`,
  );
  // Meta and Telegram messages carry their own timestamp, and a signed webhook older than the
  // dedup window is refused as a replay, so any window is safe for them. Twilio's carry none:
  // its retries (connection overrides, a few within minutes) must fall inside the id memory.
  rule(
    !c.twilioAuthToken || c.dedupTtlMs >= MIN_DEDUP_TTL_MS,
    ["LULL_DEDUP_TTL_MS", "TWILIO_AUTH_TOKEN"],
    `LULL_DEDUP_TTL_MS (${c.dedupTtlMs}) must be >= ${MIN_DEDUP_TTL_MS} (1 hour) with Twilio: ` +
      `its webhooks carry no timestamp, so only the id memory recognises a redelivery`,
  );
  rule(
    c.graceMs < c.windowMs,
    ["LULL_GRACE_MS", "LULL_WINDOW_MS"],
    `LULL_GRACE_MS (${c.graceMs}) must be < LULL_WINDOW_MS (${c.windowMs})`,
  );
  rule(
    c.bufferTtlRemoved === undefined,
    ["LULL_BUFFER_TTL_MS"],
    "LULL_BUFFER_TTL_MS was removed: live buffers never expire (unset it)",
  );
  rule(
    c.retryMaxMs >= c.retryBaseMs,
    ["LULL_RETRY_MAX_MS", "LULL_RETRY_BASE_MS"],
    `LULL_RETRY_MAX_MS (${c.retryMaxMs}) must be >= LULL_RETRY_BASE_MS (${c.retryBaseMs})`,
  );
  rule(
    !(c.processorUrl && c.processorFunction),
    ["LULL_PROCESSOR_URL", "LULL_PROCESSOR_FUNCTION"],
    "set LULL_PROCESSOR_URL or LULL_PROCESSOR_FUNCTION, not both",
  );
  rule(
    !c.processorFunction || (!!c.supabaseUrl && !!c.supabaseServiceRoleKey),
    ["LULL_PROCESSOR_FUNCTION", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"],
    "LULL_PROCESSOR_FUNCTION needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY",
  );
  rule(
    !c.twilioAuthToken || !!c.publicUrl,
    ["TWILIO_AUTH_TOKEN", "LULL_PUBLIC_URL"],
    "TWILIO_AUTH_TOKEN needs LULL_PUBLIC_URL: Twilio signs the public URL it posts to",
  );
  return out;
}

/** Where batches go (reported by /lull/health; never the URL itself). */
export type ProcessorKind = "url" | "function" | "none";

/** Which processor destination the config names: LULL_PROCESSOR_URL, else the function. */
export function processorKind(
  config: Pick<Config, "processorUrl" | "processorFunction">,
): ProcessorKind {
  if (config.processorUrl) return "url";
  if (config.processorFunction) return "function";
  return "none";
}

/** True when a processor destination is configured. */
export function processorConfigured(
  config: Pick<Config, "processorUrl" | "processorFunction">,
): boolean {
  return processorKind(config) !== "none";
}

/**
 * Parses and validates the environment. Throws {@link ConfigError} listing every issue at once.
 */
export function parseConfig(env: Env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const variable = String(i.path[0] ?? "environment");
      return { variables: [variable], message: `${variable} ${i.message}` };
    });
    throw new ConfigError(issues);
  }
  const e = parsed.data;
  const issues: ConfigIssue[] = [];
  if (!!e.UPSTASH_REDIS_REST_URL !== !!e.UPSTASH_REDIS_REST_TOKEN) {
    issues.push({
      variables: ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"],
      message: "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together",
    });
  }
  const redis: RedisTarget = e.LULL_REDIS_URL
    ? { kind: "tcp", url: e.LULL_REDIS_URL }
    : e.UPSTASH_REDIS_REST_URL && e.UPSTASH_REDIS_REST_TOKEN
    ? { kind: "upstash", url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN }
    : { kind: "none" };
  const config: Config = {
    redis,
    databaseUrl: e.LULL_DATABASE_URL ?? e.SUPABASE_DB_URL,
    keyPrefix: e.LULL_KEY_PREFIX,
    partitions: e.LULL_PARTITIONS,
    windowMs: e.LULL_WINDOW_MS,
    maxWaitMs: e.LULL_MAX_WAIT_MS,
    maxMessages: e.LULL_MAX_MESSAGES,
    maxBytes: e.LULL_MAX_BYTES,
    graceMs: e.LULL_GRACE_MS,
    timerTtlMs: e.LULL_TIMER_TTL_MS,
    processedTtlMs: e.LULL_PROCESSED_TTL_MS,
    lockTtlMs: e.LULL_LOCK_TTL_MS,
    dedupTtlMs: e.LULL_DEDUP_TTL_MS,
    processorUrl: e.LULL_PROCESSOR_URL,
    processorFunction: e.LULL_PROCESSOR_FUNCTION,
    processorSecrets: e.LULL_PROCESSOR_SECRET,
    deliveryTimeoutMs: e.LULL_DELIVERY_TIMEOUT_MS,
    retryBaseMs: e.LULL_RETRY_BASE_MS,
    retryMaxMs: e.LULL_RETRY_MAX_MS,
    retryMaxAttempts: e.LULL_RETRY_MAX_ATTEMPTS,
    retryMaxAgeMs: e.LULL_RETRY_MAX_AGE_MS,
    ingestTokens: e.LULL_INGEST_TOKEN,
    cronSecret: e.LULL_CRON_SECRET,
    adminToken: e.LULL_ADMIN_TOKEN,
    whatsappAppSecret: e.WHATSAPP_APP_SECRET,
    whatsappVerifyToken: e.WHATSAPP_VERIFY_TOKEN,
    telegramBots: e.TELEGRAM_WEBHOOK_SECRET,
    telegramForumTopics: e.TELEGRAM_FORUM_TOPICS,
    twilioAuthToken: e.TWILIO_AUTH_TOKEN,
    publicUrl: e.LULL_PUBLIC_URL,
    maxBodyBytes: e.LULL_MAX_BODY_BYTES,
    bodyTimeoutMs: e.LULL_BODY_TIMEOUT_MS,
    maxMessagesPerMinute: e.LULL_MAX_MESSAGES_PER_MINUTE ?? 0,
    providerQuotas: e.LULL_PROVIDER_QUOTAS,
    defaultCountryCode: e.LULL_DEFAULT_COUNTRY_CODE,
    sweepIntervalMs: e.LULL_SWEEP_INTERVAL_MS,
    logLevel: e.LULL_LOG_LEVEL,
    logPii: e.LULL_LOG_PII,
    messageEvents: e.LULL_MESSAGE_EVENTS,
    alertWebhookUrl: e.LULL_ALERT_WEBHOOK_URL,
    supabaseUrl: e.SUPABASE_URL,
    supabaseServiceRoleKey: e.SUPABASE_SERVICE_ROLE_KEY,
  };
  issues.push(...invariants({ ...config, bufferTtlRemoved: e.LULL_BUFFER_TTL_MS }));
  if (issues.length > 0) throw new ConfigError(issues);
  return config;
}

/** The buffering knobs the stores need (a subset of {@link Config}). */
export type BufferSettings =
  & Pick<
    Config,
    | "keyPrefix"
    | "partitions"
    | "windowMs"
    | "maxWaitMs"
    | "maxMessages"
    | "maxBytes"
    | "graceMs"
    | "timerTtlMs"
    | "processedTtlMs"
    | "lockTtlMs"
    | "dedupTtlMs"
    | "retryMaxAttempts"
    | "retryMaxAgeMs"
    | "logPii"
  >
  & Partial<Pick<Config, "maxMessagesPerMinute" | "providerQuotas" | "messageEvents">>;
