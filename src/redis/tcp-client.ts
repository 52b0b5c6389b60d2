/**
 * RedisClient over plain TCP Redis (self-hosted, local), via ioredis. Works from Node and from
 * Deno (`npm:ioredis`). Tuned to fail fast while Redis is down (no offline queue, no request
 * retries, no resend of unanswered commands) and to reconnect by itself when it comes back.
 *
 * Error mapping (RedisClient contract):
 * - not sent (socket not writable, not connected in time): `RedisUnavailableError`;
 * - sent but no answer (per-call timeout, connection dropped mid-flight): `RedisTimeoutError`,
 *   because the command may have committed;
 * - Redis error replies (NOSCRIPT, script errors): the plain Error with the server's message.
 */
import { Redis } from "ioredis";
import { Deadlines } from "../core/deadlines.ts";
import { RedisTimeoutError, RedisUnavailableError } from "../core/errors.ts";
import type { RedisClient } from "./redis-client.ts";

/** Options of {@link createTcpClient}. */
export interface TcpClientOptions {
  /** `redis://` or `rediss://` URL. */
  url: string;
  /**
   * Per-call deadline; past it the call rejects with RedisTimeoutError (checked by one shared
   * interval, so at most a tenth of it, 5-100 ms, late).
   * @default 3000
   */
  timeoutMs?: number;
  /**
   * How long a call may wait for a connection that is being established.
   * @default 2000
   */
  connectTimeoutMs?: number;
}

/** A TCP RedisClient, plus `ping` for health checks and tooling. */
export interface TcpRedisClient extends RedisClient {
  /** PING with the per-call timeout. */
  ping(): Promise<void>;
  /** Raw command (tooling and benchmarks only; the core speaks scripts). */
  command(name: string, ...args: (string | number)[]): Promise<unknown>;
}

const NOT_SENT = [
  "Stream isn't writeable",
  "Connection is closed",
  "connect ECONNREFUSED",
  "None of the sentinels",
];

/** Creates a TCP client; it connects in the background and reconnects on its own. */
export function createTcpClient(options: TcpClientOptions): TcpRedisClient {
  const timeoutMs = options.timeoutMs ?? 3000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 2000;
  const redis = new Redis(options.url, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    connectTimeout: connectTimeoutMs,
    // Keep reconnecting while Redis is down, at most every second, so recovery is quick.
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
  });
  // Errors surface through the calls; an unhandled 'error' event would crash the process.
  redis.on("error", () => {});
  let closed = false;
  let connecting: Promise<void> | undefined;

  const context = (op: string) => ({ op, host: safeHost(options.url) });

  /** Waits for an in-progress connection (start-up or reconnect attempt), bounded. */
  const ready = async (op: string, deadline: number): Promise<void> => {
    if (redis.status === "ready") return;
    if (closed || redis.status === "end") {
      throw new RedisUnavailableError("redis client is closed", context(op));
    }
    if (redis.status === "reconnecting") {
      // Redis is known to be down right now: fail fast instead of waiting out a backoff.
      throw new RedisUnavailableError("redis is unreachable (reconnecting)", context(op));
    }
    if (redis.status === "wait") redis.connect().catch(() => {});
    // Concurrent callers share one wait, so a burst of calls during a (re)connect adds one pair
    // of listeners instead of one pair per call.
    connecting ??= new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        redis.off("ready", onReady);
        redis.off("close", onClose);
        connecting = undefined;
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => done();
      const onClose = () => done(new RedisUnavailableError("redis connection failed", context(op)));
      const timer = setTimeout(
        () => done(new RedisUnavailableError("redis did not connect in time", context(op))),
        connectTimeoutMs,
      );
      redis.once("ready", onReady);
      redis.once("close", onClose);
    });
    const left = Math.max(0, deadline - Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new RedisUnavailableError("redis did not connect in time", context(op))),
            left,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  // One interval for all pending calls instead of a timer per call: a call expires at most a
  // tick (a tenth of the timeout, 5-100 ms) after its deadline.
  const deadlines = new Deadlines({ tickMs: Math.min(100, Math.max(5, timeoutMs / 10)) });

  const call = async <T>(op: string, send: () => Promise<T>): Promise<T> => {
    let leftMs = timeoutMs;
    if (redis.status !== "ready") {
      // The deadline covers the wait for the connection too.
      const deadline = Date.now() + timeoutMs;
      await ready(op, deadline);
      leftMs = Math.max(1, deadline - Date.now());
    }
    try {
      return await deadlines.race(
        send(),
        leftMs,
        () => new RedisTimeoutError(`redis ${op} got no answer in ${timeoutMs} ms`, context(op)),
      );
    } catch (err) {
      throw mapError(op, err, context(op));
    }
  };

  return {
    // Plain Redis rejects Upstash's `allow-key-locking` shebang flag.
    scriptVariant: "plain",
    evalsha: (sha1, keys, args) =>
      call("evalsha", () => redis.evalsha(sha1, keys.length, ...keys, ...args)),
    eval: (source, keys, args) =>
      call("eval", () => redis.eval(source, keys.length, ...keys, ...args)),
    ping: async () => {
      await call("ping", () => redis.ping());
    },
    command: (name, ...args) => call(name, () => redis.call(name, ...args)),
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}

function mapError(op: string, err: unknown, context: Record<string, unknown>): Error {
  if (err instanceof RedisTimeoutError || err instanceof RedisUnavailableError) return err;
  if (!(err instanceof Error)) return new Error(String(err));
  if (err.name === "MaxRetriesPerRequestError") {
    // The connection dropped while the command was on the wire: it may have run.
    return new RedisTimeoutError(`redis ${op}: connection lost awaiting the answer`, context, err);
  }
  if (NOT_SENT.some((m) => err.message.includes(m))) {
    return new RedisUnavailableError(`redis ${op}: ${err.message}`, context, err);
  }
  return err; // a Redis error reply: the caller (runScript) decides what it means
}

/** host:port of a Redis URL without credentials, for error context. */
function safeHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "6379"}`;
  } catch {
    return "(invalid url)";
  }
}
