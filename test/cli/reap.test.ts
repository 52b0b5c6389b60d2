/**
 * A `lull dev` killed with SIGKILL cannot clean up; the next `lull dev` in that directory stops
 * its leftover children (redis-server, Deno) and temp dir before starting.
 */
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { type DevProcess, fastEnv, processGroupAlive, startDev } from "./cli-stack.ts";

describe("lull dev after a SIGKILL", () => {
  const started: DevProcess[] = [];

  afterAll(async () => {
    for (const d of started.reverse()) await d.stop();
  });

  it("the next lull dev in the directory stops the leftovers and starts cleanly", async () => {
    const first = await startDev(fastEnv);
    started.push(first);
    const exited = new Promise((r) => first.child.once("exit", r));
    first.child.kill("SIGKILL");
    await exited;
    // Nothing could clean up: the children are still there.
    for (const c of first.ready.children) expect(processGroupAlive(c.pid), c.name).toBe(true);

    const second = await startDev(fastEnv, { cwd: first.cwd });
    started.push(second);
    for (const c of first.ready.children) expect(processGroupAlive(c.pid), c.name).toBe(false);
    expect(existsSync(first.ready.tempDir!)).toBe(false);
    expect(second.stderr()).toContain("stopped leftovers of a killed lull dev");
    expect(second.ready.store).toBe("redis-server");
  });
});
