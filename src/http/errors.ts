/**
 * HTTP-layer errors: each maps to one status in {@link httpStatusOf}.
 */
import { LullError } from "../core/errors.ts";

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
