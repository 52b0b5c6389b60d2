/**
 * Upstash key-based locking (`#!lua flags=allow-key-locking`): plain Redis refuses the flag, the
 * local gateway accepts it (EVAL, EVALSHA, SCRIPT LOAD, pipelines) in front of the same real
 * redis-server, and lull's Upstash adapter really sends the flagged variant.
 */
import { createHash } from "node:crypto";
import { Redis as UpstashRedis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stripKeyLockingFlag } from "../../src/dev/key-locking-shim.ts";
import { startUpstashGateway, type UpstashGateway } from "../../src/dev/upstash-gateway.ts";
import type { RedisClient } from "../../src/redis/redis-client.ts";
import { runScript } from "../../src/redis/run-script.ts";
import { createUpstashClient } from "../../src/redis/upstash-client.ts";
import { checkLayout } from "../../src/scripts/generated.ts";
import { type RedisServer, startRedisServer, testPrefix } from "../harness/redis-server.ts";

const TOKEN = "key-locking-token";
const sha1 = (s: string) => createHash("sha1").update(s, "utf8").digest("hex");
const FLAGGED = "#!lua flags=allow-key-locking\nreturn {KEYS[1], ARGV[1]}";

let server: RedisServer;
let gateway: UpstashGateway;
let rest: UpstashRedis;

beforeAll(async () => {
  server = await startRedisServer();
  gateway = await startUpstashGateway({ redisUrl: server.url, token: TOKEN });
  rest = new UpstashRedis({
    url: gateway.url,
    token: TOKEN,
    automaticDeserialization: false,
    enableTelemetry: false,
    retry: { retries: 0, backoff: () => 0 },
  });
});

afterAll(async () => {
  await gateway?.close();
  await server?.stop();
});

describe("stripKeyLockingFlag", () => {
  it("drops a shebang that only carried the flag, keeps other flags", () => {
    expect(stripKeyLockingFlag(FLAGGED)).toBe("return {KEYS[1], ARGV[1]}");
    expect(stripKeyLockingFlag("#!lua flags=no-writes,allow-key-locking\nreturn 1")).toBe(
      "#!lua flags=no-writes\nreturn 1",
    );
    expect(stripKeyLockingFlag("#!lua flags=no-writes\nreturn 1")).toBeNull();
    expect(stripKeyLockingFlag("return 1")).toBeNull();
  });
});

describe("plain redis-server", () => {
  it("rejects the flagged source", async () => {
    await expect(server.client.eval(FLAGGED, 1, "k", "v")).rejects.toThrow(
      /Unexpected flag in script shebang/,
    );
    await expect(server.client.eval(checkLayout.keyLocking!.source, 1, "k", 16, 1)).rejects
      .toThrow(/Unexpected flag in script shebang/);
  });
});

describe("gateway", () => {
  it("runs a flagged script by EVAL, then by its flagged SHA", async () => {
    const key = `${testPrefix("kl")}:a`;
    expect(await rest.eval(FLAGGED, [key], ["v1"])).toEqual([key, "v1"]);
    expect(await rest.evalsha(sha1(FLAGGED), [key], ["v2"])).toEqual([key, "v2"]);
  });

  it("answers NOSCRIPT for a flagged SHA Redis lost, and the EVAL fallback works", async () => {
    const key = `${testPrefix("kl")}:b`;
    await rest.eval(FLAGGED, [key], ["v"]);
    await server.client.script("FLUSH");
    await expect(rest.evalsha(sha1(FLAGGED), [key], ["v"])).rejects.toThrow(/NOSCRIPT/);
    expect(await rest.eval(FLAGGED, [key], ["again"])).toEqual([key, "again"]);
    expect(await rest.evalsha(sha1(FLAGGED), [key], ["sha"])).toEqual([key, "sha"]);
  });

  it("SCRIPT LOAD answers the flagged SHA, which EVALSHA then runs", async () => {
    const source = "#!lua flags=allow-key-locking\nreturn 'loaded'";
    await server.client.script("FLUSH");
    expect(await rest.scriptLoad(source)).toBe(sha1(source));
    expect(await rest.evalsha(sha1(source), ["k"], [])).toBe("loaded");
  });

  it("accepts flagged scripts inside a pipeline", async () => {
    const key = `${testPrefix("kl")}:c`;
    const p = rest.pipeline();
    p.eval(FLAGGED, [key], ["p1"]);
    p.evalsha(sha1(FLAGGED), [key], ["p2"]);
    expect(await p.exec()).toEqual([[key, "p1"], [key, "p2"]]);
  });
});

describe("lull's Upstash adapter", () => {
  it("sends the key-locking variant by default and plain with keyLocking: false", async () => {
    const layout = `${testPrefix("kl")}:layout`;
    for (const [keyLocking, want] of [[undefined, "keyLocking"], [false, "plain"]] as const) {
      const upstash = createUpstashClient({ url: gateway.url, token: TOKEN, keyLocking });
      expect(upstash.scriptVariant).toBe(want);
      const shas: string[] = [];
      const watched: RedisClient = {
        scriptVariant: upstash.scriptVariant,
        evalsha: (sha, keys, args) => {
          shas.push(sha);
          return upstash.evalsha(sha, keys, args);
        },
        eval: (source, keys, args) => upstash.eval(source, keys, args),
        close: () => upstash.close(),
      };
      await server.client.script("FLUSH");
      expect(await runScript(watched, checkLayout, [layout], [16, 1])).toEqual([
        16,
        1,
        expect.any(Number),
      ]);
      expect(await runScript(watched, checkLayout, [layout], [16, 1])).toEqual([16, 1, 0]);
      const sha = want === "keyLocking" ? checkLayout.keyLocking!.sha1 : checkLayout.sha1;
      expect(shas).toEqual([sha, sha]);
    }
    // The gateway ran the stripped script, which is exactly the plain one.
    expect(await server.client.script("EXISTS", checkLayout.sha1)).toEqual([1]);
  });
});
