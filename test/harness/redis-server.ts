/**
 * Starts a private redis-server on an ephemeral 127.0.0.1 port for one test file, and stops it.
 * Never assumes 6379. If redis-server is missing the test FAILS (CI must not skip Redis tests).
 * Port probing and the readiness wait are `lull dev`'s own (src/dev/redis-launcher.ts).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Redis from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { freePort, redisServerArgs, waitForRedis } from "../../src/dev/redis-launcher.ts";

export { freePort };

/** A running redis-server owned by the caller. */
export interface RedisServer {
  port: number;
  url: string;
  /** Its working directory (AOF, cluster config), removed by `stop()`. */
  dir: string;
  /** A plain ioredis client for assertions (INFO, KEYS, ...). */
  client: Redis;
  /** Kill the server (SIGKILL, for outage tests); `start()` brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Options for {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * Extra redis-server arguments, after the defaults (later ones win), e.g.
   * `["--appendonly", "yes", "--appendfsync", "always"]` or cluster mode.
   * @default []
   */
  args?: string[];
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

/** Starts redis-server on a free port with persistence off and a private temp dir. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const bin = redisServerBinary();
  const dir = mkdtempSync(join(tmpdir(), "lull-redis-"));
  let child: ChildProcess | undefined;
  let port = 0;

  const spawnOn = async (p: number) => {
    const c = spawn(bin, [
      ...redisServerArgs(p, dir),
      "--protected-mode",
      "no",
      ...(options.args ?? []),
    ], { stdio: "ignore" });
    child = c;
    await waitForRedis(p, () => c.exitCode !== null || c.signalCode !== null, 10_000);
  };

  for (let attempt = 0;; attempt++) {
    port = await freePort();
    try {
      await spawnOn(port);
      break;
    } catch (err) {
      child?.kill("SIGKILL");
      if (attempt === 4) throw err; // else the port was taken between probe and bind: retry
    }
  }

  const client = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
  client.on("error", () => {});

  const killChild = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
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
    dir,
    client,
    kill: killChild,
    start: () => spawnOn(port),
    async stop() {
      client.disconnect();
      await killChild();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One redis-server for the calling test file: started in `beforeAll`, stopped in `afterAll`.
 * Returns a handle that reads through to the running server, so a file writes
 * `const server = useRedisServer();` and uses `server.url`, `server.client`, ... inside its
 * tests (reading it before `beforeAll` has run throws, rather than hand out a dead server).
 */
export function useRedisServer(options: RedisServerOptions = {}): RedisServer {
  let current: RedisServer | undefined;
  beforeAll(async () => {
    current = await startRedisServer(options);
  });
  afterAll(async () => {
    await current?.stop();
    current = undefined;
  });
  const running = (): RedisServer => {
    if (!current) throw new Error("useRedisServer: the server runs from beforeAll to afterAll");
    return current;
  };
  return {
    get port() {
      return running().port;
    },
    get url() {
      return running().url;
    },
    get dir() {
      return running().dir;
    },
    get client() {
      return running().client;
    },
    kill: () => running().kill(),
    start: () => running().start(),
    stop: () => running().stop(),
  };
}

/** A key prefix unique to one test, so tests sharing a server never see each other's keys. */
export function testPrefix(name: string): string {
  return `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}-${
    name.replace(/[^A-Za-z0-9]/g, "").slice(0, 20)
  }`;
}
