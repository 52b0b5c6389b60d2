/**
 * Lets the local Upstash gateway accept scripts flagged for Upstash's key-based locking
 * (`#!lua flags=allow-key-locking`, Upstash docs "Key-Based Locking") in front of a plain
 * redis-server, which rejects the flag (`ERR Unexpected flag in script shebang`).
 *
 * The flag only changes how Upstash isolates the script (its KEYS instead of the whole
 * database); a single-threaded redis-server runs every script alone anyway, so dropping the flag
 * keeps the semantics. EVAL and SCRIPT LOAD get the stripped source; the flagged SHA the client
 * computed is mapped to the stripped script's SHA for EVALSHA. An EVALSHA of a flagged SHA the
 * shim has not seen (the gateway restarted) goes through unchanged and answers NOSCRIPT, so the
 * client's EVAL fallback still works. Node-only: dev tooling.
 */
import { createHash } from "node:crypto";

/** The shebang flag Upstash reads and plain Redis refuses. */
export const KEY_LOCKING_FLAG = "allow-key-locking";

function sha1(source: string): string {
  return createHash("sha1").update(source, "utf8").digest("hex");
}

/**
 * `source` without the `allow-key-locking` shebang flag, or null when it carries none. A
 * shebang left with no parameters is dropped whole, so a flagged script becomes exactly the
 * unflagged one (same SHA, same script cache entry).
 */
export function stripKeyLockingFlag(source: string): string | null {
  const nl = source.indexOf("\n");
  const first = nl === -1 ? source : source.slice(0, nl);
  if (!first.startsWith("#!lua")) return null;
  const params = first.slice("#!lua".length).trim().split(/\s+/).filter((p) => p !== "");
  let found = false;
  const kept: string[] = [];
  for (const param of params) {
    if (!param.startsWith("flags=")) {
      kept.push(param);
      continue;
    }
    const flags = param.slice("flags=".length).split(",").filter((f) => {
      if (f !== KEY_LOCKING_FLAG) return true;
      found = true;
      return false;
    });
    if (flags.length > 0) kept.push(`flags=${flags.join(",")}`);
  }
  if (!found) return null;
  const rest = nl === -1 ? "" : source.slice(nl + 1);
  return kept.length === 0 ? rest : `#!lua ${kept.join(" ")}\n${rest}`;
}

/** What to send to Redis for one client command, and how to turn the reply back. */
export interface ShimmedCommand {
  command: string[];
  /** SCRIPT LOAD answers the SHA of what was loaded; the client expects its flagged SHA. */
  reply?: string;
}

/** Rewrites flagged scripts on their way to a plain redis-server (one per gateway). */
export class KeyLockingShim {
  /** Flagged SHA -> SHA of the stripped script Redis caches. */
  private readonly shas = new Map<string, string>();

  /** The command to send to Redis instead of `command` (unchanged when nothing is flagged). */
  toRedis(command: string[]): ShimmedCommand {
    const name = command[0]!.toUpperCase();
    if ((name === "EVAL" || name === "EVAL_RO") && command.length > 1) {
      const stripped = this.strip(command[1]!);
      if (stripped === null) return { command };
      return { command: [command[0]!, stripped.source, ...command.slice(2)] };
    }
    if ((name === "EVALSHA" || name === "EVALSHA_RO") && command.length > 1) {
      const mapped = this.shas.get(command[1]!.toLowerCase());
      if (mapped === undefined) return { command };
      return { command: [command[0]!, mapped, ...command.slice(2)] };
    }
    if (name === "SCRIPT" && command.length > 2) {
      const sub = command[1]!.toUpperCase();
      if (sub === "LOAD") {
        const stripped = this.strip(command[2]!);
        if (stripped === null) return { command };
        return { command: [command[0]!, command[1]!, stripped.source], reply: stripped.flaggedSha };
      }
      if (sub === "EXISTS") {
        const shas = command.slice(2).map((s) => this.shas.get(s.toLowerCase()) ?? s);
        return { command: [command[0]!, command[1]!, ...shas] };
      }
    }
    return { command };
  }

  private strip(source: string): { source: string; flaggedSha: string } | null {
    const stripped = stripKeyLockingFlag(source);
    if (stripped === null) return null;
    const flaggedSha = sha1(source);
    this.shas.set(flaggedSha, sha1(stripped));
    return { source: stripped, flaggedSha };
  }
}
