/**
 * Finds and starts a private redis-server for `lull dev`: a free 127.0.0.1 port, persistence
 * off, its own temp dir. Never 6379, so a developer's own Redis is never touched.
 */
import { accessSync, constants } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";
import Redis from "ioredis";
import { type ManagedChild, spawnChild, stopChild } from "./child-processes.ts";

/** Absolute path of `redis-server` on PATH, or null when the machine has none. */
export function findRedisServer(path: string | undefined = process.env.PATH): string | null {
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "redis-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** A free TCP port on 127.0.0.1 (the OS picks; closed again before returning). */
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

/**
 * Resolves when Redis on `port` answers PING (a server still loading its AOF answers LOADING,
 * which counts as not yet); rejects after `timeoutMs`, or as soon as `hasExited()` says the
 * process died. Shared by `lull dev`, the test harness and the chaos run.
 */
export async function waitForRedis(
  port: number,
  hasExited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline && !hasExited()) {
    const probe = new Redis({
      port,
      host: "127.0.0.1",
      lazyConnect: true,
      connectTimeout: 500,
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
  throw new Error(
    hasExited()
      ? `redis-server on ${port} exited during start-up`
      : `redis-server on ${port} did not answer PING: ${lastError}`,
  );
}

/** Arguments for a private redis-server: loopback only, persistence off, its own dir. */
export function redisServerArgs(port: number, dir: string): string[] {
  return [
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
  ];
}

/** A redis-server started by dev. */
export interface LaunchedRedis {
  url: string;
  child: ManagedChild;
  stop(): Promise<void>;
}

/** Starts redis-server on a free port with `dir` as its working directory. */
export async function launchRedis(binary: string, dir: string): Promise<LaunchedRedis> {
  let lastError: unknown;
  // A port can be taken between probing and binding: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawnChild("redis-server", binary, redisServerArgs(port, dir));
    child.process.stdout?.resume();
    child.process.stderr?.resume();
    try {
      let exited = false;
      void child.exited.then(() => {
        exited = true;
      });
      await waitForRedis(port, () => exited, 10_000);
      return { url: `redis://127.0.0.1:${port}`, child, stop: () => stopChild(child) };
    } catch (err) {
      lastError = err;
      await stopChild(child, 500);
    }
  }
  throw new Error(`could not start redis-server: ${lastError}`);
}
