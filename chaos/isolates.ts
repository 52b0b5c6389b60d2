/**
 * The isolates: separate `deno` processes, each serving supabase/functions/lull (through
 * src/dev/serve-functions.ts, as `lull dev` and the e2e tests do) on its own 127.0.0.1 port,
 * all behind the same Redis. A slot keeps its port across restarts; each start is a new
 * generation with its own processor path, so deliveries are attributed to the process that
 * made them. Every child is tracked so the run can SIGKILL whatever is left on any exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../src/dev/redis-launcher.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Every child process the run started and has not seen exit (for the emergency cleanup). */
export const liveChildren = new Set<ChildProcess>();

/** SIGKILLs every tracked child; safe to call from an exit handler (synchronous). */
export function killAllChildren(): void {
  for (const c of liveChildren) {
    try {
      c.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** One isolate slot. */
export interface IsolateSlot {
  slot: number;
  port: number;
  generation: number;
  /** `<slot>.<generation>`, the processor path segment of the current process. */
  name: string;
  /** `http://127.0.0.1:<port>/functions/v1/lull`, or null while the slot is down. */
  lullUrl: string | null;
  child: ChildProcess | null;
  /** Times this slot's process exited without being killed by the run. */
  unexpectedExits: number;
}

/** Options of {@link IsolatePool}. */
export interface IsolatePoolOptions {
  count: number;
  /** The lull environment (LULL_*) without LULL_PROCESSOR_URL. */
  env: Record<string, string>;
  /** `${processorUrl}/iso/<name>` becomes each process's LULL_PROCESSOR_URL. */
  processorUrl: string;
  /** Where each slot's stdout/stderr go (`isolate-<slot>.log`). */
  logDir: string;
  log: (line: string) => void;
  /** Every line a process prints, with its name (the run picks breaker events out of them). */
  onLine?: (name: string, line: string) => void;
}

/** Starts, kills and restarts the isolates. */
export class IsolatePool {
  readonly slots: IsolateSlot[] = [];
  readonly #options: IsolatePoolOptions;
  readonly #logs = new Map<number, WriteStream>();
  #stopping = false;

  constructor(options: IsolatePoolOptions) {
    this.#options = options;
  }

  /** Starts every slot. */
  async start(): Promise<void> {
    for (let slot = 0; slot < this.#options.count; slot++) {
      const s: IsolateSlot = {
        slot,
        port: await freePort(),
        generation: 0,
        name: "",
        lullUrl: null,
        child: null,
        unexpectedExits: 0,
      };
      this.slots.push(s);
      this.#logs.set(slot, createWriteStream(join(this.#options.logDir, `isolate-${slot}.log`)));
    }
    await Promise.all(this.slots.map((s) => this.restart(s)));
  }

  /** URLs of the slots that are up. */
  live(): IsolateSlot[] {
    return this.slots.filter((s) => s.lullUrl !== null);
  }

  /** The slot whose current process is `name`. */
  byName(name: string): IsolateSlot | undefined {
    return this.slots.find((s) => s.name === name && s.child !== null);
  }

  /** SIGKILLs the slot's process and waits for it to be gone. */
  async kill(s: IsolateSlot): Promise<void> {
    const c = s.child;
    s.lullUrl = null;
    s.child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  }

  /** Starts a new generation in the slot (on its port; a new port if that one is taken). */
  async restart(s: IsolateSlot): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (this.#stopping) return;
      s.generation++;
      s.name = `${s.slot}.${s.generation}`;
      try {
        await this.#spawn(s);
        return;
      } catch (err) {
        this.#options.log(`isolate ${s.name} did not start (${String(err)}); retrying`);
        s.port = await freePort();
      }
    }
    throw new Error(`isolate slot ${s.slot} could not be started`);
  }

  async #spawn(s: IsolateSlot): Promise<void> {
    const deno = join(repoRoot, "node_modules", ".bin", "deno");
    const env: Record<string, string> = {
      ...this.#options.env,
      LULL_PROCESSOR_URL: `${this.#options.processorUrl}/iso/${s.name}`,
      NO_COLOR: "1",
    };
    for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    const child = spawn(deno, [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      join(repoRoot, "src", "dev", "serve-functions.ts"),
      "--port",
      String(s.port),
    ], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
    liveChildren.add(child);
    const log = this.#logs.get(s.slot)!;
    log.write(`--- generation ${s.name} pid ${child.pid} port ${s.port}\n`);
    let ready: (() => void) | undefined;
    const listening = new Promise<void>((resolve) => (ready = resolve));
    let buf = "";
    const name = s.name;
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      buf += chunk.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (ready && line.startsWith("listening ")) {
          ready();
          ready = undefined;
        }
        this.#options.onLine?.(name, line);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    const exited = new Promise<string>((resolve) =>
      child.once("exit", (code, signal) => {
        liveChildren.delete(child);
        resolve(`exit ${code ?? signal}`);
      })
    );
    void exited.then((how) => {
      log.write(`--- generation ${s.name} ${how}\n`);
      if (s.child === child) {
        // Died on its own (not killed by the run): count it and bring the slot back.
        s.unexpectedExits++;
        s.child = null;
        s.lullUrl = null;
        this.#options.log(`isolate ${s.name} exited unexpectedly (${how}); restarting`);
        if (!this.#stopping) void this.restart(s).catch(() => {});
      }
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      listening.then(() => "ok"),
      exited,
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve("timeout"), 30_000))),
    ]);
    clearTimeout(timer);
    if (outcome !== "ok") {
      child.kill("SIGKILL");
      throw new Error(`isolate ${s.name}: ${outcome}`);
    }
    s.child = child;
    s.lullUrl = `http://127.0.0.1:${s.port}/functions/v1/lull`;
  }

  /** Stops every slot (SIGKILL: nothing to flush politely in a chaos run). */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.slots.map((s) => this.kill(s)));
    for (const l of this.#logs.values()) l.end();
  }
}
