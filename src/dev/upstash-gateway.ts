/**
 * A small Upstash-compatible REST gateway over a real redis-server, for `lull dev` and tests.
 * Upstash's own emulator needs Docker; this speaks the REST protocol the `@upstash/redis` client
 * uses, closely enough that the client cannot tell the difference:
 *
 * - `POST /` with a JSON array command -> `{ "result": ... }` or 400 `{ "error": "<redis text>" }`
 * - `POST /pipeline` with an array of commands -> 200, one `{result}` / `{error}` per entry
 * - `POST /multi-exec` -> MULTI/EXEC on a connection of its own, same reply shape
 * - `GET|POST /<cmd>/<arg>/...` path style (a POST body becomes the last argument)
 * - `Authorization: Bearer <token>` (or `?_token=`), else 401 `{ "error": ... }`
 * - `Upstash-Encoding: base64`: every string reply (bulk and status) base64-encoded, numbers and
 *   null untouched, arrays recursively, errors never encoded
 * - scripts flagged `#!lua flags=allow-key-locking` (Upstash's key-based locking) are accepted:
 *   the flag is stripped before Redis sees it, EVALSHA of the flagged SHA mapped (key-locking-shim.ts)
 *
 * Replies are read as Buffers (binary-safe) with RESP2 shapes. Node-only: dev tooling.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { timingSafeEqual } from "node:crypto";
import Redis from "ioredis";
import { KeyLockingShim } from "./key-locking-shim.ts";

/** Options for {@link startUpstashGateway}. */
export interface UpstashGatewayOptions {
  /** The redis-server behind the gateway, `redis://host:port[/db]`. */
  redisUrl: string;
  /** Bearer token clients must present. */
  token: string;
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Interface to bind. Only loopback: the gateway is dev tooling with a dev token.
   * @default "127.0.0.1"
   */
  host?: "127.0.0.1";
  /**
   * Test hook: when it returns true for a command (of `/`, or any entry of a pipeline or
   * transaction), the gateway executes the request on Redis, then destroys the socket without
   * answering, as a network failure after commit would. A single command answered with an
   * error reply (which committed nothing, e.g. NOSCRIPT) is answered normally.
   */
  dropAfterCommit?: (command: string[]) => boolean;
  /**
   * Largest accepted request body.
   * @default 10485760
   */
  maxBodyBytes?: number;
}

/** A running gateway. */
export interface UpstashGateway {
  /** Base URL for `UPSTASH_REDIS_REST_URL`, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** Stops listening, drops open sockets and closes the Redis connections. */
  close(): Promise<void>;
}

/** What a Redis reply can be once read as Buffers (RESP2). */
type Reply = Buffer | number | null | Error | Reply[];

/** An error the gateway answers with a status of its own (not a Redis reply). */
class GatewayError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * Commands that would change the shared connection's mode or block it for everyone. Upstash
 * serves some of these through other endpoints; the gateway simply refuses them.
 */
const REFUSED = new Set([
  "SUBSCRIBE",
  "PSUBSCRIBE",
  "SSUBSCRIBE",
  "UNSUBSCRIBE",
  "PUNSUBSCRIBE",
  "SUNSUBSCRIBE",
  "MONITOR",
  "SELECT",
  "QUIT",
  "RESET",
  "HELLO",
  "AUTH",
  "MULTI",
  "EXEC",
  "DISCARD",
  "WATCH",
  "UNWATCH",
  "BLPOP",
  "BRPOP",
  "BLMOVE",
  "BRPOPLPUSH",
  "BLMPOP",
  "BZPOPMIN",
  "BZPOPMAX",
  "BZMPOP",
  "WAIT",
  "WAITAOF",
  "SHUTDOWN",
  "DEBUG",
]);

function parseCommand(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new GatewayError(400, "ERR failed to parse command: expected a non-empty JSON array");
  }
  return value.map((part) => {
    if (typeof part === "string") return part;
    if (typeof part === "number" || typeof part === "boolean") return String(part);
    throw new GatewayError(
      400,
      "ERR failed to parse command: arguments must be strings or numbers",
    );
  });
}

function checkAllowed(command: string[]): void {
  const name = command[0]!.toUpperCase();
  if (REFUSED.has(name)) {
    throw new GatewayError(400, `ERR command '${command[0]}' is not supported by the REST gateway`);
  }
  if (name === "XREAD" || name === "XREADGROUP") {
    if (command.some((arg) => arg.toUpperCase() === "BLOCK")) {
      throw new GatewayError(400, "ERR blocking XREAD is not supported by the REST gateway");
    }
  }
}

/** JSON form of one reply. Status and bulk replies are both strings in RESP2. */
function encodeReply(reply: Reply, base64: boolean): unknown {
  if (reply === null || typeof reply === "number") return reply;
  if (Buffer.isBuffer(reply)) return base64 ? reply.toString("base64") : reply.toString("utf8");
  // An error nested in an array (a script returning a pcall error): its text, never encoded.
  if (reply instanceof Error) return reply.message;
  return reply.map((r) => encodeReply(r, base64));
}

function entry(reply: Reply, base64: boolean): { result: unknown } | { error: string } {
  return reply instanceof Error ? { error: reply.message } : { result: encodeReply(reply, base64) };
}

/** ioredis' errors for a command that was never written to Redis (it is down / reconnecting). */
const NOT_SENT = /Stream isn't writeable|ECONNREFUSED|Connection is closed|connect ETIMEDOUT/;

/** Fail fast when Redis is down instead of queueing: the client should see an error now. */
const FAIL_FAST = { enableOfflineQueue: false, maxRetriesPerRequest: 0 } as const;

/**
 * Runs one command and returns the reply as Buffers. The name is sent upper-cased on purpose:
 * ioredis keys its reply transformers (e.g. HGETALL -> object) and mode tracking on lower-case
 * names, and the gateway must pass RESP2 shapes through untouched.
 */
async function run(conn: Redis, command: string[]): Promise<Reply> {
  const [name, ...args] = command;
  try {
    return (await conn.callBuffer(name!.toUpperCase(), ...args)) as Reply;
  } catch (err) {
    if (err instanceof Error && err.name === "ReplyError") return err;
    throw err;
  }
}

/** Starts the gateway; resolves once it listens and Redis answers. */
export async function startUpstashGateway(options: UpstashGatewayOptions): Promise<UpstashGateway> {
  const host = options.host ?? "127.0.0.1";
  const maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
  const expected = Buffer.from(options.token);
  const shim = new KeyLockingShim();
  /** Runs a client's command, flagged scripts rewritten for plain Redis. */
  const runShimmed = async (conn: Redis, command: string[]): Promise<Reply> => {
    const shimmed = shim.toRedis(command);
    const reply = await run(conn, shimmed.command);
    return shimmed.reply !== undefined && Buffer.isBuffer(reply)
      ? Buffer.from(shimmed.reply)
      : reply;
  };
  const connect = async (): Promise<Redis> => {
    // A dedicated connection lives for one transaction at a time and never reconnects: if it
    // breaks, it is dropped and the next transaction opens a fresh one.
    const conn = new Redis(options.redisUrl, {
      ...FAIL_FAST,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    conn.on("error", () => {
      // Reported per request; an unhandled 'error' event would crash the dev process.
    });
    try {
      await conn.connect();
    } catch (err) {
      conn.disconnect();
      throw err;
    }
    return conn;
  };

  const shared = new Redis(options.redisUrl, {
    ...FAIL_FAST,
    // The shared connection reconnects on its own; requests fail fast meanwhile.
    retryStrategy: (times: number) => Math.min(times * 50, 500),
  });
  shared.on("error", () => {});
  /** Idle dedicated connections for transactions. */
  const idle: Redis[] = [];
  const sockets = new Set<Socket>();

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    const header = req.headers.authorization ?? "";
    const presented = header.startsWith("Bearer ")
      ? header.slice(7).trim()
      : url.searchParams.get("_token") ?? "";
    const got = Buffer.from(presented);
    return got.length === expected.length && timingSafeEqual(got, expected);
  };

  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBodyBytes) {
          reject(new GatewayError(413, "ERR request body too large"));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.on("end", () => resolve(Buffer.concat(chunks)));
      req.on("error", reject);
    });

  const parseJson = (body: Buffer): unknown => {
    try {
      return JSON.parse(body.toString("utf8"));
    } catch {
      throw new GatewayError(400, "ERR failed to parse command: body is not JSON");
    }
  };

  const transaction = async (commands: string[][]): Promise<Reply[] | Error> => {
    let conn = idle.pop();
    while (conn !== undefined && conn.status !== "ready") {
      conn.disconnect();
      conn = idle.pop();
    }
    conn ??= await connect();
    let healthy = false;
    try {
      // Written back to back on the connection of its own: nothing else can interleave, and
      // a command that fails to queue makes EXEC answer EXECABORT, as in Redis.
      const replies = await Promise.all(
        [["MULTI"], ...commands, ["EXEC"]].map((c) => runShimmed(conn, c)),
      );
      healthy = true;
      const exec = replies[replies.length - 1]!;
      if (exec instanceof Error) return exec;
      if (!Array.isArray(exec)) return new Error("EXECABORT Transaction discarded");
      return exec;
    } finally {
      if (healthy && idle.length < 4) idle.push(conn);
      else conn.disconnect();
    }
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "Content-Type": "application/json",
      "Content-Length": Buffer.byteLength(text),
    });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", `http://${host}`);
    if (!authorized(req, url)) {
      send(res, 401, { error: "Unauthorized" });
      return;
    }
    if (req.method !== "POST" && req.method !== "GET") {
      send(res, 405, { error: "ERR method not allowed" });
      return;
    }
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const body = await readBody(req);
    const path = url.pathname.replace(/\/+$/, "");
    const drop = (commands: string[][]) =>
      options.dropAfterCommit !== undefined && commands.some((c) => options.dropAfterCommit!(c));

    if (path === "/pipeline" || path === "/multi-exec") {
      const raw = parseJson(body);
      if (!Array.isArray(raw) || raw.length === 0) {
        throw new GatewayError(400, "ERR failed to parse pipeline: expected an array of commands");
      }
      const commands = raw.map(parseCommand);
      commands.forEach(checkAllowed);
      if (path === "/pipeline") {
        // One connection, sent back to back: Redis runs them in order (not atomically).
        const replies = await Promise.all(commands.map((c) => runShimmed(shared, c)));
        if (drop(commands)) return void req.socket.destroy();
        send(res, 200, replies.map((r) => entry(r, base64)));
        return;
      }
      const replies = await transaction(commands);
      if (drop(commands)) return void req.socket.destroy();
      if (replies instanceof Error) throw new GatewayError(400, replies.message);
      send(res, 200, replies.map((r) => entry(r, base64)));
      return;
    }

    let command: string[];
    if (path === "") {
      command = parseCommand(parseJson(body));
    } else {
      // Path style: /set/key/value; a POST body is the last argument, verbatim.
      command = path.slice(1).split("/").map((part) => decodeURIComponent(part));
      if (req.method === "POST" && body.length > 0) command.push(body.toString("utf8"));
    }
    checkAllowed(command);
    const reply = await runShimmed(shared, command);
    // An error reply committed nothing (NOSCRIPT, WRONGTYPE): only successes are dropped.
    if (!(reply instanceof Error) && drop([command])) return void req.socket.destroy();
    if (reply instanceof Error) {
      send(res, 400, { error: reply.message });
      return;
    }
    send(res, 200, { result: encodeReply(reply, base64) });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof GatewayError) {
        send(res, err.status, { error: err.message });
        return;
      }
      const message = (err as Error).message ?? String(err);
      if (NOT_SENT.test(message)) {
        // Redis is down and nothing was sent: a clean "unavailable", not a Redis reply.
        send(res, 503, { error: `gateway: redis unavailable (${message})` });
        return;
      }
      // The connection broke with the command in flight: it may have run. Say nothing, as a
      // failing network would, so the client sees an unknown outcome rather than a refusal.
      req.socket.destroy();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  if (shared.status !== "ready") {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no answer within 5000 ms")), 5000);
      shared.once("ready", () => {
        clearTimeout(timer);
        resolve();
      });
    }).catch((err) => {
      shared.disconnect();
      throw new Error(`upstash gateway: cannot reach ${options.redisUrl}: ${String(err)}`);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      shared.disconnect();
      for (const conn of idle.splice(0)) conn.disconnect();
    },
  };
}
