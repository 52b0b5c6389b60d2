/**
 * Keeps the README honest: every shell block marked `<!-- readme-test: run -->` runs, in order,
 * against a real `lull dev` whose processor is the README's own example (examples/processor.ts,
 * served by Deno). The example in the README must be the file verbatim, must type-check with
 * Deno, and must verify signatures for real.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { freePort } from "../harness/redis-server.ts";
import { signDelivery } from "../../src/delivery/signature.ts";
import type { Batch } from "../../src/core/types.ts";
import { createProcessor } from "../../examples/processor.ts";
import { exportedVariables } from "../../src/cli/commands/env.ts";
import type { DevState } from "../../src/dev/dev-state.ts";
import { envSchema } from "../../src/core/config.ts";
import {
  cleanEnv,
  type DevProcess,
  fastEnv,
  lullBin,
  repoRoot,
  startDev,
} from "../cli/cli-stack.ts";

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const deno = join(repoRoot, "node_modules", ".bin", "deno");

/** The fenced block right after each occurrence of `marker`. */
function blocksAfter(marker: string): { info: string; body: string }[] {
  const out: { info: string; body: string }[] = [];
  let at = readme.indexOf(marker);
  while (at >= 0) {
    const m = /^```(\w*)\n([\s\S]*?)^```$/m.exec(readme.slice(at + marker.length));
    if (!m) throw new Error(`no code block after ${marker}`);
    out.push({ info: m[1]!, body: m[2]! });
    at = readme.indexOf(marker, at + marker.length);
  }
  return out;
}

describe("README examples", () => {
  const runBlocks = blocksAfter("<!-- readme-test: run -->");
  let dev: DevProcess;
  let processor: ChildProcess;
  let processorOut = "";
  const secret = "readme-test-processor-secret";

  beforeAll(async () => {
    const port = await freePort();
    processor = spawn(deno, ["run", "--allow-net", "--allow-env", "examples/processor.ts"], {
      cwd: repoRoot,
      env: cleanEnv({ PORT: String(port), LULL_PROCESSOR_SECRET: secret }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    processor.stdout!.setEncoding("utf8").on("data", (c: string) => (processorOut += c));
    processor.stderr!.setEncoding("utf8").on("data", (c: string) => (processorOut += c));
    dev = await startDev({
      ...fastEnv,
      // Long enough for the README's consecutive `npx lull send`s to share a burst.
      LULL_WINDOW_MS: "2000",
      LULL_PROCESSOR_URL: `http://127.0.0.1:${port}/`,
      LULL_PROCESSOR_SECRET: secret,
    });
    // `npx lull` resolves the bin from the working directory's node_modules, as in a project
    // that depends on lull.
    mkdirSync(join(dev.cwd, "node_modules", ".bin"), { recursive: true });
    symlinkSync(lullBin, join(dev.cwd, "node_modules", ".bin", "lull"));
  });

  afterAll(async () => {
    await dev?.stop();
    if (processor && processor.exitCode === null) {
      const exited = new Promise((r) => processor.once("exit", r));
      processor.kill("SIGKILL");
      await exited;
    }
  });

  it("marks at least the quick start, admin and CLI blocks", () => {
    expect(runBlocks.length).toBeGreaterThanOrEqual(3);
    for (const b of runBlocks) expect(b.info).toBe("sh");
  });

  // Seven CLI runs in a row: on a loaded two-core machine that alone can take most of a minute.
  it(
    "every marked shell block runs against the stack; the burst reaches the example processor as one batch",
    {
      timeout: 180_000,
    },
    async () => {
      const state = JSON.parse(
        readFileSync(join(dev.cwd, ".lull", "dev.json"), "utf8"),
      ) as DevState;
      // As if the reader ran `eval "$(npx lull env)"` once in their shell.
      const env = cleanEnv(exportedVariables(state));
      const outputs: string[] = [];
      for (const [i, block] of runBlocks.entries()) {
        const r = spawnSync("bash", ["-euo", "pipefail", "-c", block.body], {
          cwd: dev.cwd,
          env,
          encoding: "utf8",
          timeout: 120_000,
        });
        expect(r.status, `README block ${i + 1} failed:\n${block.body}\n${r.stdout}\n${r.stderr}`)
          .toBe(0);
        outputs.push(r.stdout);
        if (i === 0) {
          // The quick start's three messages: accepted, then delivered together.
          expect(r.stdout.match(/"accepted":1/g)).toHaveLength(3);
          const deadline = Date.now() + 20_000;
          while (!processorOut.includes("support:42") && Date.now() < deadline) {
            await new Promise((res) => setTimeout(res, 100));
          }
          expect(processorOut).toContain("support:42 (quiet): message 1\nmessage 2\nmessage 3");
        }
      }
      expect(outputs.join("\n")).toContain("support:7");
      // spawnSync blocked the event loop: let the processor's buffered output arrive.
      const deadline = Date.now() + 20_000;
      while (!processorOut.includes("support:7") && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 100));
      }
      // Delivered in arrival order (one batch, or two if the sends were a window apart).
      const lines = processorOut.split("\n");
      const hello = lines.findIndex((l) => l.startsWith("support:7 (") && l.endsWith("hello"));
      expect(hello).toBeGreaterThanOrEqual(0);
      expect(lines.slice(hello + 1).some((l) => l.endsWith("are you there?"))).toBe(true);
      // The example verified every delivery: none were rejected.
      expect(processorOut).not.toContain("burst failed");
    },
  );

  it("shows examples/processor.ts verbatim, and it type-checks with Deno", () => {
    const [block] = blocksAfter("<!-- readme-test: file examples/processor.ts -->");
    expect(block?.body).toBe(readFileSync(join(repoRoot, "examples", "processor.ts"), "utf8"));
    const check = spawnSync(deno, ["check", "examples/processor.ts"], {
      cwd: repoRoot,
      encoding: "utf8",
    });
    expect(check.status, check.stderr).toBe(0);
  });

  it("the example processor verifies, dedupes by batchId and asks for a retry on failure", async () => {
    const handled: string[] = [];
    let fail = false;
    const handler = createProcessor({
      secrets: `new-secret,${secret}`,
      handleBurst: async (batch) => {
        if (fail) throw new Error("agent down");
        handled.push(batch.batchId);
      },
    });
    const batch: Batch = {
      batchId: "b-1",
      conversation: "support:42",
      fence: 1,
      attempt: 1,
      reason: "quiet",
      degraded: false,
      firstAt: new Date().toISOString(),
      lastAt: new Date().toISOString(),
      text: "hi",
      messages: [{
        id: "m-1",
        provider: "generic",
        text: "hi",
        receivedAt: new Date().toISOString(),
        attachments: [],
        meta: {},
      }],
    };
    const send = async (body: string, signature: string) =>
      await handler(
        new Request("http://processor/", {
          method: "POST",
          headers: { "content-type": "application/json", "x-lull-signature": signature },
          body,
        }),
      );
    const body = JSON.stringify(batch);
    const now = Math.floor(Date.now() / 1000);
    expect((await send(body, await signDelivery(secret, body, now))).status).toBe(200);
    expect((await send(body, await signDelivery(secret, body, now))).status).toBe(200);
    expect(handled).toEqual(["b-1"]);
    expect((await send(body, await signDelivery("wrong", body, now))).status).toBe(401);
    expect((await send(body + " ", await signDelivery(secret, body, now))).status).toBe(401);
    expect((await send(body, await signDelivery(secret, body, now - 3600))).status).toBe(401);
    fail = true;
    const other = JSON.stringify({ ...batch, batchId: "b-2" });
    // The example logs the failure; keep the test output clean.
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    const failed = await send(other, await signDelivery(secret, other, now));
    quiet.mockRestore();
    expect(failed.status).toBe(503);
    expect(failed.headers.get("retry-after")).toBe("5");
  });

  it("the config table names every variable the schema reads", () => {
    const table = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Routes"));
    for (const variable of Object.keys(envSchema.shape)) {
      expect(table, variable).toContain(`\`${variable}\``);
    }
  });

  it("every test the guarantees point at exists, with the quoted test names", () => {
    const section = readme.slice(
      readme.indexOf("## Guarantees"),
      readme.indexOf("## Configuration"),
    );
    const refs = [...section.matchAll(/`(test\/[^`]+\.test\.ts)`(?: \("([^"]+)"\))?/g)];
    expect(refs.length).toBeGreaterThan(10);
    for (const [, file, name] of refs) {
      const path = join(repoRoot, file!);
      expect(existsSync(path), file).toBe(true);
      // Abbreviated names (with …) are checked by their first words.
      if (name) {
        expect(readFileSync(path, "utf8"), `${file}: ${name}`).toContain(name.split(" …")[0]);
      }
    }
  });
});
