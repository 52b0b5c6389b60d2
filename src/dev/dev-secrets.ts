/**
 * Local secrets for one `lull dev` run. Fresh per run so nothing local is ever mistaken for a
 * production secret; a value the user already set in the environment is kept instead.
 */
import { randomBytes } from "node:crypto";
import type { Env } from "../core/config.ts";
import type { DevSecrets } from "./dev-state.ts";

const fresh = (label: string) => `dev-${label}-${randomBytes(18).toString("base64url")}`;

/** Picks the first value of a comma-list env var (rotation lists sign with the first). */
const firstOf = (value: string | undefined) => value?.split(",")[0]?.trim() || undefined;

/** Secrets for this run: the user's where set, generated otherwise. */
export function devSecrets(env: Env): DevSecrets {
  return {
    ingestToken: firstOf(env.LULL_INGEST_TOKEN) ?? fresh("ingest"),
    cronSecret: env.LULL_CRON_SECRET?.trim() || fresh("cron"),
    adminToken: env.LULL_ADMIN_TOKEN?.trim() || fresh("admin"),
    processorSecret: firstOf(env.LULL_PROCESSOR_SECRET) ?? fresh("processor"),
    whatsappAppSecret: env.WHATSAPP_APP_SECRET?.trim() || fresh("whatsapp"),
    whatsappVerifyToken: env.WHATSAPP_VERIFY_TOKEN?.trim() || fresh("verify"),
    telegramWebhookSecret: env.TELEGRAM_WEBHOOK_SECRET?.trim() || fresh("telegram"),
    twilioAuthToken: env.TWILIO_AUTH_TOKEN?.trim() || fresh("twilio"),
  };
}

/** The environment variables that carry {@link DevSecrets}, keeping user rotation lists. */
export function secretEnv(env: Env, secrets: DevSecrets): Record<string, string> {
  return {
    LULL_INGEST_TOKEN: env.LULL_INGEST_TOKEN?.trim() || secrets.ingestToken,
    LULL_CRON_SECRET: secrets.cronSecret,
    LULL_ADMIN_TOKEN: secrets.adminToken,
    LULL_PROCESSOR_SECRET: env.LULL_PROCESSOR_SECRET?.trim() || secrets.processorSecret,
    WHATSAPP_APP_SECRET: secrets.whatsappAppSecret,
    WHATSAPP_VERIFY_TOKEN: secrets.whatsappVerifyToken,
    TELEGRAM_WEBHOOK_SECRET: secrets.telegramWebhookSecret,
    TWILIO_AUTH_TOKEN: secrets.twilioAuthToken,
  };
}
