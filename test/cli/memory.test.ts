/**
 * `lull dev` on a machine without redis-server (PATH without it, no LULL_REDIS_URL/UPSTASH_*):
 * it says so, runs the functions on the in-memory store, runs the demo through every provider
 * route, still turns a burst into one batch, and the read commands reach that store through
 * the admin API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BufferEvent, StatsSnapshot } from "../../src/core/types.ts";
import { type DevProcess, fastEnv, runCli, startDev } from "./cli-stack.ts";

describe("lull dev without Redis", () => {
  let dev: DevProcess;

  beforeAll(async () => {
    dev = await startDev({ ...fastEnv, PATH: "/nonexistent" }, { demo: true });
  });

  afterAll(async () => {
    await dev?.stop();
  });

  it("falls back to the in-memory store and says so", async () => {
    expect(dev.ready.store).toBe("memory");
    expect(dev.ready.redisUrl).toBeNull();
    expect(dev.ready.gatewayUrl).toBeNull();
    expect(dev.ready.children.map((c) => c.name)).toEqual(["functions"]);
    const warning = await dev.waitFor((e) => e.event === "warning");
    expect(String(warning.message)).toContain("in-memory store");
  });

  it("runs the demo: every provider route accepts its signed webhooks, each chat is delivered", async () => {
    const demo: Record<string, unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      demo.push(await dev.waitFor((e) => e.event === "demo" && !demo.includes(e)));
    }
    expect(demo.map((e) => e.status).filter((s) => s !== 200 && s !== 202)).toEqual([]);
    for (
      const conversation of [
        "whatsapp:106540352242922:966501234567",
        "telegram:default:777000111",
        "sms:15550001111:15557654321",
        "support:1042",
      ]
    ) {
      await dev.waitFor((e) => e.event === "batch" && e.conversation === conversation);
    }
  });

  it("delivers a burst as one batch, and tail/stats read the store via the admin API", async () => {
    const conversation = `memory:${Date.now()}`;
    for (const [i, text] of ["a", "b"].entries()) {
      const res = await fetch(`${dev.ready.lullUrl}/messages`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${dev.ready.secrets.ingestToken}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ conversation, id: `x-${i}`, text }),
      });
      expect(res.status).toBe(202);
      await res.body?.cancel();
    }
    const batch = await dev.waitFor((e) => e.event === "batch" && e.conversation === conversation);
    expect(batch.texts).toEqual(["a", "b"]);

    const stats = await runCli(["stats", "--json"], { cwd: dev.cwd });
    expect(stats.stderr).toBe("");
    expect(stats.code).toBe(0);
    const snapshot = JSON.parse(stats.stdout) as StatsSnapshot;
    // The demo's 12 messages and this burst's 2.
    expect(snapshot.totals.ingested).toBe(14);

    const tail = await runCli(
      ["tail", "--json", "--no-follow", "--since", "1m", "--conversation", conversation],
      { cwd: dev.cwd },
    );
    expect(tail.code).toBe(0);
    const types = tail.stdout.trim().split("\n").map((l) => (JSON.parse(l) as BufferEvent).type);
    expect(types).toEqual(["appended", "appended", "claimed", "delivered"]);
  });
});
