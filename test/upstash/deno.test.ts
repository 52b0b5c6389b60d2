/**
 * The adapter under Deno, the Edge Functions runtime: a real `deno run` of test/upstash/deno/
 * probe.ts against the gateway, importing `@upstash/redis` through deno.json.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import { freePort, type RedisServer, startRedisServer } from "../harness/redis-server.ts";

const root = join(import.meta.dirname, "..", "..");
let server: RedisServer;
let gateway: UpstashGateway;

beforeAll(async () => {
  server = await startRedisServer();
  gateway = await startUpstashGateway({ redisUrl: server.url, token: "deno-token" });
});

afterAll(async () => {
  await gateway?.close();
  await server?.stop();
});

it("createUpstashClient works under Deno: raw replies, NOSCRIPT, 1 MB, unreachable", async () => {
  const closedPort = await freePort();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      join(root, "node_modules", ".bin", "deno"),
      [
        "run",
        "--allow-net=127.0.0.1",
        "--allow-env",
        "--allow-read",
        join(root, "test", "upstash", "deno", "probe.ts"),
        gateway.url,
        "deno-token",
        String(closedPort),
      ],
      { cwd: root, timeout: 60_000, maxBuffer: 1024 * 1024 },
      (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
    );
  });
  const result = JSON.parse(stdout.trim().split("\n").pop()!);
  expect(result.shapes).toEqual({ value: [1, "007", ["k"], null] });
  expect(result.noscript.message).toMatch(/^NOSCRIPT /);
  expect(result.bigLength).toEqual({ value: 512 * 1024 });
  expect(result.unreachable.name).toBe("RedisUnavailableError");
});
