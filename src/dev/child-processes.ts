/**
 * Children of `lull dev`. Each is spawned as the leader of its own process group, so stopping
 * it signals the group and also reaches anything it spawned (Deno workers, shells). Stopping is
 * SIGTERM, then SIGKILL after a grace period, and waits for the exit so nothing outlives dev.
 */
import { type ChildProcess, spawn, type SpawnOptions } from "node:child_process";

/** A child process started by dev. */
export interface ManagedChild {
  name: string;
  pid: number;
  process: ChildProcess;
  /** Resolves with the exit code (or signal name) when the child exits. */
  exited: Promise<number | string>;
}

/** Spawns `command` as a new process-group leader with piped stdout/stderr. */
export function spawnChild(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions = {},
): ManagedChild {
  const child = spawn(command, args, {
    ...options,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  // A missing binary surfaces as an 'error' event; unhandled, it would crash dev.
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  if (child.pid === undefined) {
    throw new Error(`could not start ${name} (${command})${spawnError ? `: ${spawnError}` : ""}`);
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  return { name, pid: child.pid, process: child, exited };
}

/** Sends `signal` to the child's whole process group; ignores groups already gone. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Whether any process of group `pgid` is still alive (signal 0 is a probe). */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Stops a child and its group: SIGTERM, then SIGKILL after `graceMs`, then waits until no
 * process of the group is left.
 */
export async function stopChild(child: ManagedChild, graceMs = 3000): Promise<void> {
  signalGroup(child.pid, "SIGTERM");
  const timedOut = Symbol("timeout");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    child.exited,
    new Promise<symbol>((resolve) => {
      timer = setTimeout(() => resolve(timedOut), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === timedOut) signalGroup(child.pid, "SIGKILL");
  await child.exited;
  // The leader exited; grandchildren of the group may still be winding down.
  for (let i = 0; i < 50 && groupAlive(child.pid); i++) {
    if (i === 10) signalGroup(child.pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Calls `onLine` for each line the stream emits (the last partial line is flushed at end).
 */
export function eachLine(
  stream: NodeJS.ReadableStream | null,
  onLine: (line: string) => void,
): void {
  if (!stream) return;
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    pending += chunk;
    let nl = pending.indexOf("\n");
    while (nl >= 0) {
      onLine(pending.slice(0, nl).replace(/\r$/, ""));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
    }
  });
  stream.on("end", () => {
    if (pending !== "") onLine(pending);
    pending = "";
  });
}
