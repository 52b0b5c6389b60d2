/**
 * redis-server for the chaos run: AOF with `appendfsync always` (an append Redis answered
 * survives a SIGKILL, the durability a deployment needs), SIGKILLed and restarted on the same
 * port and dir. The child is tracked in `liveChildren` so any exit path kills it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, redisServerArgs, waitForRedis } from "../src/dev/redis-launcher.ts";
import { redisServerBinary } from "../test/harness/redis-server.ts";
import { liveChildren } from "./isolates.ts";

/** The chaos run's redis-server. */
export class ChaosRedis {
  port = 0;
  readonly dir = mkdtempSync(join(tmpdir(), "lull-chaos-redis-"));
  #child: ChildProcess | null = null;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** First start on a free port. */
  async start(): Promise<void> {
    for (let attempt = 0;; attempt++) {
      this.port = await freePort();
      try {
        await this.restart();
        return;
      } catch (err) {
        if (attempt === 4) throw err;
      }
    }
  }

  /** (Re)starts on the same port and dir; resolves once PING answers (AOF loaded). */
  async restart(): Promise<void> {
    const child = spawn(redisServerBinary(), [
      ...redisServerArgs(this.port, this.dir),
      "--protected-mode",
      "no",
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--maxmemory-policy",
      "noeviction",
    ], { stdio: "ignore" });
    liveChildren.add(child);
    child.once("exit", () => liveChildren.delete(child));
    this.#child = child;
    try {
      await waitForRedis(
        this.port,
        () => child.exitCode !== null || child.signalCode !== null,
        20_000,
      );
    } catch (err) {
      child.kill("SIGKILL");
      throw err;
    }
  }

  /** SIGKILL; waits for the exit. */
  async kill(): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  }

  /** Kills it and removes its dir. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
