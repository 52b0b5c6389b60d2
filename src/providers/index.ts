/**
 * The provider adapters by name, for the HTTP routes: `/lull/messages` uses `generic`,
 * `/lull/webhooks/<name>` the named one (`/lull/webhooks/telegram/<bot>` for a named bot).
 */
import type { Provider } from "../core/types.ts";
import { generic } from "./generic.ts";
import type { ProviderAdapter } from "./types.ts";
import { telegram } from "./telegram.ts";
import { twilio } from "./twilio.ts";
import { whatsapp } from "./whatsapp.ts";

export type { ProviderAdapter, ProviderParse, ProviderRequest } from "./types.ts";
export { hmacBase64, hmacHex, timingSafeEqual } from "./crypto.ts";
export { normalizePhone } from "./phone.ts";

/** Every adapter, keyed by provider name. */
export const providers: Record<Provider, ProviderAdapter> = { generic, whatsapp, telegram, twilio };

/** Providers served under `/lull/webhooks/<name>` (generic has its own route, `/lull/messages`). */
export const webhookProviders = ["whatsapp", "telegram", "twilio"] as const;

/** The adapter for a `/webhooks/<name>` path segment, or undefined for an unknown name. */
export function webhookProvider(name: string): ProviderAdapter | undefined {
  return (webhookProviders as readonly string[]).includes(name)
    ? providers[name as Provider]
    : undefined;
}
