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
export { hmacBase64, hmacHex, timingSafeEqual } from "../core/crypto.ts";
export { normalizePhone } from "./phone.ts";

/** Every adapter, keyed by provider name. */
export const providers: Record<Provider, ProviderAdapter> = { generic, whatsapp, telegram, twilio };
