/**
 * Serves the Supabase functions on real Deno (src/dev/serve-functions.ts) for end-to-end tests:
 * spawns node_modules/.bin/deno with the permissions the functions need, waits for its
 * `listening <url>` line, and kills it on stop. The child's stdout lines are kept so tests can
 * read the example processor's `{"msg":"batch"}` lines and the function's logs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./redis-server.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A running functions server. */
export interface FunctionsServer {
  /** e.g. http://127.0.0.1:41234/functions/v1 */
  baseUrl: string;
  /** e.g. http://127.0.0.1:41234/functions/v1/lull */
  lullUrl: string;
  port: number;
  /** Every line the child printed so far (stdout and stderr). */
  lines: string[];
  stop(): Promise<void>;
  /** SIGKILL, as a platform recycling an isolate mid-work does: no shutdown, no waitUntil. */
  kill(): Promise<void>;
}

/** Options of {@link startFunctions}. */
export interface StartFunctionsOptions {
  /** The functions' environment (LULL_*); PATH, HOME and DENO_DIR are added. */
  env: Record<string, string>;
  /** @default a free port */
  port?: number;
  /** @default 60000 */
  startTimeoutMs?: number;
}

/** Starts `deno run src/dev/serve-functions.ts --port <port>`. */
export async function startFunctions(options: StartFunctionsOptions): Promise<FunctionsServer> {
  const port = options.port ?? await freePort();
  const deno = join(repoRoot, "node_modules", ".bin", "deno");
  const env: Record<string, string> = { ...options.env, NO_COLOR: "1" };
  for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  const child: ChildProcess = spawn(deno, [
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-sys",
    join(repoRoot, "src", "dev", "serve-functions.ts"),
    "--port",
    String(port),
  ], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });

  const lines: string[] = [];
  let ready: ((url: string) => void) | undefined;
  const listening = new Promise<string>((resolve) => (ready = resolve));
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let buf = "";
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const m = /^listening (\S+)/.exec(line);
        if (m) ready?.(m[1]!);
      }
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code))
  );

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  };

  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exited;
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    listening,
    exited.then((code) => ({ exited: code })),
    new Promise<{ timeout: true }>((resolve) => {
      timer = setTimeout(() => resolve({ timeout: true }), options.startTimeoutMs ?? 60_000);
    }),
  ]);
  clearTimeout(timer);
  if (typeof outcome !== "string") {
    await stop();
    throw new Error(
      `functions server did not start (${JSON.stringify(outcome)}):\n${lines.join("\n")}`,
    );
  }
  return { baseUrl: outcome, lullUrl: `${outcome}/lull`, port, lines, stop, kill };
}
