/**
 * Start-up reachability checks for a Redis the user configured (LULL_REDIS_URL or UPSTASH_*),
 * so `lull dev` says once, before starting anything, what is wrong and how to fix it: nothing
 * listening (refused) is told apart from no answer (timed out) and from a name that does not
 * resolve. The messages name only what the user set, never lull's internal parts.
 */
import { connect } from "node:net";
import Redis from "ioredis";
import { LullError } from "../core/errors.ts";

/** The configured Redis cannot be used; `message` says why and what to do. */
export class RedisUnreachableError extends LullError {
  constructor(
    message: string,
    readonly reason: "refused" | "timeout" | "dns" | "auth" | "other",
  ) {
    super("redis_unreachable", message, { reason });
  }
}

/** How long a probe waits for an answer. @default 3000 */
export const PROBE_TIMEOUT_MS = 3000;

const FIX_TCP = "Start Redis there, fix LULL_REDIS_URL, or unset it (lull dev then starts " +
  "its own redis-server).";

/** host:port of a redis:// URL, for messages (credentials are never repeated). */
function where(url: URL): string {
  return `${url.hostname}:${url.port || "6379"}`;
}

/** Opens a TCP connection to the URL's host and port; rejects with a classified error. */
function tcpReachable(url: URL, timeoutMs: number): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || "6379");
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new RedisUnreachableError(
          `LULL_REDIS_URL: ${where(url)} did not answer within ${timeoutMs} ms (timed out): a ` +
            `wrong host, a firewall, or a server that is not up yet. ${FIX_TCP}`,
          "timeout",
        ),
      );
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      if (err.code === "ECONNREFUSED") {
        reject(
          new RedisUnreachableError(
            `LULL_REDIS_URL: nothing is listening at ${where(url)} (connection refused). ` +
              FIX_TCP,
            "refused",
          ),
        );
      } else if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") {
        reject(
          new RedisUnreachableError(
            `LULL_REDIS_URL: the host ${url.hostname} does not resolve (DNS). ${FIX_TCP}`,
            "dns",
          ),
        );
      } else {
        reject(
          new RedisUnreachableError(
            `LULL_REDIS_URL: cannot connect to ${where(url)} (${err.code ?? err.message}). ` +
              FIX_TCP,
            "other",
          ),
        );
      }
    });
  });
}

/** Checks that a redis:// URL is reachable and answers PING (with its credentials). */
export async function probeRedisUrl(
  redisUrl: string,
  timeoutMs: number = PROBE_TIMEOUT_MS,
): Promise<void> {
  const url = new URL(redisUrl);
  if (url.protocol === "redis:") await tcpReachable(url, timeoutMs);
  const client = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    const message = (err as Error).message;
    if (/NOAUTH|WRONGPASS|invalid password|invalid username/i.test(message)) {
      throw new RedisUnreachableError(
        `LULL_REDIS_URL: ${where(url)} refused the credentials (${message.split("\n")[0]}). ` +
          "Put the right user and password in the URL: redis://user:password@host:port.",
        "auth",
      );
    }
    throw new RedisUnreachableError(
      `LULL_REDIS_URL: ${where(url)} accepted the connection but did not answer PING ` +
        `(${message}). Is it a Redis server (TLS needs rediss://)?`,
      "other",
    );
  } finally {
    client.disconnect();
  }
}

/** Checks that an Upstash REST endpoint answers PING with the token. */
export async function probeUpstash(
  restUrl: string,
  token: string,
  timeoutMs: number = PROBE_TIMEOUT_MS,
  fetchFn: typeof fetch = fetch,
): Promise<void> {
  const host = new URL(restUrl).host;
  let res: Response;
  try {
    res = await fetchFn(restUrl.replace(/\/+$/, "") + "/ping", {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const timedOut = (err as Error).name === "TimeoutError";
    throw new RedisUnreachableError(
      timedOut
        ? `UPSTASH_REDIS_REST_URL: ${host} did not answer within ${timeoutMs} ms (timed out). ` +
          "Check the URL in the Upstash console (REST API section) and your network."
        : `UPSTASH_REDIS_REST_URL: cannot reach ${host} (${
          String((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message)
        }). Check the URL in the Upstash console (REST API section).`,
      timedOut ? "timeout" : "other",
    );
  }
  await res.body?.cancel();
  if (res.status === 401 || res.status === 403) {
    throw new RedisUnreachableError(
      `UPSTASH_REDIS_REST_TOKEN was rejected by ${host} (${res.status}). Copy the REST token ` +
        "(not the read-only one) from the Upstash console.",
      "auth",
    );
  }
  if (!res.ok) {
    throw new RedisUnreachableError(
      `UPSTASH_REDIS_REST_URL: ${host} answered ${res.status} to PING; is it an Upstash REST URL?`,
      "other",
    );
  }
}
