/**
 * Ctrl-C with lull dev's output in a pipe (`npm start 2>&1 | tee dev.log`): the terminal sends
 * SIGINT to the whole foreground process group, so `tee` dies at the same moment and every
 * later write of lull dev hits a closed pipe. It must still stop redis-server and the functions
 * and remove .lull/dev.json.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../harness/redis-server.ts";
import { cleanEnv, devStateFile, fastEnv, lullBin, processGroupAlive } from "./cli-stack.ts";

const cwd = mkdtempSync(join(tmpdir(), "lull-pipe-"));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  for (const start = Date.now(); !check(); await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() - start > timeoutMs) throw new Error("timed out");
  }
}

describe("lull dev in a pipe", () => {
  it("SIGINT to the process group of `lull dev 2>&1 | tee dev.log` leaves nothing behind", {
    timeout: 150_000,
  }, async () => {
    const port = await freePort();
    const shell = spawn("sh", [
      "-c",
      `"${process.execPath}" "${lullBin}" dev --no-demo --port ${port} 2>&1 | tee dev.log`,
    ], { cwd, env: cleanEnv(fastEnv), detached: true, stdio: "ignore" });
    const exited = new Promise((resolve) => shell.once("exit", resolve));
    const stateFile = devStateFile(cwd);
    try {
      // Ctrl-C once the stack is up: the state file is written during start-up, before the
      // banner (a SIGINT in between is start-up's own path, and tee is gone before it reports).
      const log = join(cwd, "dev.log");
      await until(
        () =>
          existsSync(stateFile) && existsSync(log) &&
          readFileSync(log, "utf8").includes("lull dev"),
        120_000,
      );
      const state = JSON.parse(readFileSync(stateFile, "utf8"));
      expect(state.children.map((c: { name: string }) => c.name)).toContain("redis-server");
      // Like Ctrl-C in a terminal: the whole group (sh, lull dev, tee) gets SIGINT at once.
      process.kill(-shell.pid!, "SIGINT");
      await exited;
      // tee is gone; lull dev keeps running until its cleanup is done.
      await until(() => !existsSync(stateFile), 20_000).catch(() => {});
      for (const child of state.children as { name: string; pid: number }[]) {
        await until(() => !processGroupAlive(child.pid), 20_000).catch(() => {});
        expect(processGroupAlive(child.pid), `${child.name} still running`).toBe(false);
      }
      expect(existsSync(stateFile)).toBe(false);
      expect(existsSync(state.tempDir)).toBe(false);
      expect(readFileSync(log, "utf8")).toContain("lull dev");
    } finally {
      try {
        process.kill(-shell.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }
  });
});
