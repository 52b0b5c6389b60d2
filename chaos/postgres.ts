/**
 * A private PostgreSQL 15 for the chaos run, so the durable outbox (LULL_DATABASE_URL) is
 * exercised once the core has it. Binaries from /usr/lib/postgresql/15/bin (not on PATH);
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` user via setpriv
 * (which execs, so the tracked pid is the postmaster itself). Stopped with SIGQUIT (immediate
 * shutdown: the postmaster takes its backends down with it).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../src/dev/redis-launcher.ts";

const BIN = "/usr/lib/postgresql/15/bin";

/** Every postmaster started here (the run's exit handler SIGQUITs them). */
export const livePostgres = new Set<ChildProcess>();

/** The chaos run's PostgreSQL. */
export class ChaosPostgres {
  port = 0;
  readonly dir = mkdtempSync(join(tmpdir(), "lull-chaos-pg-"));
  #child: ChildProcess | null = null;

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** The command prefix that runs a binary as `postgres` when we are root. */
  #asPostgres(): string[] {
    if (process.getuid?.() !== 0) return [];
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"];
  }

  /** initdb, then start on a free port; resolves once it accepts connections. */
  async start(): Promise<void> {
    const data = join(this.dir, "data");
    mkdirSync(data);
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
      const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
      chownSync(this.dir, uid, gid);
      chownSync(data, uid, gid);
    }
    const prefix = this.#asPostgres();
    const run = (bin: string, args: string[]) => {
      const cmd = [...prefix, join(BIN, bin), ...args];
      return { cmd: cmd[0]!, args: cmd.slice(1) };
    };
    const init = run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"]);
    const r = spawnSync(init.cmd, init.args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`initdb failed: ${r.stderr || r.stdout}`);
    this.port = await freePort();
    const pg = run("postgres", [
      "-D",
      data,
      "-p",
      String(this.port),
      "-h",
      "127.0.0.1",
      "-k",
      this.dir,
      "-c",
      "fsync=on",
    ]);
    const child = spawn(pg.cmd, pg.args, { stdio: "ignore" });
    livePostgres.add(child);
    child.once("exit", () => livePostgres.delete(child));
    this.#child = child;
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error("postgres exited during start-up");
      const ready = spawnSync(join(BIN, "pg_isready"), [
        "-h",
        "127.0.0.1",
        "-p",
        String(this.port),
      ]);
      if (ready.status === 0) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error("postgres did not accept connections within 20 s");
  }

  /** Immediate shutdown, then removes the data dir. */
  async stop(): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (c && c.exitCode === null && c.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => c.kill("SIGKILL"), 5_000);
        c.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
        c.kill("SIGQUIT");
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SIGQUITs every postmaster still running (synchronous, for exit handlers). */
export function quitAllPostgres(): void {
  for (const c of livePostgres) {
    try {
      c.kill("SIGQUIT");
    } catch {
      // already gone
    }
  }
}
