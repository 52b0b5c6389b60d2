/**
 * The TCP adapter against a real redis-server: error mapping (timeout vs unavailable), fail-fast
 * while Redis is down, and reconnecting on its own when it comes back.
 */
import { describe, expect, it, vi } from "vitest";
import { RedisTimeoutError, RedisUnavailableError } from "../../src/core/errors.ts";
import { createTcpClient } from "../../src/redis/tcp-client.ts";
import { getTime } from "../../src/scripts/generated.ts";
import { useRedisServer } from "../harness/redis-server.ts";

const server = useRedisServer();

describe("createTcpClient", () => {
  it("a call made right after creation waits for the connection instead of failing", async () => {
    const client = createTcpClient({ url: server.url });
    expect(typeof await client.eval(getTime.source, [], [])).toBe("number");
    await client.ping();
    await client.close();
  });

  it("error replies come back as the server's message (NOSCRIPT for an unknown sha)", async () => {
    const client = createTcpClient({ url: server.url });
    await expect(client.evalsha("0".repeat(40), [], [])).rejects.toThrow(/^NOSCRIPT/);
    await client.close();
  });

  it("no answer within timeoutMs: RedisTimeoutError", async () => {
    const client = createTcpClient({ url: server.url, timeoutMs: 150 });
    await client.ping();
    const admin = server.client.duplicate();
    await admin.call("CLIENT", "PAUSE", "400", "ALL");
    const err = await client.evalsha(getTime.sha1, [], []).catch((e) => e);
    expect(err).toBeInstanceOf(RedisTimeoutError);
    admin.disconnect();
    await client.close();
  });

  it("concurrent calls share one deadline interval: no timer per call", async () => {
    const client = createTcpClient({ url: server.url, timeoutMs: 5_000 });
    await client.ping();
    const setTimeoutSpy = vi.spyOn(globalThis, "setTimeout");
    const setIntervalSpy = vi.spyOn(globalThis, "setInterval");
    try {
      const replies = await Promise.all(
        Array.from({ length: 200 }, () => client.eval(getTime.source, [], [])),
      );
      expect(replies.every((r) => typeof r === "number")).toBe(true);
      expect(setTimeoutSpy.mock.calls.length).toBeLessThan(10);
      expect(setIntervalSpy.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      setTimeoutSpy.mockRestore();
      setIntervalSpy.mockRestore();
      await client.close();
    }
  });

  it("connection lost with a command in flight: RedisTimeoutError (it may have run)", async () => {
    const client = createTcpClient({ url: server.url, timeoutMs: 5_000 });
    await client.ping();
    const admin = server.client.duplicate();
    await admin.call("CLIENT", "PAUSE", "5000", "ALL");
    const pending = client.eval(getTime.source, [], []).catch((e) => e);
    await new Promise((r) => setTimeout(r, 50)); // let it reach the server
    await server.kill();
    const err = await pending;
    expect(err).toBeInstanceOf(RedisTimeoutError);
    admin.disconnect();

    // While Redis is down calls fail fast as unavailable, not after the timeout.
    const down = await client.ping().catch((e) => e);
    expect(down).toBeInstanceOf(RedisUnavailableError);

    // It reconnects by itself when Redis is back.
    await server.start();
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await client.ping().then(() => true, () => false);
      if (!ok) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ok).toBe(true);
    await client.close();
  });

  it("after close, calls fail as unavailable", async () => {
    const client = createTcpClient({ url: server.url });
    await client.ping();
    await client.close();
    await expect(client.ping()).rejects.toBeInstanceOf(RedisUnavailableError);
  });

  it("an unreachable server: RedisUnavailableError without waiting for timeoutMs", async () => {
    const client = createTcpClient({ url: "redis://127.0.0.1:1", timeoutMs: 60_000 });
    const err = await client.ping().catch((e) => e);
    expect(err).toBeInstanceOf(RedisUnavailableError);
    await client.close();
  });
});
