/**
 * The contract every webhook adapter implements. The HTTP layer reads the raw body once (under
 * LULL_MAX_BODY_BYTES), then asks the adapter, in order: is the route exposed (`enabled`), is
 * the caller who it claims to be (`authenticate`, over the raw bytes), and what did it send
 * (`parse`). Adapters use Web APIs only, so the same code runs on Deno and Node.
 */
import type { Config } from "../core/config.ts";
import type { InboundMessage, Provider } from "../core/types.ts";
import type { Issue } from "../core/errors.ts";

/** The parts of an HTTP request an adapter may look at. `rawBody` is exactly what was sent. */
export interface ProviderRequest {
  method: string;
  url: URL;
  headers: Headers;
  rawBody: Uint8Array;
  /**
   * The path segment after the provider's route, still percent-decoded: the bot name of
   * `/lull/webhooks/telegram/<bot>`. Undefined on the bare route.
   */
  account?: string;
  /** When the request arrived (isolate clock, ms): the replay check compares against it. */
  nowMs: number;
}

/**
 * A message of a multi-message payload that cannot be buffered. `invalid`: its fields break the
 * schema (the issues say which, with paths from the payload's root). `stale`: it is signed, but
 * its own timestamp is older than LULL_DEDUP_TTL_MS, so it could be a replay lull no longer
 * remembers (see the README, "Replays").
 */
export interface RejectedMessage {
  reason: "invalid" | "stale";
  /** The provider message id, when it could be read. */
  id?: string;
  issues: Issue[];
}

/**
 * The identifiers a provider sent for the person writing, under the same names for every
 * provider. Delivered as `meta.sender`; the message's `sender` string is the one of them the
 * conversation key uses.
 */
export interface SenderIdentity {
  /** E.164 digits without `+`. */
  phone?: string;
  /** The provider's user id: WhatsApp business-scoped user id (BSUID), Telegram user id. */
  userId?: string;
  /** WhatsApp parent BSUID (managed businesses), when Meta sends one. */
  parentUserId?: string;
  username?: string;
  /** Profile or display name. */
  name?: string;
}

/** What a webhook delivery came to. */
export type ProviderParse =
  /**
   * Messages to buffer, in payload order; `ignored` counts statuses and other non-messages;
   * `rejected` lists the messages that cannot be buffered (the HTTP layer decides the status).
   */
  | { kind: "messages"; messages: InboundMessage[]; ignored: number; rejected: RejectedMessage[] }
  /** The adapter answers by itself (the WhatsApp GET handshake). */
  | { kind: "response"; response: Response };

/** One provider's webhook: exposure, caller verification, payload normalisation. */
export interface ProviderAdapter {
  name: Provider;
  /**
   * False when the secret the route needs is unset: the route then answers 404 (not exposed),
   * never "open". `method` narrows the question when a provider guards its methods with
   * different secrets (WhatsApp: GET needs the verify token, POST the app secret); without it
   * the answer is "is any method of this route exposed". `account` is
   * {@link ProviderRequest.account}: a route naming an account that is not configured is not
   * exposed either.
   */
  enabled(config: Config, method?: string, account?: string): boolean;
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
