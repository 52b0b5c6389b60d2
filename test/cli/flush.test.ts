/**
 * `lull flush --direct` against a real redis-server, without any function running: the CLI
 * claims under the lock and delivers with the same Flusher, signed, to a real HTTP processor.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/core/config.ts";
import type { Batch } from "../../src/core/types.ts";
import { verifyDelivery } from "../../src/delivery/signature.ts";
import { createStore } from "../../src/store/create-store.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";
import { runCli } from "./cli-stack.ts";

describe("lull flush --direct", () => {
  let redis: RedisServer;
  let server: Server;
  let processorUrl: string;
  const received: { batch: Batch; verified: boolean }[] = [];
  const cwd = mkdtempSync(join(tmpdir(), "lull-cli-flush-"));
  const secret = "flush-test-secret";

  beforeAll(async () => {
    redis = await startRedisServer();
    server = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (c: string) => (body += c));
      req.on("end", async () => {
        const check = await verifyDelivery({
          headers: req.headers as Record<string, string>,
          rawBody: body,
          secrets: secret,
        });
        received.push({ batch: JSON.parse(body) as Batch, verified: check.ok });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    processorUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await redis?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  it("flushes one conversation now (reason manual), then everything buffered", async () => {
    const env = {
      LULL_REDIS_URL: redis.url,
      LULL_KEY_PREFIX: testPrefix("flush"),
      LULL_PROCESSOR_URL: processorUrl,
      LULL_PROCESSOR_SECRET: secret,
    };
    const { store } = createStore(parseConfig(env));
    try {
      for (
        const [conversation, id, text] of [["c:1", "a", "one"], ["c:1", "b", "two"], [
          "c:2",
          "c",
          "three",
        ]]
      ) {
        await store.append({
          conversation: conversation!,
          id: id!,
          provider: "generic",
          text: text!,
        });
      }
    } finally {
      await store.close();
    }

    const one = await runCli(["flush", "--direct", "--json", "c:1"], { cwd, env });
    expect(one.stderr).toBe("");
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({
      conversation: "c:1",
      outcome: { status: "delivered", size: 2 },
    });
    expect(received.map((r) => [r.batch.conversation, r.batch.reason, r.verified])).toEqual([
      ["c:1", "manual", true],
    ]);
    expect(received[0]!.batch.messages.map((m) => m.text)).toEqual(["one", "two"]);

    // Without a function URL, Redis + processor configured: direct is the default.
    const all = await runCli(["flush"], { cwd, env });
    expect(all.code).toBe(0);
    expect(all.stdout).toContain("c:2: delivered 1 message(s)");
    expect(received.map((r) => r.batch.conversation)).toEqual(["c:1", "c:2"]);

    const nothing = await runCli(["flush", "--direct"], { cwd, env });
    expect(nothing.stdout).toContain("nothing buffered");
  });

  it("--direct without a processor is a failure that says what to set", async () => {
    const r = await runCli(["flush", "--direct"], {
      cwd,
      env: { LULL_REDIS_URL: redis.url, LULL_KEY_PREFIX: testPrefix("flush2") },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("LULL_PROCESSOR_URL");
  });
});
