/**
 * Starts a private redis-server on an ephemeral 127.0.0.1 port for one test file, and stops it.
 * Never assumes 6379. If redis-server is missing the test FAILS (CI must not skip Redis tests).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Redis from "ioredis";

/** A running redis-server owned by the caller. */
export interface RedisServer {
  port: number;
  url: string;
  /** A plain ioredis client for assertions (INFO, KEYS, ...). */
  client: Redis;
  /** Kill the server (for outage tests); `start()` brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function redisServerBinary(): string {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(
      "redis-server is not installed: the Redis tests need a real server " +
        "(apt-get install -y redis-server). They fail rather than skip.",
    );
  }
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode})`);
    const probe = new Redis({
      port,
      host: "127.0.0.1",
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return;
    } catch (err) {
      lastError = err;
      probe.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis-server on ${port} did not answer PING: ${String(lastError)}`);
}

/** Starts redis-server on a free port with persistence off and a private temp dir. */
export async function startRedisServer(): Promise<RedisServer> {
  const bin = redisServerBinary();
  const dir = mkdtempSync(join(tmpdir(), "lull-redis-"));
  let child: ChildProcess | undefined;
  let port = 0;

  const launch = async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      port = port || await freePort();
      child = spawn(bin, [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--protected-mode",
        "no",
      ], { stdio: "ignore" });
      try {
        await waitForPing(port, child);
        return;
      } catch (err) {
        child.kill("SIGKILL");
        if (attempt === 4) throw err;
        port = 0; // port taken between probe and bind: pick another
      }
    }
  };
  await launch();

  const client = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
  client.on("error", () => {});

  const killChild = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  };

  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    client,
    kill: killChild,
    async start() {
      const fixed = port;
      port = fixed;
      child = spawn(bin, [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ], { stdio: "ignore" });
      await waitForPing(port, child);
    },
    async stop() {
      client.disconnect();
      await killChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A key prefix unique to one test, so tests sharing a server never see each other's keys. */
export function testPrefix(name: string): string {
  return `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}-${
    name.replace(/[^A-Za-z0-9]/g, "").slice(0, 20)
  }`;
}
