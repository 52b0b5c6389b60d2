/**
 * Upstash REST adapter for {@link RedisClient}: the real `@upstash/redis` client, configured so
 * that script replies come back raw and every call is bounded in time.
 *
 * Runtime-agnostic: it only uses `fetch` (through the Upstash client) and `AbortSignal`, so the
 * same module runs on Node and in Supabase Edge Functions (Deno, `npm:@upstash/redis`).
 */
import { Redis } from "@upstash/redis";
import { type RedisCallDetails, RedisTimeoutError, RedisUnavailableError } from "../core/errors.ts";
import type { RedisClient } from "./redis-client.ts";
import { NOT_RUN_REPLIES } from "./refusals.ts";

/** Options for {@link createUpstashClient}. */
export interface UpstashClientOptions {
  /** REST URL (`UPSTASH_REDIS_REST_URL`), e.g. `https://eu1-xyz.upstash.io`. */
  url: string;
  /** REST token (`UPSTASH_REDIS_REST_TOKEN`). */
  token: string;
  /**
   * Upper bound on one call: the request is aborted at this point and the call throws
   * {@link RedisTimeoutError}. There are no client-level retries (see redis-client.ts, "Replay
   * policy"): a request that may have reached Redis is never sent again.
   * @default 5000
   */
  timeoutMs?: number;
  /**
   * Ask the server to base64-encode replies (the Upstash default; keeps non-UTF-8 values from
   * breaking the JSON body). Turn off only for benchmarks.
   * @default true
   */
  base64?: boolean;
  /**
   * Send each script's `#!lua flags=allow-key-locking` variant (Upstash docs, "Key-Based
   * Locking"): Upstash then locks only the script's KEYS instead of the whole database, so
   * scripts on disjoint conversations run in parallel. Every lull script that declares keys
   * touches only those; the few that do not (SCAN, INFO) are always sent plain. Turn off only
   * for an Upstash-compatible server that rejects the flag.
   * @default true
   */
  keyLocking?: boolean;
}

/**
 * Redis error replies start with an upper-case code (`ERR`, `WRONGTYPE`, `NOSCRIPT`, ...).
 * Anything else in an Upstash error body (`Unauthorized`, a proxy's text) is not a Redis reply.
 */
const REDIS_REPLY_ERROR = /^[A-Z][A-Z_-]*(\s|$)/;

/**
 * Answers meaning "refused before running anything": safe to call unavailable. Upstash's own
 * refusals are auth failures and its plan limits (`ERR max requests limit exceeded`, ...).
 */
const NOT_RUN_CODES = new RegExp(
  `^(${[...NOT_RUN_REPLIES, "NOAUTH", "WRONGPASS"].join("|")})\\b|^ERR max .*limit exceeded|` +
    "^(Unauthorized|Forbidden)\\b|invalid (api )?token",
  "i",
);

/** Network errors raised before a request could reach the server (nothing can have committed). */
const NOT_SENT =
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|refused|dns error|getaddrinfo|Name or service not known/i;

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const inner = cause instanceof Error
      ? ` (${(cause as { code?: string }).code ?? cause.name}: ${cause.message})`
      : cause && typeof cause === "object" && "code" in cause
      ? ` (${String((cause as { code: unknown }).code)})`
      : "";
    return `${err.name}: ${err.message}${inner}`;
  }
  return String(err);
}

/**
 * The Upstash client appends `, command was: [...]` to HTTP error bodies. That echoes every
 * argument (message text: PII) into logs, so it is cut off; the server's message is kept.
 */
function serverMessage(message: string): string {
  const cut = message.indexOf(", command was: ");
  const text = cut === -1 ? message : message.slice(0, cut);
  // Auto-pipelined calls prefix this; harmless to strip if a caller ever turns that on.
  return text.startsWith("Command failed: ") ? text.slice("Command failed: ".length) : text;
}

/**
 * Creates a {@link RedisClient} over Upstash REST.
 *
 * - Replies are raw: automatic JSON deserialization is off, so a bulk string that happens to
 *   look like JSON or a number stays a string; integers are numbers, nil is null.
 * - `NOSCRIPT` surfaces as an `Error` whose message starts with "NOSCRIPT" (runScript falls back
 *   to EVAL); other Redis error replies surface as `Error(serverMessage)`.
 * - Ambiguous outcomes throw {@link RedisTimeoutError} ("may have committed"): a call aborted at
 *   `timeoutMs`, a connection lost after the request may have been sent, an answer that is not
 *   JSON (a 502/504 page from a proxy), and an HTTP error whose body is not a Redis reply (a
 *   proxy's or the platform's 5xx): the request may have reached Redis and run.
 * - Only what proves the script did not run throws {@link RedisUnavailableError}: a request
 *   that never left (refused, DNS), an auth failure, a plan limit, or a server-side refusal
 *   (`LOADING`, `BUSY`).
 */
export function createUpstashClient(options: UpstashClientOptions): RedisClient {
  const timeoutMs = options.timeoutMs ?? 5000;
  const redis = new Redis({
    url: options.url,
    token: options.token,
    automaticDeserialization: false,
    responseEncoding: options.base64 === false ? false : "base64",
    enableTelemetry: false,
    // One HTTP request per script call: a call's error, timeout and retry are its own, not
    // shared with whatever else happened to be batched with it.
    enableAutoPipelining: false,
    // A function, not a signal: the client then creates one signal per request and rethrows
    // the abort. Given a plain AbortSignal it instead fakes a 200 reply whose result is the
    // abort reason, which would read as a script reply.
    signal: () => AbortSignal.timeout(timeoutMs),
    // Not `retry: false`: the client still makes two attempts with that (1.39). Zero retries
    // is one attempt. A fetch that failed may still have reached Redis (the answer was lost),
    // and a replayed append or requeue would answer differently the second time.
    retry: { retries: 0, backoff: () => 0 },
  });

  const call = async (
    what: "evalsha" | "eval",
    run: () => Promise<unknown>,
    context: RedisCallDetails,
  ): Promise<unknown> => {
    try {
      return await run();
    } catch (err) {
      throw mapError(err, { op: what, ...context });
    }
  };

  const mapError = (err: unknown, context: RedisCallDetails): Error => {
    if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
      return new RedisTimeoutError(
        `Upstash call timed out after ${timeoutMs} ms; it may have committed`,
        { ...context, timeoutMs },
        err,
      );
    }
    if (err instanceof Error && err.name === "UpstashError") {
      const message = serverMessage(err.message);
      if (NOT_RUN_CODES.test(message)) {
        return new RedisUnavailableError(`Upstash refused the call: ${message}`, context, err);
      }
      // A Redis error reply (NOSCRIPT, script error): the plain message, as the adapter
      // contract says, so runScript can branch on it.
      if (REDIS_REPLY_ERROR.test(message)) return new Error(message, { cause: err });
      // Anything else came from something between us and Redis after the request left: it may
      // have been forwarded and run.
      return new RedisTimeoutError(
        `Upstash answered an error that is not a Redis reply (${message.slice(0, 120)}); ` +
          "the call may have committed",
        context,
        err,
      );
    }
    if (err instanceof Error && err.name === "UpstashJSONParseError") {
      // Not a JSON body: a proxy or load balancer answered (a 502/504 page), possibly after
      // Redis ran the script.
      return new RedisTimeoutError(
        "Upstash answered a non-JSON body (a proxy error page); the call may have committed",
        context,
        err,
      );
    }
    const detail = describe(err);
    if (NOT_SENT.test(detail)) {
      return new RedisUnavailableError(`Upstash unreachable: ${detail}`, context, err);
    }
    // Socket closed or reset mid-request, after the retries: the request may have reached
    // Redis, so the outcome is unknown, which is exactly what RedisTimeoutError means.
    return new RedisTimeoutError(`Upstash connection lost: ${detail}`, context, err);
  };

  return {
    scriptVariant: options.keyLocking === false ? "plain" : "keyLocking",
    evalsha(sha1, keys, args) {
      return call("evalsha", () => redis.evalsha(sha1, keys, args), { sha1 });
    },
    eval(source, keys, args) {
      return call("eval", () => redis.eval(source, keys, args), {});
    },
    async close() {
      // Stateless HTTP (keep-alive sockets belong to the runtime's fetch): nothing to close.
    },
  };
}
