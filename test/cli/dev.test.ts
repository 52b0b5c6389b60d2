/**
 * `npm start` equivalent: `lull dev --no-demo` on a free port starts its own redis-server,
 * gateway and Deno functions; a burst posted through the real generic route arrives at the
 * example processor as ONE batch, in order; SIGINT leaves no process, temp dir or state file.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type DevProcess,
  devStateFile,
  fastEnv,
  processGroupAlive,
  runCli,
  startDev,
} from "./cli-stack.ts";

describe("lull dev", () => {
  let dev: DevProcess;

  beforeAll(async () => {
    dev = await startDev(fastEnv);
  });

  afterAll(async () => {
    await dev?.stop();
  });

  it("starts redis-server + gateway + functions and writes .lull/dev.json", () => {
    expect(dev.ready.store).toBe("redis-server");
    expect(dev.ready.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(dev.ready.redisUrl).not.toMatch(/:6379$/);
    expect(dev.ready.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(dev.ready.lullUrl).toBe(`http://127.0.0.1:${dev.port}/functions/v1/lull`);
    expect(dev.ready.children.map((c) => c.name).sort()).toEqual([
      "functions",
      "postgres",
      "redis-server",
    ]);
    // A private PostgreSQL for the outbox, migrated, handed to the functions.
    expect(dev.ready.outbox).toBe("postgres");
    expect(dev.ready.databaseUrl).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    expect(dev.ready.databaseUrl).not.toMatch(/:5432\//);
    expect(existsSync(dev.ready.tempDir!)).toBe(true);
    const state = JSON.parse(readFileSync(devStateFile(dev.cwd), "utf8"));
    expect(state.secrets.ingestToken).toBe(dev.ready.secrets.ingestToken);
    // The functions reach Redis through the gateway, as they reach Upstash deployed.
    expect(state.env.UPSTASH_REDIS_REST_URL).toBe(dev.ready.gatewayUrl);
    expect(state.env.LULL_REDIS_URL).toBeUndefined();
    expect(state.env.LULL_DATABASE_URL).toBe(dev.ready.databaseUrl);
  });

  it("turns a burst posted to the generic route into one batch at the processor", async () => {
    const conversation = `dev-test:${Date.now()}`;
    const texts = ["hi", "I want", "pizza"];
    for (const [i, text] of texts.entries()) {
      const res = await fetch(`${dev.ready.lullUrl}/messages`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${dev.ready.secrets.ingestToken}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ conversation, id: `m-${i}`, text }),
      });
      expect(res.status).toBe(202);
      await res.body?.cancel();
    }
    const batch = await dev.waitFor((e) => e.event === "batch" && e.conversation === conversation);
    expect(batch.texts).toEqual(texts);
    expect(batch.reason).toBe("quiet");
    // Exactly one batch for the burst.
    await new Promise((r) => setTimeout(r, 1500));
    expect(dev.events.filter((e) => e.event === "batch" && e.conversation === conversation))
      .toHaveLength(1);
  });

  it("lull send posts through the running stack and its message is delivered", async () => {
    const sent = await runCli(
      ["send", "--json", "--conversation", "dev-test:send", "hello from the CLI"],
      { cwd: dev.cwd },
    );
    expect(sent.stderr).toBe("");
    expect(sent.code).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ accepted: 1, duplicates: 0 });
    const batch = await dev.waitFor((e) =>
      e.event === "batch" && e.conversation === "dev-test:send"
    );
    expect(batch.texts).toEqual(["hello from the CLI"]);
  });

  it("refuses a second lull dev in the same directory, and a port already taken", async () => {
    const same = await runCli(["dev", "--no-demo", "--port", String(dev.port)], { cwd: dev.cwd });
    expect(same.code).toBe(1);
    expect(same.stderr).toContain(`another lull dev (pid ${dev.ready.pid})`);
    const other = mkdtempSync(join(tmpdir(), "lull-cli-test-"));
    try {
      const taken = await runCli(["dev", "--no-demo", "--port", String(dev.port)], { cwd: other });
      expect(taken.code).toBe(1);
      expect(taken.stderr).toContain(`port ${dev.port} is in use`);
      expect(existsSync(devStateFile(other))).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("stops every child, the temp dir and the state file on SIGINT", async () => {
    const code = await dev.interrupt();
    expect(code).toBe(0);
    for (const child of dev.ready.children) {
      expect(existsSync(`/proc/${child.pid}`), `${child.name} still running`).toBe(false);
      expect(processGroupAlive(child.pid), `${child.name}'s group still alive`).toBe(false);
    }
    expect(existsSync(dev.ready.tempDir!)).toBe(false);
    expect(existsSync(devStateFile(dev.cwd))).toBe(false);
    expect(dev.events.at(-1)).toEqual({ event: "stopped" });
  });
});
