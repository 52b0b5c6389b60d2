/**
 * `npm run bench [-- --quick]`: lull against its contenders, in one run, on private
 * redis-servers this process starts (never 6379). Not part of `npm test`.
 *
 * Writes bench/results/<timestamp>.json, docs/BENCHMARKS.md and docs/bench-chart.svg. Every
 * ratio is min/median/max over >= 3 repetitions, contenders interleaved (order shuffled per
 * round), with os.loadavg() recorded before and after. Counts are INFO commandstats deltas (as
 * Upstash bills: every command inside a script plus the EVALSHA), never hard-coded, so the
 * bench measures whatever the scripts are when it runs.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startRedisServer } from "../test/harness/redis-server.ts";
import { httpRace, idleCost } from "./http-bench.ts";
import type { SendCommand } from "./lib.ts";
import { renderChart, renderMarkdown } from "./report.ts";
import { commandCosts, flushLateness, memoryCost, raceAppends, sweepCost } from "./redis-bench.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const quick = process.argv.includes("--quick");

/** Everything one run measured (the JSON file). */
export type BenchReport = Awaited<ReturnType<typeof runAll>>;

function git(...args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

async function runAll() {
  const started = Date.now();
  const loadBefore = loadavg();
  const reps = 3;
  const step = (name: string) =>
    console.log(`[bench ${((Date.now() - started) / 1000).toFixed(0)}s] ${name}`);
  const server = await startRedisServer();
  const send: SendCommand = (name, ...args) => server.client.call(name, ...args.map(String));
  try {
    step("append race: lull vs raw EVALSHA, BullMQ, naive (c1, c32)");
    const race = await raceAppends(server.url, {
      reps,
      ops: quick ? 600 : 2000,
      concurrencies: [1, 32],
    });
    step("commands per message / duplicate / burst life");
    const commands = await commandCosts(server.url, reps);
    step("memory per buffered message");
    const memory = await memoryCost(server.url, reps, quick ? 2000 : 10_000);
    step("flush lateness (timer, sweep only)");
    const latenessTimer = await flushLateness(server.url, "timer", 40);
    const latenessSweep = await flushLateness(server.url, "sweep", 40);
    step("HTTP: lull function vs bare Deno.serve, with and without a flush storm");
    const http = await httpRace(server.url, {
      reps,
      connections: [1, 16, 64],
      phaseMs: quick ? 800 : 1500,
      stormConversations: quick ? 300 : 1000,
    });
    step("idle cost of lull dev --no-demo");
    const idle = await idleCost(server.url, send, quick ? 20 : 60);
    step("sweep cost by open buffers");
    const sweeps = await sweepCost(
      server.url,
      quick ? [1000, 10_000] : [1000, 10_000, 100_000],
      reps,
    );
    return {
      measuredAt: new Date(started).toISOString(),
      commit: git("rev-parse", "HEAD"),
      commitSubject: git("log", "-1", "--format=%s"),
      dirty: git("status", "--porcelain", "--", "src", "supabase") !== "",
      quick,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? "unknown",
        node: process.version,
        redis: String(await send("INFO", "server")).match(/redis_version:(\S+)/)?.[1] ?? "?",
        loadavgBefore: loadBefore,
        loadavgAfter: loadavg(),
      },
      wallSeconds: 0,
      race,
      commands,
      memory,
      sweeps,
      lateness: [latenessTimer, latenessSweep],
      http,
      idle,
    };
  } finally {
    await server.stop();
  }
}

const report = await runAll();
report.wallSeconds = Math.round((Date.now() - Date.parse(report.measuredAt)) / 1000);
const stamp = report.measuredAt.replace(/[:.]/g, "-");
mkdirSync(join(repoRoot, "bench", "results"), { recursive: true });
const jsonPath = join(repoRoot, "bench", "results", `${stamp}${quick ? "-quick" : ""}.json`);
writeFileSync(jsonPath, JSON.stringify(report, null, 2) + "\n");
if (!quick || process.argv.includes("--write-docs")) {
  writeFileSync(join(repoRoot, "docs", "bench-chart.svg"), renderChart(report));
  writeFileSync(join(repoRoot, "docs", "BENCHMARKS.md"), renderMarkdown(report, jsonPath));
}
console.log(renderMarkdown(report, jsonPath));
console.log(`\nwrote ${jsonPath} (${report.wallSeconds} s)`);
