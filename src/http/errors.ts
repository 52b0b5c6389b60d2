/**
 * HTTP-layer errors, and {@link httpStatusOf}: the one map from an error a route let escape to
 * its HTTP status, used by the admin API (src/http/admin.ts) and meant for every route table.
 */
import { OutboxUnavailableError } from "../outbox/outbox.ts";
import {
  BatchNotFoundError,
  CircuitOpenError,
  ConfigError,
  ConversationBusyError,
  DeadLetterNotFoundError,
  LockLostError,
  LullError,
  RedisTimeoutError,
  RedisUnavailableError,
  ValidationError,
} from "../core/errors.ts";

/** The request body exceeded LULL_MAX_BODY_BYTES (detected while reading). */
export class PayloadTooLargeError extends LullError {
  constructor(readonly limitBytes: number) {
    super("payload_too_large", `request body exceeds ${limitBytes} bytes`);
  }
}

/** The request body could not be read (client went away, broken stream). */
export class BodyReadError extends LullError {
  constructor(cause: unknown) {
    super("bad_body", "request body could not be read", { cause });
  }
}

/** The request body did not arrive completely within LULL_BODY_TIMEOUT_MS (a slow client). */
export class BodyTimeoutError extends LullError {
  constructor(readonly timeoutMs: number) {
    super("request_timeout", `request body did not arrive within ${timeoutMs} ms`);
  }
}

/** The status (and any headers the client needs to act on it) of an error. */
export interface HttpErrorStatus {
  status: number;
  headers?: Record<string, string>;
}

/**
 * The HTTP status of a known error, or undefined for anything else (the caller logs it and
 * answers 500). The body is the caller's: `jsonError(status, err.code, message)`.
 */
export function httpStatusOf(err: unknown): HttpErrorStatus | undefined {
  if (err instanceof ValidationError || err instanceof BodyReadError) return { status: 400 };
  if (err instanceof DeadLetterNotFoundError) return { status: 404 };
  if (err instanceof BodyTimeoutError) return { status: 408, headers: { connection: "close" } };
  if (
    err instanceof ConversationBusyError || err instanceof LockLostError ||
    err instanceof BatchNotFoundError
  ) {
    return { status: 409 };
  }
  if (err instanceof LullError && err.code === "payload_too_large") return { status: 413 };
  // Nothing was done; the caller retries once the operator fixes the configuration.
  if (err instanceof ConfigError) return { status: 503, headers: { "retry-after": "60" } };
  if (
    err instanceof RedisUnavailableError || err instanceof RedisTimeoutError ||
    err instanceof CircuitOpenError || err instanceof OutboxUnavailableError
  ) {
    return { status: 503, headers: { "retry-after": "5" } };
  }
  return undefined;
}
