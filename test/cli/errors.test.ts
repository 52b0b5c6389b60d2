/**
 * Errors that say what to do. `lull dev` with a wrong LULL_REDIS_URL fails before starting
 * anything, once, naming the variable and the fix, telling a refused port from one that does
 * not answer, and never naming lull's internal gateway. `lull flush` with nothing to flush
 * through explains the ways; `lull flush <conv>` exits 1 when the batch was dead-lettered;
 * `lull send` says Redis is down when it is.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProcessorServer, startProcessorServer } from "../e2e/processor-server.ts";
import { freePort, type RedisServer, startRedisServer } from "../harness/redis-server.ts";
import { type DevProcess, fastEnv, runCli, startDev } from "./cli-stack.ts";

const cwd = mkdtempSync(join(tmpdir(), "lull-errors-"));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

async function devWith(redisUrl: string) {
  const port = await freePort();
  return await runCli(["dev", "--no-demo", "--port", String(port)], {
    cwd,
    env: { ...fastEnv, LULL_REDIS_URL: redisUrl },
    timeoutMs: 20_000,
  });
}

function expectOneClearError(r: { code: number | null; stderr: string }, ...parts: string[]) {
  expect(r.code).toBe(1);
  for (const p of parts) expect(r.stderr).toContain(p);
  expect(r.stderr.match(/LULL_REDIS_URL/g)?.length ?? 0).toBeGreaterThan(0);
  // Reported once, and never in terms of parts the user did not set up.
  expect(r.stderr.split("\n").filter((l) => l.startsWith("lull dev:"))).toHaveLength(1);
  expect(r.stderr.toLowerCase()).not.toContain("gateway");
  expect(r.stderr.toLowerCase()).not.toContain("upstash gateway");
}

describe("lull dev with a wrong LULL_REDIS_URL", () => {
  it("an http:// URL points to the Upstash variables", async () => {
    const r = await devWith("http://localhost:6379");
    expectOneClearError(r, "LULL_REDIS_URL is an HTTP URL", "UPSTASH_REDIS_REST_URL");
  });

  it("a URL without a scheme says to add redis://", async () => {
    const r = await devWith("localhost:6379");
    expectOneClearError(r, "LULL_REDIS_URL must be a URL with a scheme", "redis://");
  });

  it("a port out of range is named", async () => {
    const r = await devWith("redis://127.0.0.1:70000");
    expectOneClearError(r, 'has port "70000"');
  });

  it("a refused port says nothing listens there", async () => {
    const port = await freePort();
    const r = await devWith(`redis://127.0.0.1:${port}`);
    expectOneClearError(r, `nothing is listening at 127.0.0.1:${port} (connection refused)`);
    expect(r.stderr).not.toContain("timed out");
  });

  describe("a server that accepts and never answers", () => {
    let silent: Server;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      silent = createServer((s) => void sockets.push(s)); // accepts, says nothing
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    it("is reported as timed out, not refused", async () => {
      const port = (silent.address() as AddressInfo).port;
      const r = await devWith(`redis://127.0.0.1:${port}`);
      expectOneClearError(r, `127.0.0.1:${port}`, "(timed out)");
      expect(r.stderr).not.toContain("refused");
    });
  });
});

describe("lull flush", () => {
  it("with nothing to flush through, explains the ways", async () => {
    const r = await runCli(["flush", "support:1"], { cwd });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("start `lull dev` in this directory");
    expect(r.stderr).toContain("--url");
    expect(r.stderr).toContain("--direct");
  });
});

describe("against a running stack on the user's Redis", () => {
  let dev: DevProcess;
  let processor: ProcessorServer;
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedisServer();
    processor = await startProcessorServer();
    processor.respond(() => ({ status: 422, body: "no" }));
    dev = await startDev({
      ...fastEnv,
      LULL_WINDOW_MS: "20000",
      LULL_MAX_WAIT_MS: "40000",
      LULL_REDIS_URL: redis.url,
      LULL_PROCESSOR_URL: processor.url,
    });
  });

  afterAll(async () => {
    await dev?.stop();
    await processor?.close();
    await redis?.stop();
  });

  it("lull flush <conv> exits 1 when the batch was dead-lettered", async () => {
    const sent = await runCli(["send", "--conversation", "support:dead", "hi"], { cwd: dev.cwd });
    expect(sent.code).toBe(0);
    const r = await runCli(["flush", "support:dead"], { cwd: dev.cwd });
    expect(r.stdout).toContain("dead-lettered batch");
    expect(r.stderr).toContain("lull dlq list");
    expect(r.code).toBe(1);
  });

  it("lull send says Redis is down when it is (the message waits in the outbox)", async () => {
    await redis.kill();
    const r = await runCli(["send", "--conversation", "support:down", "hello?"], { cwd: dev.cwd });
    expect(r.stderr, `code ${r.code} stdout ${r.stdout}`).toContain(
      "Redis is down: LULL_REDIS_URL: nothing is listening at",
    );
    expect(r.stdout).toContain("accepted into the outbox");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("(connection refused)");
    expect(r.stderr.toLowerCase()).not.toContain("gateway");
  });
});
