/**
 * `lull tail` keeps following through a Redis outage: it reports the error once, keeps polling,
 * and prints the events written after Redis is back.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import type { BufferEvent } from "../../src/core/types.ts";
import { createStore } from "../../src/store/create-store.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { cleanEnv, lullBin } from "./cli-stack.ts";

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("lull tail through a Redis outage", () => {
  let redis: RedisServer;
  const cwd = mkdtempSync(join(tmpdir(), "lull-cli-tail-"));

  beforeAll(async () => {
    redis = await startRedisServer();
  });

  afterAll(async () => {
    await redis?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it("reports the outage and resumes with the events written after it", async () => {
    const env = {
      LULL_REDIS_URL: redis.url,
      LULL_KEY_PREFIX: testPrefix("tailout"),
      LULL_MESSAGE_EVENTS: "true",
    };
    const append = async (id: string) => {
      const { store } = createStore(parseConfig(env));
      try {
        await store.append({ conversation: "outage:1", id, provider: "generic", text: id });
      } finally {
        await store.close();
      }
    };
    const tail = spawn(process.execPath, [
      lullBin,
      "tail",
      "--json",
      "--since",
      "1m",
      "--interval",
      "100",
    ], { cwd, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    tail.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    tail.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const exited = new Promise<number | null>((r) => tail.once("exit", (c) => r(c)));
    const ids = () =>
      stdout.split("\n").filter((l) => l !== "").map((l) =>
        (JSON.parse(l) as BufferEvent).fields.id
      );
    try {
      await append("before");
      await until("the first event", () => ids().includes("before"));
      await redis.kill();
      await until("the outage report", () => stderr.includes("retrying"));
      await redis.start();
      await append("after");
      await until("the event after the outage", () => ids().includes("after"));
    } finally {
      tail.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    expect(ids()).toEqual(["before", "after"]);
    // Reported once per distinct error, not once per poll.
    const reports = stderr.split("\n").filter((l) => l.endsWith("retrying"));
    expect(new Set(reports).size).toBe(reports.length);
    expect(stderr).toContain("lull tail: reading again");
  });
});
