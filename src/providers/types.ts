/**
 * The contract every webhook adapter implements. The HTTP layer reads the raw body once (under
 * LULL_MAX_BODY_BYTES), then asks the adapter, in order: is the route exposed (`enabled`), is
 * the caller who it claims to be (`authenticate`, over the raw bytes), and what did it send
 * (`parse`). Adapters use Web APIs only, so the same code runs on Deno and Node.
 */
import type { Config } from "../core/config.ts";
import type { InboundMessage, Provider } from "../core/types.ts";

/** The parts of an HTTP request an adapter may look at. `rawBody` is exactly what was sent. */
export interface ProviderRequest {
  method: string;
  url: URL;
  headers: Headers;
  rawBody: Uint8Array;
}

/** What a webhook delivery came to. */
export type ProviderParse =
  /** Messages to buffer, in payload order; `ignored` counts statuses and other non-messages. */
  | { kind: "messages"; messages: InboundMessage[]; ignored: number }
  /** The adapter answers by itself (the WhatsApp GET handshake). */
  | { kind: "response"; response: Response };

/** One provider's webhook: exposure, caller verification, payload normalisation. */
export interface ProviderAdapter {
  name: Provider;
  /**
   * False when the secret the route needs is unset: the route then answers 404 (not exposed),
   * never "open". `method` narrows the question when a provider guards its methods with
   * different secrets (WhatsApp: GET needs the verify token, POST the app secret); without it
   * the answer is "is any method of this route exposed".
   */
  enabled(config: Config, method?: string): boolean;
  /**
   * Verifies the caller (signature, secret header, bearer token) over the RAW body, with
   * constant-time compares. False when the secret is unset, so a misconfigured route is closed.
   */
  authenticate(req: ProviderRequest, config: Config): Promise<boolean>;
  /**
   * Parses and normalises the payload. Throws `ValidationError` (with zod's issues trimmed to
   * path + message) on bad input, and nothing else, whatever the bytes.
   */
  parse(req: ProviderRequest, config: Config): Promise<ProviderParse> | ProviderParse;
}
