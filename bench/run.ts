/**
 * `npm run bench`: the cost of buffering one message, on one private redis-server, in one run.
 *
 * 1. Latency: RedisStore.append vs a plain single RPUSH over the same TCP adapter, interleaved
 *    op by op so both see the same machine load (p50/p99, appends/s sequential), plus
 *    throughput with 32 appends in flight.
 * 2. Round trips per append: EVALSHA/EVAL calls counted by wrapping the client (must be 1).
 * 3. Redis commands executed per appended message: INFO commandstats deltas (commands run inside
 *    the script count, the EVALSHA itself too), per command.
 * 4. Then the Upstash REST comparison (bench/upstash.ts) unless `--no-upstash`.
 *
 * Bounded: a few thousand ops, well under 30 s. `--ops N` changes the interleaved op count.
 */
import { performance } from "node:perf_hooks";
import { type BufferSettings, parseConfig } from "../src/core/config.ts";
import type { InboundMessage } from "../src/core/types.ts";
import type { RedisClient } from "../src/redis/redis-client.ts";
import { createTcpClient } from "../src/redis/tcp-client.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import { startRedisServer } from "../test/harness/redis-server.ts";

/** Latency summary in ms. */
export interface Latency {
  ops: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Sequential ops per second (1000 / mean). */
  perSecond: number;
}

/** What one bench run measured. */
export interface BenchResult {
  append: Latency;
  rpush: Latency;
  /** append p50 / RPUSH p50. */
  ratioP50: number;
  /** Appends per second with 32 in flight. */
  concurrentAppendsPerSecond: number;
  /** EVALSHA + EVAL calls per append (NOSCRIPT fallbacks would show here). */
  roundTripsPerAppend: number;
  /** Commands per appended message, by command, from INFO commandstats deltas. */
  commandsPerMessage: { command: string; perMessage: number }[];
  commandsPerMessageTotal: number;
  /** Same for a redelivered (duplicate) message. */
  commandsPerDuplicate: number;
}

/** DESIGN.md's defaults, never full: the steady "append to an open buffer" path is measured. */
function settings(keyPrefix: string): BufferSettings {
  return { ...parseConfig({}), keyPrefix, maxMessages: 100_000, maxBytes: 64 * 1024 * 1024 };
}

function message(i: number): InboundMessage {
  return {
    conversation: `whatsapp:9665${String(i % 200).padStart(8, "0")}`,
    id: `wamid.${i}`,
    provider: "whatsapp",
    text: "hi, I would like to order a pizza",
    sender: "966500000000",
    sentAt: "2026-11-22T10:00:00.000Z",
    meta: {},
  };
}

function summarize(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const meanMs = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { ops: samples.length, meanMs, p50Ms: at(0.5), p99Ms: at(0.99), perSecond: 1000 / meanMs };
}

function commandStats(info: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of info.split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Runs the benchmark on a private redis-server. */
export async function runBench(options: { ops?: number } = {}): Promise<BenchResult> {
  const ops = Math.max(100, Math.min(options.ops ?? 3000, 10_000));
  const server = await startRedisServer();
  const tcp = createTcpClient({ url: server.url, timeoutMs: 5000 });
  let scriptCalls = 0;
  const counting: RedisClient = {
    evalsha: (sha, keys, args) => {
      scriptCalls++;
      return tcp.evalsha(sha, keys, args);
    },
    eval: (src, keys, args) => {
      scriptCalls++;
      return tcp.eval(src, keys, args);
    },
    close: () => tcp.close(),
  };
  const prefix = `bench${Date.now().toString(36)}`;
  const store = new RedisStore({ client: counting, settings: settings(prefix) });
  try {
    let next = 0;
    // Warm-up: load the script (first call may NOSCRIPT -> EVAL), JIT, connections.
    for (let i = 0; i < 200; i++) {
      await store.append(message(next++));
      await tcp.command("RPUSH", `${prefix}:plain`, "warm");
    }

    // 1 + 2: interleaved latency and round trips.
    scriptCalls = 0;
    const appendMs: number[] = [];
    const rpushMs: number[] = [];
    const payload = JSON.stringify(message(0));
    for (let i = 0; i < ops; i++) {
      let t = performance.now();
      await store.append(message(next++));
      appendMs.push(performance.now() - t);
      t = performance.now();
      await tcp.command("RPUSH", `${prefix}:plain:${i % 200}`, payload);
      rpushMs.push(performance.now() - t);
    }
    const roundTripsPerAppend = scriptCalls / ops;

    // Throughput with 32 appends in flight.
    const concurrentOps = Math.min(ops, 2000);
    const start = performance.now();
    let issued = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (issued < concurrentOps) {
          issued++;
          await store.append(message(next++));
        }
      }),
    );
    const concurrentAppendsPerSecond = concurrentOps / ((performance.now() - start) / 1000);

    // 3: commands per message (new messages into open buffers, then duplicates).
    const measured = 200;
    const before = commandStats(String(await tcp.command("INFO", "commandstats")));
    for (let i = 0; i < measured; i++) await store.append(message(next++));
    const after = commandStats(String(await tcp.command("INFO", "commandstats")));
    const commandsPerMessage = [...after.entries()]
      .filter(([command]) => command !== "info")
      .map(([command, calls]) => ({
        command,
        perMessage: (calls - (before.get(command) ?? 0)) / measured,
      }))
      .filter((c) => c.perMessage > 0)
      .sort((a, b) => b.perMessage - a.perMessage || a.command.localeCompare(b.command));
    const commandsPerMessageTotal = commandsPerMessage.reduce((n, c) => n + c.perMessage, 0);

    const dupBefore = commandStats(String(await tcp.command("INFO", "commandstats")));
    for (let i = 0; i < measured; i++) await store.append(message(next - 1 - i));
    const dupAfter = commandStats(String(await tcp.command("INFO", "commandstats")));
    let dupTotal = 0;
    for (const [command, calls] of dupAfter) {
      if (command !== "info") dupTotal += calls - (dupBefore.get(command) ?? 0);
    }

    const append = summarize(appendMs);
    const rpush = summarize(rpushMs);
    return {
      append,
      rpush,
      ratioP50: append.p50Ms / rpush.p50Ms,
      concurrentAppendsPerSecond,
      roundTripsPerAppend,
      commandsPerMessage,
      commandsPerMessageTotal,
      commandsPerDuplicate: dupTotal / measured,
    };
  } finally {
    await store.close();
    await server.stop();
  }
}

/** The result as a readable table. */
export function formatBench(r: BenchResult): string {
  const f = (n: number, w = 9, d = 3) => n.toFixed(d).padStart(w);
  const row = (name: string, l: Latency) =>
    `| ${name.padEnd(28)} | ${String(l.ops).padStart(5)} | ${f(l.meanMs)} | ${f(l.p50Ms)} | ${
      f(l.p99Ms)
    } | ${f(l.perSecond, 9, 0)} |`;
  return [
    "Buffering one message, TCP (ioredis), one local redis-server, interleaved op by op",
    "| operation                    |   ops |   mean ms |    p50 ms |    p99 ms |    ops/s |",
    "|------------------------------|-------|-----------|-----------|-----------|----------|",
    row("RedisStore.append (1 script)", r.append),
    row("plain RPUSH", r.rpush),
    "",
    `append / RPUSH p50 ratio: ${r.ratioP50.toFixed(2)}x`,
    `appends/s with 32 in flight: ${r.concurrentAppendsPerSecond.toFixed(0)}`,
    `Redis round trips per append (EVALSHA+EVAL calls): ${r.roundTripsPerAppend.toFixed(3)}`,
    "",
    "Redis commands executed per appended message (INFO commandstats delta, steady state)",
    "| command          | per message |",
    "|------------------|-------------|",
    ...r.commandsPerMessage.map((c) => `| ${c.command.padEnd(16)} | ${f(c.perMessage, 11, 2)} |`),
    `| ${"total".padEnd(16)} | ${f(r.commandsPerMessageTotal, 11, 2)} |`,
    "",
    `commands per duplicate (redelivered) message: ${r.commandsPerDuplicate.toFixed(2)}`,
  ].join("\n");
}

const isMain = process.argv[1] !== undefined &&
  import.meta.url === (await import("node:url")).pathToFileURL(process.argv[1]).href;
if (isMain) {
  const i = process.argv.indexOf("--ops");
  const ops = i > 0 ? Number(process.argv[i + 1]) : undefined;
  const started = performance.now();
  console.log(formatBench(await runBench({ ops })));
  if (!process.argv.includes("--no-upstash")) {
    const { runUpstashBench, formatUpstashBench } = await import("./upstash.ts");
    console.log("");
    console.log(formatUpstashBench(await runUpstashBench({ ops: 300 })));
  }
  console.log(`\nbench took ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
