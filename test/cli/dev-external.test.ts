/**
 * `lull dev` on a Redis it did not start (LULL_REDIS_URL) and no processor of the user's: the
 * Redis may hold real data, so dev runs no demo, no sweep and no flush, and its functions answer
 * only reads. A pre-filled Redis (due buffers included, which any sweep would flush) is left
 * byte for byte as it was; the banner says read-only.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import { createStore } from "../../src/store/create-store.ts";
import { freePort, type RedisServer, startRedisServer } from "../harness/redis-server.ts";
import { cleanEnv, type DevProcess, fastEnv, lullBin, startDev } from "./cli-stack.ts";

let redis: RedisServer;

/** Every key with its type, TTL and DUMP: equal snapshots mean nothing was written. */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const keys = (await redis.client.keys("*")).sort();
  for (const key of keys) {
    const dump = await redis.client.dumpBuffer(key);
    const pttl = await redis.client.pttl(key);
    out[key] = `${await redis.client.type(key)} ttl=${pttl > 0 ? "set" : pttl} ${
      dump?.toString("base64")
    }`;
  }
  return out;
}

beforeAll(async () => {
  redis = await startRedisServer();
  // Someone's data: two conversations' buffers (due within a second) and an unrelated key.
  const { store } = createStore(parseConfig({ ...fastEnv, LULL_REDIS_URL: redis.url }));
  await store.append({ conversation: "support:1", id: "p-1", provider: "generic", text: "hi" });
  await store.append({ conversation: "support:1", id: "p-2", provider: "generic", text: "there" });
  await store.append({ conversation: "support:2", id: "p-3", provider: "generic", text: "yo" });
  await store.close();
  await redis.client.set("their:own:key", "untouched");
});

afterAll(async () => {
  await redis?.stop();
});

describe("lull dev on a Redis it did not start", () => {
  let dev: DevProcess;
  let before: Record<string, string>;

  beforeAll(async () => {
    before = await snapshot();
    expect(Object.keys(before).length).toBeGreaterThan(3);
    dev = await startDev({ ...fastEnv, LULL_REDIS_URL: redis.url }, { demo: true });
  });

  afterAll(async () => {
    await dev?.stop();
  });

  it("is read-only: no processor, no demo, writes refused, reads served", async () => {
    const ready = dev.ready as unknown as Record<string, unknown>;
    expect(ready.store).toBe("redis");
    expect(ready.readOnly).toBe(true);
    expect(ready.processorUrl).toBeNull();
    const send = await fetch(`${dev.ready.lullUrl}/messages`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${dev.ready.secrets.ingestToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ conversation: "support:9", id: "x-1", text: "no" }),
    });
    expect(send.status).toBe(503);
    expect((await send.json()).error.code).toBe("read_only");
    const flush = await fetch(`${dev.ready.lullUrl}/admin/flush`, {
      method: "POST",
      headers: { authorization: `Bearer ${dev.ready.secrets.adminToken}` },
    });
    expect(flush.status).toBe(503);
    await flush.body?.cancel();
    const buffers = await fetch(`${dev.ready.lullUrl}/admin/buffers`, {
      headers: { authorization: `Bearer ${dev.ready.secrets.adminToken}` },
    });
    expect(buffers.status).toBe(200);
    const listed = await buffers.json();
    expect(listed.buffers.map((b: { conversation: string }) => b.conversation).sort()).toEqual([
      "support:1",
      "support:2",
    ]);
  });

  it("leaves the pre-filled Redis untouched, sweeps and windows having passed", async () => {
    // Several sweep intervals (500 ms) and the whole quiet window (600 + 100 ms) go by.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await snapshot()).toEqual(before);
    expect(dev.events.filter((e) => e.event === "demo" || e.event === "batch")).toEqual([]);
  });
});

describe("lull dev's banner on a Redis it did not start", () => {
  it("says read-only, and why", { timeout: 120_000 }, async () => {
    const cwd = mkdtempSync(join(tmpdir(), "lull-cli-test-"));
    const port = await freePort();
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, [lullBin, "dev", "--port", String(port)], {
        cwd,
        env: cleanEnv({ ...fastEnv, LULL_REDIS_URL: redis.url }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      child.stdout!.on("data", (c) => (stdout += c));
      const exited = new Promise((r) => child!.once("exit", r));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no banner: ${stdout}`)), 110_000);
        child!.stdout!.on("data", () => {
          if (stdout.includes("stop: Ctrl-C")) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(stdout).toContain("READ-ONLY: this Redis was not started by lull dev");
      expect(stdout).toContain("Set LULL_PROCESSOR_URL");
      expect(stdout).toContain("none (read-only)");
      expect(stdout).not.toContain("demo:");
      child.kill("SIGINT");
      await exited;
    } finally {
      if (child && child.exitCode === null) child.kill("SIGKILL");
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
