/** Shared test scaffolding for the provider adapters: config, requests, fixtures. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Config, parseConfig } from "../../src/core/config.ts";
import type { ProviderRequest } from "../../src/providers/types.ts";

/** Secrets used across the provider tests. */
export const secrets = {
  whatsappAppSecret: "wa-app-secret-3f1c",
  whatsappVerifyToken: "wa-verify-token-77",
  telegramSecret: "tg-secret_token-A1",
  twilioAuthToken: "twilio-auth-token-9b2e",
  publicUrl: "https://xyz.supabase.co/functions/v1/lull",
  ingestTokens: ["ingest-new-2", "ingest-old-1"],
};

/** A config with every provider secret set (overridable per test). */
export function configWith(env: Record<string, string | undefined> = {}): Config {
  return parseConfig({
    WHATSAPP_APP_SECRET: secrets.whatsappAppSecret,
    WHATSAPP_VERIFY_TOKEN: secrets.whatsappVerifyToken,
    TELEGRAM_WEBHOOK_SECRET: secrets.telegramSecret,
    TWILIO_AUTH_TOKEN: secrets.twilioAuthToken,
    LULL_PUBLIC_URL: secrets.publicUrl,
    LULL_INGEST_TOKEN: secrets.ingestTokens.join(","),
    ...env,
  });
}

/** A config with no provider secret at all. */
export const bareConfig = (): Config => parseConfig({});

/**
 * "Now" for adapter tests: shortly after the fixtures' own timestamps (2025-11-22), so the
 * replay check (older than LULL_DEDUP_TTL_MS) passes unless a test moves the clock.
 */
export const FIXTURE_NOW_MS = Date.parse("2025-11-22T12:00:00Z");

/** Builds a ProviderRequest. */
export function request(
  body: string | Uint8Array,
  options: {
    method?: string;
    url?: string;
    headers?: Record<string, string>;
    nowMs?: number;
    account?: string;
  } = {},
): ProviderRequest {
  return {
    method: options.method ?? "POST",
    url: new URL(options.url ?? "http://127.0.0.1:54321/functions/v1/lull/webhooks/x"),
    headers: new Headers(options.headers ?? {}),
    rawBody: typeof body === "string" ? new TextEncoder().encode(body) : body,
    nowMs: options.nowMs ?? FIXTURE_NOW_MS,
    ...(options.account !== undefined ? { account: options.account } : {}),
  };
}

/** Raw text of a fixture under test/fixtures/providers. */
export function fixture(path: string): string {
  return readFileSync(
    fileURLToPath(new URL(`../fixtures/providers/${path}`, import.meta.url)),
    "utf8",
  );
}
