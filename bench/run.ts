/**
 * `npm run bench [-- --quick]`: lull against its contenders, in one run, on private
 * redis-servers this process starts (never 6379). Not part of `npm test`.
 *
 * Writes bench/results/<timestamp>.json, docs/BENCHMARKS.md and docs/bench-chart.svg. Every
 * ratio is min/median/max over >= 3 repetitions, contenders interleaved (order shuffled per
 * round), with os.loadavg() recorded before and after. Counts are INFO commandstats deltas (as
 * Upstash bills: every command inside a script plus the EVALSHA), never hard-coded, so the
 * bench measures whatever the scripts are when it runs.
 *
 * Flags: `--quick` (fewer ops, shorter phases); `--only=race,http` runs just those parts (any of
 * race, commands, memory, lateness, http, http-db, idle, sweeps) for fast iteration: a partial run
 * writes its JSON (suffixed `-partial`) and prints its ratios, never docs/BENCHMARKS.md.
 * `--connections=16,64` picks the HTTP connection counts (default 1,16,64).
 * `--baseline=<commit>` also measures that commit with this same bench code (bench/baseline.ts),
 * part by part, the two sides alternating in shuffled order, and adds a before/after table.
 * `--baseline-label=<text>` says in the table what that commit was.
 * `--json-out=<file>` writes the JSON there and nothing else (how the baseline runs its sides).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startRedisServer } from "../test/harness/redis-server.ts";
import { httpRace, idleCost } from "./http-bench.ts";
import type { SendCommand } from "./lib.ts";
import { runBothSides } from "./baseline.ts";
import { renderChart, renderMarkdown, renderPartial } from "./report.ts";
import { commandCosts, flushLateness, memoryCost, raceAppends, sweepCost } from "./redis-bench.ts";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const quick = process.argv.includes("--quick");

export const PARTS = [
  "race",
  "commands",
  "memory",
  "lateness",
  "http",
  "http-db",
  "idle",
  "sweeps",
] as const;
export type Part = (typeof PARTS)[number];

function flagValue(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const onlyFlag = flagValue("only");
const only = new Set<Part>(
  onlyFlag === undefined ? PARTS : onlyFlag.split(",").map((p) => {
    if (!(PARTS as readonly string[]).includes(p)) {
      throw new Error(`--only: unknown part '${p}' (expected ${PARTS.join(", ")})`);
    }
    return p as Part;
  }),
);
const partial = only.size < PARTS.length;
const httpConnections = (flagValue("connections") ?? "1,16,64").split(",").map(Number);

/** Everything one run measured. */
export type RunReport = Awaited<ReturnType<typeof runAll>>;
/** The JSON file: one run, and with `--baseline`, the baseline commit's run beside it. */
export type BenchReport = RunReport & { baseline?: RunReport; baselineLabel?: string };

function git(...args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/**
 * Runs `work` with a private PostgreSQL holding lull's migrations (the test harness's), or with
 * none where the tree measured has no such harness (the baseline's may predate it).
 */
async function withPostgres<T>(work: (databaseUrl: string | undefined) => Promise<T>): Promise<T> {
  let harness: {
    startPostgresServer(): Promise<{ url: string; stop(): Promise<void> }>;
  };
  try {
    harness = await import("../test/harness/postgres-server.ts");
  } catch (error) {
    if ((error as { code?: string }).code !== "ERR_MODULE_NOT_FOUND") throw error;
    return await work(undefined);
  }
  const pg = await harness.startPostgresServer();
  try {
    return await work(pg.url);
  } finally {
    await pg.stop();
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
    // A part left out by --only is absent (undefined) in the JSON; the docs need all of them.
    const part = async <T>(name: Part, title: string, run: () => Promise<T>): Promise<T> => {
      if (!only.has(name)) return undefined as T;
      step(title);
      return await run();
    };
    const race = await part(
      "race",
      "append race: lull vs raw EVALSHA, BullMQ, naive (c1, c32)",
      // The race is short and noisy on shared cores (one pair of runs can differ 2x): more
      // repetitions steady its medians.
      () =>
        raceAppends(server.url, {
          reps: quick ? reps : 3 * reps,
          ops: quick ? 600 : 2000,
          concurrencies: [1, 32],
        }),
    );
    const commands = await part(
      "commands",
      "commands per message / duplicate / burst life",
      () => withPostgres((databaseUrl) => commandCosts(server.url, reps, databaseUrl)),
    );
    const memory = await part(
      "memory",
      "memory per buffered message",
      () => memoryCost(server.url, reps, quick ? 2000 : 10_000),
    );
    const lateness = await part("lateness", "flush lateness (timer, sweep only)", async () => [
      await flushLateness(server.url, "timer", 40, reps),
      await flushLateness(server.url, "sweep", 40, reps),
    ]);
    const http = await part(
      "http",
      "HTTP: lull function vs bare Deno.serve, with and without a flush storm",
      () =>
        httpRace(server.url, {
          reps,
          connections: httpConnections,
          phaseMs: quick ? 800 : 1500,
          stormConversations: quick ? 300 : 1000,
        }),
    );
    // The same as deployed on Supabase, where the function always has a database: the outbox
    // (its per-message "rows pending?" check), lull.wakeup and the wake index.
    const httpDatabase = await part(
      "http-db",
      "HTTP with a database (as deployed): lull function vs bare Deno.serve",
      () =>
        withPostgres(async (databaseUrl) =>
          databaseUrl === undefined ? undefined : await httpRace(server.url, {
            reps,
            connections: httpConnections,
            phaseMs: quick ? 800 : 1500,
            stormConversations: quick ? 300 : 1000,
            databaseUrl,
          })
        ),
    );
    const idle = await part(
      "idle",
      "idle cost of lull dev --no-demo",
      () => idleCost(server.url, send, quick ? 20 : 60),
    );
    const sweeps = await part(
      "sweeps",
      "sweep cost by open buffers",
      () => sweepCost(server.url, quick ? [1000, 10_000] : [1000, 10_000, 100_000], reps),
    );
    return {
      measuredAt: new Date(started).toISOString(),
      commit: git("rev-parse", "HEAD"),
      commitSubject: git("log", "-1", "--format=%s"),
      dirty: git("status", "--porcelain", "--", "src", "supabase") !== "",
      quick,
      parts: [...only],
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
      lateness,
      http,
      httpDatabase,
      idle,
    };
  } finally {
    await server.stop();
  }
}

const baselineRef = flagValue("baseline");
const jsonOut = flagValue("json-out");
const report: BenchReport = baselineRef === undefined ? await runAll() : await runBothSides({
  repoRoot,
  ref: baselineRef,
  parts: [...only],
  // Everything but the orchestration flags goes to both sides.
  passThrough: process.argv.slice(2).filter((a) =>
    !a.startsWith("--baseline") && !a.startsWith("--only=") && !a.startsWith("--json-out=") &&
    a !== "--write-docs"
  ),
});
report.baselineLabel = flagValue("baseline-label");
report.wallSeconds = Math.round((Date.now() - Date.parse(report.measuredAt)) / 1000);
if (jsonOut !== undefined) {
  writeFileSync(jsonOut, JSON.stringify(report) + "\n");
  process.exit(0);
}
const stamp = report.measuredAt.replace(/[:.]/g, "-");
mkdirSync(join(repoRoot, "bench", "results"), { recursive: true });
const suffix = `${quick ? "-quick" : ""}${partial ? "-partial" : ""}`;
const jsonPath = join(repoRoot, "bench", "results", `${stamp}${suffix}.json`);
writeFileSync(jsonPath, JSON.stringify(report, null, 2) + "\n");
if (partial) {
  console.log(renderPartial(report));
} else {
  if (!quick || process.argv.includes("--write-docs")) {
    writeFileSync(join(repoRoot, "docs", "bench-chart.svg"), renderChart(report));
    writeFileSync(join(repoRoot, "docs", "BENCHMARKS.md"), renderMarkdown(report, jsonPath));
  }
  console.log(renderMarkdown(report, jsonPath));
}
console.log(`\nwrote ${jsonPath} (${report.wallSeconds} s)`);
