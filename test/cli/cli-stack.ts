/**
 * Runs the real `lull` CLI (node bin/lull.mjs) for the CLI and README tests: `lull dev` as a
 * child in a private working directory (so its .lull/dev.json is the test's own), plus one-shot
 * commands against it. Every process started here is stopped by `stop()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../harness/redis-server.ts";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const lullBin = join(repoRoot, "bin", "lull.mjs");

/** Fast timings so a burst flushes in about a second. */
export const fastEnv: Record<string, string> = {
  LULL_WINDOW_MS: "600",
  LULL_GRACE_MS: "100",
  LULL_MAX_WAIT_MS: "5000",
  LULL_SWEEP_INTERVAL_MS: "500",
  LULL_RETRY_BASE_MS: "100",
  LULL_RETRY_MAX_MS: "500",
};

/** The environment of the test process minus anything that would point lull elsewhere. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (/^(LULL_|UPSTASH_|WHATSAPP_|TELEGRAM_|TWILIO_|SUPABASE_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

/** What `lull dev --json` prints first. */
export interface ReadyEvent {
  event: "ready";
  pid: number;
  store: string;
  functionsUrl: string;
  lullUrl: string;
  processorUrl: string;
  redisUrl: string | null;
  gatewayUrl: string | null;
  /** The outbox's Postgres (see DevState.outbox). */
  outbox?: "postgres" | "database-url" | "off";
  databaseUrl?: string | null;
  tempDir: string | null;
  secrets: Record<string, string>;
  children: { name: string; pid: number }[];
}

/** A running `lull dev`. */
export interface DevProcess {
  cwd: string;
  port: number;
  ready: ReadyEvent;
  child: ChildProcess;
  /** Everything printed on stderr so far. */
  stderr(): string;
  /** Every JSON line printed so far (events: batch, log, demo, ...). */
  events: Record<string, unknown>[];
  /** Resolves with the first event matching `pred` (already printed or future). */
  waitFor(pred: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<
    Record<string, unknown>
  >;
  /** SIGINT, then waits for exit; resolves with the exit code. */
  interrupt(): Promise<number | null>;
  /** Stops dev (if still running) and removes the working directory. */
  stop(): Promise<void>;
}

/**
 * Starts `lull dev --json --port <free>` in a fresh temp working directory, with `--no-demo`
 * unless `options.demo`.
 */
export async function startDev(
  env: Record<string, string>,
  options: { demo?: boolean; cwd?: string } = {},
): Promise<DevProcess> {
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), "lull-cli-test-"));
  const port = await freePort();
  const child = spawn(process.execPath, [
    lullBin,
    "dev",
    ...(options.demo ? [] : ["--no-demo"]),
    "--json",
    "--port",
    String(port),
  ], { cwd, env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
  const events: Record<string, unknown>[] = [];
  const waiters: { pred: (e: Record<string, unknown>) => boolean; resolve: (e: any) => void }[] =
    [];
  const stderr: string[] = [];
  let buf = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(line);
      } catch {
        e = { event: "text", line };
      }
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));

  const waitFor = (pred: (e: Record<string, unknown>) => boolean, timeoutMs = 20_000) => {
    const found = events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `lull dev: no matching event in ${timeoutMs} ms; got ${JSON.stringify(events)}\n` +
              `stderr: ${stderr.join("")}`,
          ),
        );
      }, timeoutMs);
      waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  };

  let ready: ReadyEvent;
  try {
    ready = await Promise.race([
      waitFor((e) => e.event === "ready", 120_000) as unknown as Promise<ReadyEvent>,
      exited.then((code) => {
        throw new Error(`lull dev exited (${code}) before ready: ${stderr.join("")}`);
      }),
    ]);
  } catch (err) {
    child.kill("SIGKILL");
    rmSync(cwd, { recursive: true, force: true });
    throw err;
  }

  const interrupt = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGINT");
    return await exited;
  };
  return {
    cwd,
    port,
    ready,
    child,
    events,
    waitFor,
    stderr: () => stderr.join(""),
    interrupt,
    async stop() {
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await interrupt();
      clearTimeout(timer);
      // Belt and braces: if dev died without cleaning up, its children must not outlive the test.
      for (const c of ready.children) {
        try {
          process.kill(-c.pid, "SIGKILL");
        } catch {
          // gone, as it should be
        }
      }
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

/** The result of one CLI run. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `lull <args>` to completion in `cwd`. */
export async function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliResult> {
  const child = spawn(process.execPath, [lullBin, ...args], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Whether any live process belongs to process group `pgid` (reads /proc). */
export function processGroupAlive(pgid: number): boolean {
  for (const entry of readdirSafe("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // Fields after the parenthesised command: state ppid pgrp ...
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest[0] !== "Z" && Number(rest[2]) === pgid) return true;
  }
  return false;
}

function readdirSafe(dir: string): string[] {
  try {
    return existsSync(dir) ? readdirSync(dir) : [];
  } catch {
    return [];
  }
}

/** The running stack's state file (what the other commands read). */
export function devStateFile(cwd: string): string {
  return join(cwd, ".lull", "dev.json");
}
