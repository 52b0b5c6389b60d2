/**
 * Upstash REST vs TCP, side by side in one run on one redis-server:
 *
 * 1. Round-trip time of one `RedisStore.append` over TCP (ioredis) and over Upstash REST (the
 *    real `@upstash/redis` client -> the local gateway -> the same redis-server). The two are
 *    interleaved op by op so both see the same machine load. Locally this isolates the REST
 *    protocol's own cost (HTTP, JSON, base64); a real Upstash database adds network distance.
 * 2. Commands billed per message as Upstash counts them: every command a script runs counts,
 *    plus the EVALSHA itself. Measured with INFO commandstats deltas around single appends.
 *
 * Run: `node --import tsx bench/upstash.ts [--ops 300]` (or via bench/run.ts).
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { type BufferSettings, parseConfig } from "../src/core/config.ts";
import type { InboundMessage } from "../src/core/types.ts";
import { startUpstashGateway } from "../src/dev/upstash-gateway.ts";
import { createTcpClient } from "../src/redis/tcp-client.ts";
import { createUpstashClient } from "../src/redis/upstash-client.ts";
import { RedisStore } from "../src/store/redis-store.ts";
import { startRedisServer } from "../test/harness/redis-server.ts";

/** Latency summary of one transport, in ms. */
export interface LatencyStats {
  ops: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Commands one append costs, by case. */
export interface BilledCommands {
  case: string;
  /** All commands INFO commandstats counted, the EVALSHA included (median run). */
  total: number;
  /** Fewest and most over the runs: the first append of a day in a partition also HDELs the
   * day-8 counters, so it costs more. */
  min: number;
  max: number;
  /** Command name -> calls. */
  breakdown: Record<string, number>;
}

/** Result of {@link runUpstashBench}. */
export interface UpstashBenchResult {
  tcp: LatencyStats;
  rest: LatencyStats;
  restBase64Off: LatencyStats;
  /** REST p50 / TCP p50 (and the same for means). */
  ratioP50: number;
  ratioMean: number;
  billed: BilledCommands[];
}

const TOKEN = "bench-token";

/** DESIGN.md's defaults, with limits high enough that the run stays on the open-buffer path. */
function settings(keyPrefix: string): BufferSettings {
  return { ...parseConfig({}), keyPrefix, maxMessages: 10_000, maxBytes: 10_000_000 };
}

function stats(samples: number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    ops: sorted.length,
    meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: sorted[sorted.length - 1]!,
  };
}

/** A typical chat message: ~80 characters of text, a sender, a sentAt. */
function message(conversation: string, id: string): InboundMessage {
  return {
    conversation,
    id,
    provider: "whatsapp",
    text: `hi, I would like to order two pizzas and a salad please (message ${id})`,
    sender: "966500000000",
    sentAt: new Date().toISOString(),
    meta: {},
  };
}

/** cmdstat_<name> -> calls, from INFO commandstats. */
function parseCommandStats(info: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of info.split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Runs the benchmark. `ops` appends per transport (bounded to 2000). */
export async function runUpstashBench(
  options: { ops?: number } = {},
): Promise<UpstashBenchResult> {
  const ops = Math.max(20, Math.min(options.ops ?? 300, 2000));
  const server = await startRedisServer();
  const gateway = await startUpstashGateway({ redisUrl: server.url, token: TOKEN });
  const prefix = `bench${Date.now().toString(36)}`;
  const tcp = new RedisStore({
    client: createTcpClient({ url: server.url, timeoutMs: 5000 }),
    settings: settings(`${prefix}t`),
  });
  const rest = new RedisStore({
    client: createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000 }),
    settings: settings(`${prefix}r`),
  });
  const restPlain = new RedisStore({
    client: createUpstashClient({ url: gateway.url, token: TOKEN, timeoutMs: 5000, base64: false }),
    settings: settings(`${prefix}p`),
  });
  try {
    // Warm up: scripts loaded, connections open, JIT warm.
    for (let i = 0; i < 30; i++) {
      for (const store of [tcp, rest, restPlain]) await store.append(message("warm:1", `w${i}`));
    }

    const samples = { tcp: [] as number[], rest: [] as number[], plain: [] as number[] };
    const time = async (store: RedisStore, into: number[], m: InboundMessage) => {
      const t0 = performance.now();
      await store.append(m);
      into.push(performance.now() - t0);
    };
    for (let i = 0; i < ops; i++) {
      // 20 conversations, so buffers grow like real bursts rather than one giant list.
      const m = message(`bench:${i % 20}`, `m${i}`);
      // Rotate the order so no transport always runs first.
      const order = [
        () => time(tcp, samples.tcp, m),
        () => time(rest, samples.rest, m),
        () => time(restPlain, samples.plain, m),
      ];
      for (let j = 0; j < order.length; j++) await order[(i + j) % order.length]!();
    }

    // Commands per message. Sequential, nothing else running; INFO's own calls are excluded.
    // Each case is measured on 16 conversations; the breakdown shown is the median run's.
    const billed: BilledCommands[] = [];
    const snapshot = async () => parseCommandStats(await server.client.info("commandstats"));
    const measure = async (
      label: string,
      run: (i: number) => Promise<unknown>,
      messagesPerRun = 1,
    ) => {
      const runs: { total: number; breakdown: Record<string, number> }[] = [];
      for (let i = 0; i < 16; i++) {
        const before = await snapshot();
        await run(i);
        const after = await snapshot();
        const breakdown: Record<string, number> = {};
        let total = 0;
        for (const [name, calls] of after) {
          const delta = (calls - (before.get(name) ?? 0)) / messagesPerRun;
          if (delta > 0 && name !== "info") {
            breakdown[name] = Math.round(delta * 100) / 100;
            total += delta;
          }
        }
        total = Math.round(total * 100) / 100;
        runs.push({ total, breakdown });
      }
      const totals = runs.map((r) => r.total).sort((a, b) => a - b);
      const median = runs.find((r) => r.total === totals[Math.floor(totals.length / 2)])!;
      billed.push({
        case: label,
        total: median.total,
        min: totals[0]!,
        max: totals[totals.length - 1]!,
        breakdown: median.breakdown,
      });
    };
    await measure("first message of a burst", (i) => rest.append(message(`bill:${i}`, "b1")));
    await measure("next message of the burst", (i) => rest.append(message(`bill:${i}`, "b2")));
    await measure("redelivered (duplicate)", (i) => rest.append(message(`bill:${i}`, "b2")));
    // The whole life of a message: a burst of 5, one claim, one ack; divided by 5.
    await measure("5-burst+claim+ack, per message", async (i) => {
      const conversation = `life:${i}`;
      for (let j = 0; j < 5; j++) await rest.append(message(conversation, `l${j}`));
      const claim = await rest.claim(conversation, { force: true });
      if (claim.status !== "claimed") {
        throw new Error(`bench: expected a claim, got ${claim.status}`);
      }
      await rest.ack(conversation, claim.claim.batch.batchId, claim.claim.token);
    }, 5);

    const t = stats(samples.tcp);
    const r = stats(samples.rest);
    return {
      tcp: t,
      rest: r,
      restBase64Off: stats(samples.plain),
      ratioP50: r.p50Ms / t.p50Ms,
      ratioMean: r.meanMs / t.meanMs,
      billed,
    };
  } finally {
    await tcp.close();
    await rest.close();
    await restPlain.close();
    await gateway.close();
    await server.stop();
  }
}

/** The result as a printable table. */
export function formatUpstashBench(result: UpstashBenchResult): string {
  const f = (n: number) => n.toFixed(3).padStart(9);
  const row = (name: string, s: LatencyStats) =>
    `| ${name.padEnd(30)} | ${String(s.ops).padStart(5)} | ${f(s.meanMs)} | ${f(s.p50Ms)} | ${
      f(s.p99Ms)
    } | ${f(s.maxMs)} |`;
  const lines = [
    "RedisStore.append round trip (ms), one redis-server, interleaved",
    "| transport                      |   ops |   mean ms |    p50 ms |    p99 ms |    max ms |",
    "|--------------------------------|-------|-----------|-----------|-----------|-----------|",
    row("TCP (ioredis)", result.tcp),
    row("Upstash REST via gateway", result.rest),
    row("Upstash REST, base64 off", result.restBase64Off),
    "",
    `REST / TCP ratio: p50 ${result.ratioP50.toFixed(2)}x, mean ${result.ratioMean.toFixed(2)}x`,
    "",
    "Commands billed per message (INFO commandstats delta; script commands + the EVALSHA)",
    "| case                           | median | min-max | breakdown (median run)",
    "|--------------------------------|--------|---------|-----------------------",
    ...result.billed.map((b) =>
      `| ${b.case.padEnd(30)} | ${String(b.total).padStart(6)} | ${
        `${b.min}-${b.max}`.padStart(7)
      } | ${
        Object.entries(b.breakdown).sort(([a], [b2]) => a.localeCompare(b2))
          .map(([k, v]) => `${k}=${v}`).join(" ")
      }`
    ),
  ];
  return lines.join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const i = process.argv.indexOf("--ops");
  const ops = i > 0 ? Number(process.argv[i + 1]) : undefined;
  const result = await runUpstashBench({ ops });
  console.log(formatUpstashBench(result));
}
