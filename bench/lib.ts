/**
 * Shared pieces of `npm run bench`: spread summaries (min/median/max), latency percentiles,
 * Redis INFO readers (commandstats deltas as Upstash bills them, used_memory), and a capturing
 * client that records the script call a store method makes without running it.
 */
import { parseConfig } from "../src/core/config.ts";
import { type InboundMessage } from "../src/core/types.ts";
import type { RedisClient } from "../src/redis/redis-client.ts";
import type { LuaScript } from "../src/scripts/generated.ts";

/** min / median / max of repeated measurements. */
export interface Spread {
  min: number;
  median: number;
  max: number;
  n: number;
}

/** Spread of a list of numbers (n >= 1). */
export function spread(values: number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length % 2 === 1
    ? s[(s.length - 1) / 2]!
    : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { min: s[0]!, median: mid, max: s[s.length - 1]!, n: s.length };
}

/** The q-quantile (0..1) of samples, nearest rank. */
export function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** Anything that can send a raw command (the TCP adapter's `command`, ioredis' `call`). */
export type SendCommand = (name: string, ...args: (string | number)[]) => Promise<unknown>;

/** Calls per command from `INFO commandstats`. */
export async function commandStats(send: SendCommand): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of String(await send("INFO", "commandstats")).split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * Commands Redis executed between two snapshots, as Upstash bills them: every command inside a
 * script plus the EVALSHA/EVAL itself. The INFO calls of the measurement are not counted.
 */
export function billedDelta(
  before: Map<string, number>,
  after: Map<string, number>,
): { total: number; byCommand: Record<string, number> } {
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const [command, calls] of after) {
    if (command === "info") continue;
    const d = calls - (before.get(command) ?? 0);
    if (d > 0) {
      byCommand[command] = d;
      total += d;
    }
  }
  return { total, byCommand };
}

/** Counts the commands `work` makes Redis run. */
export async function countCommands(
  send: SendCommand,
  work: () => Promise<unknown>,
): Promise<{ total: number; byCommand: Record<string, number> }> {
  const before = await commandStats(send);
  await work();
  return billedDelta(before, await commandStats(send));
}

/** `used_memory` in bytes. */
export async function usedMemory(send: SendCommand): Promise<number> {
  const m = /used_memory:(\d+)/.exec(String(await send("INFO", "memory")));
  return Number(m![1]);
}

/** One recorded script call. */
export interface ScriptCall {
  sha1: string;
  source?: string;
  keys: string[];
  args: (string | number)[];
}

/** Raised by the capturing client so the store method stops after recording. */
class Captured extends Error {}

/**
 * A client that records the first call of `target` and refuses it, so `store.append(m)` reveals
 * the exact EVALSHA it sends (whatever the scripts are at run time) without running it. Every
 * other script (the store's one-time layout check before its first call) goes to `passThrough`
 * and really runs: capturing "the first call" instead would record that check, not the append.
 */
export function capturingClient(
  target: LuaScript,
  passThrough: RedisClient,
): { client: RedisClient; take(): ScriptCall } {
  let last: ScriptCall | undefined;
  const client: RedisClient = {
    evalsha(sha1, keys, args) {
      if (sha1 !== target.sha1) return passThrough.evalsha(sha1, keys, args);
      last = { sha1, keys: [...keys], args: [...args] };
      return Promise.reject(new Captured("captured"));
    },
    eval(source, keys, args) {
      if (source !== target.source) return passThrough.eval(source, keys, args);
      last = { sha1: target.sha1, source, keys: [...keys], args: [...args] };
      return Promise.reject(new Captured("captured"));
    },
    close: async () => {},
  };
  return {
    client,
    take() {
      if (!last) throw new Error(`no ${target.name} call captured`);
      const c = last;
      last = undefined;
      return c;
    },
  };
}

/** A chat message of the bench: ~170 B encoded, like the measurement. */
export function benchMessage(conversation: string, id: string): InboundMessage {
  return {
    conversation,
    id,
    provider: "whatsapp",
    text: "hi, I would like to order a pizza",
    sender: "966500000000",
    sentAt: "2026-11-22T10:00:00.000Z",
    meta: {},
  };
}

/** Runs `op(i)` for i in [0, total) with `concurrency` in flight; returns ops per second. */
export async function throughput(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) await op(next++);
  }));
  return total / ((performance.now() - start) / 1000);
}

/** Shuffles in place (Fisher-Yates) so no contender always runs first. */
export function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `env` as this checkout's parseConfig accepts it. Older commits, which `--baseline` measures,
 * required a live-data TTL (LULL_BUFFER_TTL_MS) above the max wait, a variable later code rejects
 * as removed: it is added only where the code asks for it. Any other problem is left for the
 * caller's own parse to report.
 */
export function compatibleEnv(env: Record<string, string>): Record<string, string> {
  try {
    parseConfig(env);
    return env;
  } catch (error) {
    if (!String(error).includes("LULL_BUFFER_TTL_MS (")) return env;
    return { ...env, LULL_BUFFER_TTL_MS: String(4 * 3_600_000) };
  }
}
