import { describe, expect, it } from "vitest";
import { LEASE_MARGIN_MS, parseConfig } from "../../src/core/config.ts";
import { ConfigError } from "../../src/core/errors.ts";

function issuesOf(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("parseConfig", () => {
  it("applies DESIGN.md defaults to an empty environment", () => {
    const c = parseConfig({});
    expect(c).toMatchObject({
      redis: { kind: "none" },
      keyPrefix: "lull",
      partitions: 16,
      windowMs: 8000,
      maxWaitMs: 30000,
      maxMessages: 50,
      maxBytes: 65536,
      graceMs: 2000,
      timerTtlMs: 30000,
      processedTtlMs: 300000,
      lockTtlMs: 30000,
      dedupTtlMs: 86400000,
      deliveryTimeoutMs: 10000,
      retryBaseMs: 1000,
      retryMaxMs: 300000,
      retryMaxAttempts: 20,
      retryMaxAgeMs: 86400000,
      maxBodyBytes: 262144,
      defaultCountryCode: "966",
      sweepIntervalMs: 5000,
      logLevel: "info",
      logPii: false,
      processorSecrets: [],
      ingestTokens: [],
    });
  });

  it("treats empty strings as unset", () => {
    expect(parseConfig({ LULL_WINDOW_MS: "", LULL_PROCESSOR_URL: " " }).windowMs).toBe(8000);
  });

  it("prefers LULL_REDIS_URL over Upstash", () => {
    const c = parseConfig({
      LULL_REDIS_URL: "redis://127.0.0.1:7000",
      UPSTASH_REDIS_REST_URL: "https://x.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "t",
    });
    expect(c.redis).toEqual({ kind: "tcp", url: "redis://127.0.0.1:7000" });
  });

  it("uses Upstash when both REST variables are set", () => {
    const c = parseConfig({
      UPSTASH_REDIS_REST_URL: "https://x.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "t",
    });
    expect(c.redis).toEqual({ kind: "upstash", url: "https://x.upstash.io", token: "t" });
  });

  it("splits comma lists of secrets for rotation", () => {
    const c = parseConfig({ LULL_PROCESSOR_SECRET: "new, old ,", LULL_INGEST_TOKEN: "a,b" });
    expect(c.processorSecrets).toEqual(["new", "old"]);
    expect(c.ingestTokens).toEqual(["a", "b"]);
  });

  it("names the variable of every malformed value", () => {
    const err = issuesOf({
      LULL_WINDOW_MS: "soon",
      LULL_PARTITIONS: "0",
      LULL_REDIS_URL: "http://nope",
      LULL_LOG_LEVEL: "loud",
      LULL_KEY_PREFIX: "a{b}",
      LULL_LOG_PII: "maybe",
    });
    const named = err.issues.flatMap((i) => i.variables);
    expect(named).toEqual(expect.arrayContaining([
      "LULL_WINDOW_MS",
      "LULL_PARTITIONS",
      "LULL_REDIS_URL",
      "LULL_LOG_LEVEL",
      "LULL_KEY_PREFIX",
      "LULL_LOG_PII",
    ]));
    for (const issue of err.issues) expect(issue.message).toContain(issue.variables[0]);
  });

  it("refuses LULL_BUFFER_TTL_MS: live buffers never expire", () => {
    const err = issuesOf({ LULL_BUFFER_TTL_MS: "20000" });
    const issue = err.issues.find((i) => i.variables.includes("LULL_BUFFER_TTL_MS"));
    expect(issue?.message).toMatch(/was removed: live buffers never expire/);
    expect(err.message).toContain("LULL_BUFFER_TTL_MS");
  });

  it("rejects a dedup window shorter than the retry max age", () => {
    const err = issuesOf({ LULL_DEDUP_TTL_MS: "3600000", LULL_RETRY_MAX_AGE_MS: "7200000" });
    const issue = err.issues.find((i) => i.variables.includes("LULL_RETRY_MAX_AGE_MS"));
    expect(issue?.variables).toEqual(["LULL_DEDUP_TTL_MS", "LULL_RETRY_MAX_AGE_MS"]);
    expect(issue?.message).toMatch(/buffered twice/);
  });

  it("with Twilio (no timestamps), the dedup window must cover its redeliveries", () => {
    const env = {
      LULL_DEDUP_TTL_MS: "600000",
      LULL_RETRY_MAX_AGE_MS: "600000",
      TWILIO_AUTH_TOKEN: "tok",
      LULL_PUBLIC_URL: "https://x.example",
    };
    const err = issuesOf(env);
    expect(err.issues.map((i) => i.variables)).toContainEqual([
      "LULL_DEDUP_TTL_MS",
      "TWILIO_AUTH_TOKEN",
    ]);
    const { TWILIO_AUTH_TOKEN: _, ...withoutTwilio } = env;
    expect(parseConfig(withoutTwilio).dedupTtlMs).toBe(600000);
  });

  it("parses quotas, and names the variable when they are malformed", () => {
    const c = parseConfig({
      LULL_MAX_MESSAGES_PER_MINUTE: "30",
      LULL_PROVIDER_QUOTAS: "whatsapp=600, telegram=300",
    });
    expect(c.maxMessagesPerMinute).toBe(30);
    expect(c.providerQuotas).toEqual({ whatsapp: 600, telegram: 300 });
    expect(parseConfig({}).maxMessagesPerMinute).toBe(0);
    const err = issuesOf({
      LULL_PROVIDER_QUOTAS: "whatsapp=lots",
      LULL_MAX_MESSAGES_PER_MINUTE: "0",
    });
    expect(err.issues.map((i) => i.variables[0])).toEqual(
      expect.arrayContaining(["LULL_PROVIDER_QUOTAS", "LULL_MAX_MESSAGES_PER_MINUTE"]),
    );
  });

  it("rejects a grace period as long as the window", () => {
    const err = issuesOf({ LULL_GRACE_MS: "8000", LULL_WINDOW_MS: "8000" });
    expect(err.issues.map((i) => i.variables)).toContainEqual(["LULL_GRACE_MS", "LULL_WINDOW_MS"]);
  });

  it("rejects a max wait shorter than the window", () => {
    const err = issuesOf({ LULL_WINDOW_MS: "9000", LULL_MAX_WAIT_MS: "8000" });
    expect(err.issues.map((i) => i.variables[0])).toContain("LULL_MAX_WAIT_MS");
  });

  it("rejects a lock lease that cannot cover one delivery", () => {
    const err = issuesOf({ LULL_LOCK_TTL_MS: "5000", LULL_DELIVERY_TIMEOUT_MS: "10000" });
    expect(err.issues.find((i) => i.variables.includes("LULL_LOCK_TTL_MS"))?.variables).toContain(
      "LULL_DELIVERY_TIMEOUT_MS",
    );
  });

  it("rejects a lease only a hair longer than the delivery timeout (a real margin is needed)", () => {
    const err = issuesOf({ LULL_LOCK_TTL_MS: "10001", LULL_DELIVERY_TIMEOUT_MS: "10000" });
    const issue = err.issues.find((i) => i.variables.includes("LULL_LOCK_TTL_MS"));
    expect(issue?.message).toContain(`LULL_DELIVERY_TIMEOUT_MS + ${LEASE_MARGIN_MS}`);
    expect(
      parseConfig({ LULL_LOCK_TTL_MS: String(10000 + LEASE_MARGIN_MS) }).lockTtlMs,
    ).toBe(15000);
  });

  it("rejects other contradictions", () => {
    const err = issuesOf({
      LULL_DEDUP_TTL_MS: "1000",
      LULL_RETRY_BASE_MS: "5000",
      LULL_RETRY_MAX_MS: "1000",
      LULL_PROCESSOR_URL: "https://p.example/x",
      LULL_PROCESSOR_FUNCTION: "proc",
      TWILIO_AUTH_TOKEN: "tok",
      UPSTASH_REDIS_REST_URL: "https://x.upstash.io",
    });
    const first = err.issues.map((i) => i.variables[0]);
    expect(first).toEqual(expect.arrayContaining([
      "LULL_DEDUP_TTL_MS",
      "LULL_RETRY_MAX_MS",
      "LULL_PROCESSOR_URL",
      "LULL_PROCESSOR_FUNCTION",
      "TWILIO_AUTH_TOKEN",
      "UPSTASH_REDIS_REST_URL",
    ]));
  });

  it("still parses LULL_TIMER_TTL_MS (unused since 0.3) whatever the window", () => {
    expect(parseConfig({ LULL_TIMER_TTL_MS: "100", LULL_WINDOW_MS: "8000" }).timerTtlMs).toBe(100);
  });

  it("LULL_MESSAGE_EVENTS is off unless set", () => {
    expect(parseConfig({}).messageEvents).toBe(false);
    expect(parseConfig({ LULL_MESSAGE_EVENTS: "true" }).messageEvents).toBe(true);
  });

  it("accepts a small-window configuration that satisfies every invariant", () => {
    const c = parseConfig({
      LULL_WINDOW_MS: "300",
      LULL_GRACE_MS: "100",
      LULL_MAX_WAIT_MS: "2000",
      LULL_SWEEP_INTERVAL_MS: "500",
      LULL_TIMER_TTL_MS: "2000",
      LULL_LOCK_TTL_MS: "7000",
      LULL_DELIVERY_TIMEOUT_MS: "2000",
    });
    expect(c.windowMs).toBe(300);
  });
});
