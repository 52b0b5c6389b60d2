/**
 * Start-up reachability checks for a Redis the user configured (LULL_REDIS_URL or UPSTASH_*),
 * so `lull dev` says once, before starting anything, what is wrong and how to fix it: nothing
 * listening (refused) is told apart from no answer (timed out) and from a name that does not
 * resolve. The messages name only what the user set, never lull's internal parts.
 */
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { LullError } from "../core/errors.ts";

/** The configured Redis cannot be used; `message` says why and what to do. */
export class RedisUnreachableError extends LullError {
  constructor(
    message: string,
    readonly reason: "refused" | "timeout" | "dns" | "auth" | "other",
  ) {
    super("redis_unreachable", message);
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

/** A RESP command, as Redis reads it. */
function resp(args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("");
}

/**
 * Sends AUTH (when the URL has credentials) and PING on a fresh connection and resolves with
 * the reply lines, or rejects on timeout/close. Plain RESP over a socket: the probe must tell
 * "accepted but silent" from "closed", which a client library's retries would blur.
 */
function ping(url: URL, timeoutMs: number): Promise<string[]> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || "6379");
  const commands: string[][] = [];
  const password = decodeURIComponent(url.password);
  const user = decodeURIComponent(url.username);
  if (password) commands.push(user ? ["AUTH", user, password] : ["AUTH", password]);
  commands.push(["PING"]);
  return new Promise((resolve, reject) => {
    const socket = url.protocol === "rediss:"
      ? tlsConnect({ host, port, servername: host })
      : connect({ host, port });
    let buffer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("timeout"));
    }, timeoutMs);
    socket.once(url.protocol === "rediss:" ? "secureConnect" : "connect", () => {
      socket.write(commands.map(resp).join(""));
    });
    socket.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      const lines = buffer.split("\r\n").filter((l) => l !== "");
      if (lines.length >= commands.length || lines.some((l) => l.startsWith("-"))) {
        clearTimeout(timer);
        socket.destroy();
        resolve(lines);
      }
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once("close", () => {
      clearTimeout(timer);
      reject(new Error("connection closed"));
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
  let lines: string[];
  try {
    lines = await ping(url, timeoutMs);
  } catch (err) {
    const message = (err as Error).message;
    if (message === "timeout") {
      throw new RedisUnreachableError(
        `LULL_REDIS_URL: ${where(url)} accepted the connection but did not answer PING within ` +
          `${timeoutMs} ms (timed out). Is it a Redis server (TLS needs rediss://)?`,
        "timeout",
      );
    }
    throw new RedisUnreachableError(
      `LULL_REDIS_URL: ${where(url)} accepted the connection but did not answer PING ` +
        `(${message}). Is it a Redis server (TLS needs rediss://)?`,
      "other",
    );
  }
  const error = lines.find((l) => l.startsWith("-"));
  if (error && /NOAUTH|WRONGPASS|invalid password|invalid username|AUTH/i.test(error)) {
    throw new RedisUnreachableError(
      `LULL_REDIS_URL: ${where(url)} refused the credentials (${error.slice(1)}). Put the ` +
        "right user and password in the URL: redis://user:password@host:port.",
      "auth",
    );
  }
  if (error || !lines.some((l) => l === "+PONG")) {
    throw new RedisUnreachableError(
      `LULL_REDIS_URL: ${where(url)} answered PING with "${
        (error ?? lines[0] ?? "").slice(0, 80)
      }". Is it a Redis server?`,
      "other",
    );
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
