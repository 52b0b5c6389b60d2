/**
 * `npm run bench -- --baseline=<commit>`: the before/after of one bench run. The commit is
 * checked out into a temporary git worktree that gets this checkout's bench code (bench/*.ts) and
 * node_modules, so both sides are measured by the same code; only src/, supabase/ and the
 * scripts differ. Each part (race, commands, ...) runs once per side, as its own
 * `bench/run.ts --only=<part> --json-out=<file>` process with its own redis-server, the two
 * sides alternating in an order shuffled per part, so slow drift of the shared machine's load
 * does not favour one side. The worktree is removed afterwards.
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { shuffle } from "./lib.ts";
import type { Part, RunReport } from "./run.ts";

/** The report field a part's result goes in (its own name, but for `http-db`). */
function partField(part: Part): string {
  return part === "http-db" ? "httpDatabase" : part;
}

/** What {@link runBothSides} needs. */
export interface BothSidesOptions {
  repoRoot: string;
  /** The baseline commit (anything `git rev-parse` accepts). */
  ref: string;
  parts: Part[];
  /** Flags for both sides (`--quick`, `--connections=...`). */
  passThrough: string[];
}

type Side = "baseline" | "current";

/** Measures every part on both sides; answers the current side with `baseline` beside it. */
export async function runBothSides(
  options: BothSidesOptions,
): Promise<RunReport & { baseline: RunReport }> {
  const { repoRoot, parts, passThrough } = options;
  const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", args, { cwd, encoding: "utf8" }).trim();
  const commit = git(repoRoot, "rev-parse", "--verify", `${options.ref}^{commit}`);
  const scratch = mkdtempSync(join(tmpdir(), "lull-bench-baseline-"));
  const tree = join(scratch, "tree");
  git(repoRoot, "worktree", "add", "--detach", tree, commit);
  try {
    symlinkSync(join(repoRoot, "node_modules"), join(tree, "node_modules"), "dir");
    for (const file of readdirSync(join(repoRoot, "bench"))) {
      if (file.endsWith(".ts")) {
        copyFileSync(join(repoRoot, "bench", file), join(tree, "bench", file));
      }
    }
    const cwd: Record<Side, string> = { baseline: tree, current: repoRoot };
    const shortCommit: Record<Side, string> = {
      baseline: commit.slice(0, 10),
      current: git(repoRoot, "rev-parse", "--short=10", "HEAD"),
    };
    const results: Record<Side, Partial<RunReport>[]> = { baseline: [], current: [] };
    const started = new Date().toISOString();
    for (const part of parts) {
      for (const side of shuffle<Side>(["baseline", "current"])) {
        const out = join(scratch, `${side}-${part}.json`);
        console.log(`[bench ${side} ${shortCommit[side]}] ${part}`);
        await runPart(cwd[side], part, out, passThrough);
        results[side].push(JSON.parse(readFileSync(out, "utf8")) as Partial<RunReport>);
      }
    }
    const current = merge(results.current, parts, started);
    return { ...current, baseline: merge(results.baseline, parts, started) };
  } finally {
    try {
      git(repoRoot, "worktree", "remove", "--force", tree);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
}

/** One side's one part, as its own process (its own redis-server, as a plain run would start). */
function runPart(cwd: string, part: Part, out: string, passThrough: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "bench/run.ts", `--only=${part}`, `--json-out=${out}`, ...passThrough],
      { cwd, stdio: ["ignore", "inherit", "inherit"] },
    );
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`bench part '${part}' in ${cwd} ended with ${signal ?? code}`));
    });
  });
}

/** One report from per-part runs: each part's figures from its run, machine load spanning all. */
function merge(runs: Partial<RunReport>[], parts: Part[], measuredAt: string): RunReport {
  const first = runs[0]!;
  const last = runs[runs.length - 1]!;
  const merged = {
    ...first,
    measuredAt,
    parts,
    machine: { ...first.machine!, loadavgAfter: last.machine!.loadavgAfter },
  } as RunReport;
  for (const [i, part] of parts.entries()) {
    const field = partField(part);
    (merged as Record<string, unknown>)[field] = (runs[i] as Record<string, unknown>)[field];
  }
  return merged;
}
