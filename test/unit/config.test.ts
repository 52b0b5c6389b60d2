import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
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
      bufferTtlMs: 60000,
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

  it("rejects TTLs that could expire live data, naming the variables", () => {
    const err = issuesOf({ LULL_BUFFER_TTL_MS: "20000" });
    const issue = err.issues.find((i) => i.variables.includes("LULL_BUFFER_TTL_MS"));
    expect(issue?.message).toMatch(/could expire live data/);
    expect(issue?.variables).toEqual(
      expect.arrayContaining(["LULL_MAX_WAIT_MS", "LULL_GRACE_MS", "LULL_SWEEP_INTERVAL_MS"]),
    );
    expect(err.message).toContain("LULL_BUFFER_TTL_MS");
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

  it("rejects other contradictions", () => {
    const err = issuesOf({
      LULL_DEDUP_TTL_MS: "1000",
      LULL_TIMER_TTL_MS: "100",
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
      "LULL_TIMER_TTL_MS",
      "LULL_RETRY_MAX_MS",
      "LULL_PROCESSOR_URL",
      "LULL_PROCESSOR_FUNCTION",
      "TWILIO_AUTH_TOKEN",
      "UPSTASH_REDIS_REST_URL",
    ]));
  });

  it("accepts a small-window configuration that satisfies every invariant", () => {
    const c = parseConfig({
      LULL_WINDOW_MS: "300",
      LULL_GRACE_MS: "100",
      LULL_MAX_WAIT_MS: "2000",
      LULL_SWEEP_INTERVAL_MS: "500",
      LULL_BUFFER_TTL_MS: "5000",
      LULL_TIMER_TTL_MS: "2000",
      LULL_LOCK_TTL_MS: "3000",
      LULL_DELIVERY_TIMEOUT_MS: "2000",
    });
    expect(c.windowMs).toBe(300);
  });
});
