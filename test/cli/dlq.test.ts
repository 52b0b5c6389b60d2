/**
 * The DLQ commands against a real stack (`lull dev` with LULL_PROCESSOR_URL pointing at a test
 * processor): a batch the processor rejects permanently lands in the DLQ; `lull dlq requeue`
 * moves it back and the next sweep delivers it, whole and in order.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Batch, DeadLetter } from "../../src/core/types.ts";
import { type DevProcess, fastEnv, runCli, startDev } from "./cli-stack.ts";

/** A processor whose answer the test sets; it records every batch it is sent. */
function startProcessor() {
  const received: Batch[] = [];
  const state = { status: 400 };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      received.push(JSON.parse(body) as Batch);
      res.writeHead(state.status, { "content-type": "application/json" });
      res.end(JSON.stringify(state.status === 200 ? { ok: true } : { error: "rejected" }));
    });
  });
  return new Promise<{ url: string; received: Batch[]; state: typeof state; server: Server }>(
    (resolve) => {
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo;
        resolve({ url: `http://127.0.0.1:${port}/`, received, state, server });
      });
    },
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("lull dlq", () => {
  let dev: DevProcess;
  let processor: Awaited<ReturnType<typeof startProcessor>>;

  beforeAll(async () => {
    processor = await startProcessor();
    dev = await startDev({ ...fastEnv, LULL_PROCESSOR_URL: processor.url });
  });

  afterAll(async () => {
    await dev?.stop();
    await new Promise((r) => processor?.server.close(r));
  });

  it("requeue moves a dead batch back and it gets delivered", async () => {
    const conversation = `dlq-test:${Date.now()}`;
    for (const [i, text] of ["one", "two"].entries()) {
      const res = await fetch(`${dev.ready.lullUrl}/messages`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${dev.ready.secrets.ingestToken}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ conversation, id: `d-${i}`, text }),
      });
      expect(res.status).toBe(202);
      await res.body?.cancel();
    }

    // 400 is permanent: the whole batch goes straight to the DLQ.
    const listed = await until("the dead letter", async () => {
      const r = await runCli(["dlq", "list", "--json", "--show-pii"], { cwd: dev.cwd });
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as (DeadLetter & { size: number })[])
        .find((d) => d.conversation === conversation);
    });
    expect(listed.size).toBe(2);
    expect(listed.lastError).toMatch(/400/);
    const full = await runCli(["dlq", "show", listed.batchId, "--json", "--show-pii"], {
      cwd: dev.cwd,
    });
    const dead = JSON.parse(full.stdout) as DeadLetter;
    expect(dead.messages.map((m) => m.text)).toEqual(["one", "two"]);

    const shown = await runCli(["dlq", "show", dead.batchId, "--json"], { cwd: dev.cwd });
    expect(shown.code).toBe(0);
    const masked = JSON.parse(shown.stdout) as DeadLetter;
    expect(masked.batchId).toBe(dead.batchId);
    expect(masked.messages.map((m) => m.text)).toEqual(["<3 chars>", "<3 chars>"]);
    expect(shown.stdout).not.toContain(conversation);

    const stats = await runCli(["stats", "--json"], { cwd: dev.cwd });
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ dlqSize: 1, totals: { dead: 1 } });

    processor.state.status = 200;
    const requeued = await runCli(["dlq", "requeue", dead.batchId], { cwd: dev.cwd });
    expect(requeued.stderr, requeued.stderr).toBe("");
    expect(requeued.code).toBe(0);

    const delivered = await until(
      "the requeued delivery",
      async () =>
        processor.received.find((b) => b.batchId === dead.batchId && b.reason === "requeue"),
    );
    expect(delivered.conversation).toBe(conversation);
    expect(delivered.messages.map((m) => m.text)).toEqual(["one", "two"]);

    const after = await runCli(["dlq", "list", "--json"], { cwd: dev.cwd });
    expect(JSON.parse(after.stdout)).toEqual([]);

    // Gone from the DLQ: a second requeue is a failure (exit 1), not a usage error.
    const again = await runCli(["dlq", "requeue", dead.batchId], { cwd: dev.cwd });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("not in the dead-letter queue");
  }, 120_000); // a dozen CLI start-ups and a few sweeps; slow on a loaded 2-core machine

  it("purge refuses without a terminal unless --yes (exit 2), then empties the DLQ", async () => {
    processor.state.status = 422;
    const conversation = `dlq-purge:${Date.now()}`;
    const res = await fetch(`${dev.ready.lullUrl}/messages`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${dev.ready.secrets.ingestToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ conversation, id: "p-1", text: "doomed" }),
    });
    expect(res.status).toBe(202);
    await res.body?.cancel();
    await until("the dead letter", async () => {
      const r = await runCli(["dlq", "list", "--json"], { cwd: dev.cwd });
      return (JSON.parse(r.stdout) as DeadLetter[]).length === 1 ? true : undefined;
    });

    const refused = await runCli(["dlq", "purge"], { cwd: dev.cwd });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--yes");

    const purged = await runCli(["dlq", "purge", "--yes", "--json"], { cwd: dev.cwd });
    expect(purged.code).toBe(0);
    expect(JSON.parse(purged.stdout)).toEqual({ deleted: 1 });
    const after = await runCli(["dlq", "list", "--json"], { cwd: dev.cwd });
    expect(JSON.parse(after.stdout)).toEqual([]);
  }, 120_000); // a dozen CLI start-ups and a few sweeps; slow on a loaded 2-core machine
});
