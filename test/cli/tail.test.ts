/**
 * `lull tail --json` against a running `lull dev`: sees the events of a burst live and in order
 * (appended x3, claimed, delivered), with the conversation masked by default.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maskConversation } from "../../src/core/mask.ts";
import type { BufferEvent } from "../../src/core/types.ts";
import { cleanEnv, type DevProcess, fastEnv, lullBin, runCli, startDev } from "./cli-stack.ts";

async function post(dev: DevProcess, conversation: string, id: string, text: string) {
  const res = await fetch(`${dev.ready.lullUrl}/messages`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${dev.ready.secrets.ingestToken}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ conversation, id, text }),
  });
  expect(res.status).toBe(202);
  await res.body?.cancel();
}

describe("lull tail", () => {
  let dev: DevProcess;

  beforeAll(async () => {
    dev = await startDev(fastEnv);
  });

  afterAll(async () => {
    await dev?.stop();
  });

  it("follows a burst live, in order, masked by default", async () => {
    const conversation = `support:${Date.now()}`;
    const other = `other:${Date.now()}`;
    const since = new Date(Date.now() - 1000).toISOString();
    const tail = spawn(process.execPath, [
      lullBin,
      "tail",
      "--json",
      "--since",
      since,
      "--interval",
      "100",
      "--conversation",
      conversation,
    ], { cwd: dev.cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    const events: BufferEvent[] = [];
    let stdout = "";
    let stderr = "";
    let delivered: () => void = () => {};
    const sawDelivered = new Promise<void>((resolve) => (delivered = resolve));
    tail.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    tail.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      const lines = stdout.split("\n");
      stdout = lines.pop() ?? "";
      for (const line of lines) {
        const ev = JSON.parse(line) as BufferEvent;
        events.push(ev);
        if (ev.type === "delivered") delivered();
      }
    });
    const exited = new Promise<number | null>((resolve) => tail.once("exit", (c) => resolve(c)));
    try {
      await post(dev, conversation, "m-1", "first");
      await post(dev, other, "o-1", "not mine");
      await post(dev, conversation, "m-2", "second");
      await post(dev, conversation, "m-3", "third");
      await Promise.race([
        sawDelivered,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`no delivered event; stderr: ${stderr}`)), 20_000)
        ),
      ]);
    } finally {
      tail.kill("SIGINT");
    }
    expect(await exited).toBe(0);

    expect(events.map((e) => e.type)).toEqual([
      "appended",
      "appended",
      "appended",
      "claimed",
      "delivered",
    ]);
    expect(events.slice(0, 3).map((e) => e.fields.id)).toEqual(["m-1", "m-2", "m-3"]);
    // Stream ids increase: the order is the stream's, not the printer's.
    const ids = events.map((e) => e.id.split("-").map(Number) as [number, number]);
    for (let i = 1; i < ids.length; i++) {
      const [a, b] = [ids[i - 1]!, ids[i]!];
      expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])).toBe(true);
    }
    // Masked: the raw key never appears, only its masked form.
    for (const e of events) {
      expect(e.conversation).toBe(maskConversation(conversation, false));
      expect(JSON.stringify(e)).not.toContain(conversation);
    }
  });

  it("--no-follow --event prints what matched so far and exits", async () => {
    const conversation = `filter:${Date.now()}`;
    await post(dev, conversation, "f-1", "x");
    const result = await runCli(
      ["tail", "--json", "--no-follow", "--since", "1m", "--event", "appended"],
      { cwd: dev.cwd },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const events = result.stdout.trim().split("\n").map((l) => JSON.parse(l) as BufferEvent);
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(["appended"]));
    expect(events.map((e) => e.conversation)).toContain(maskConversation(conversation, false));
  });

  it("rejects an unknown event type with exit code 2", async () => {
    const result = await runCli(["tail", "--event", "nonsense"], { cwd: dev.cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown event type");
  });
});
