#!/usr/bin/env node
// `npm test`: style (deno fmt --check, deno lint), types (tsc), then every test on real Redis,
// real PostgreSQL, real Deno and real HTTP (vitest), then the short chaos run (real processes
// SIGKILLed). Ends with the plain line "N passed, N failed".
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = (name) => join("node_modules", ".bin", name);
const extra = process.argv.slice(2);
let failedChecks = 0;
let passedChecks = 0;

function step(label, cmd, args, counted = true) {
  process.stdout.write(`\n== ${label}: ${cmd} ${args.join(" ")}\n`);
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (!counted) return r.status === 0;
  if (r.status === 0) passedChecks++;
  else {
    failedChecks++;
    process.stdout.write(`!! ${label} failed (exit ${r.status})\n`);
  }
  return r.status === 0;
}

if (spawnSync("sh", ["-c", "command -v redis-server"]).status !== 0) {
  console.error(
    "redis-server is missing: install it (apt-get install -y redis-server). Tests need a real Redis.",
  );
  console.log("0 passed, 1 failed");
  process.exit(1);
}

if (extra.length === 0) {
  step("format", bin("deno"), ["fmt", "--check", "--quiet"]);
  step("lint", bin("deno"), ["lint", "--quiet"]);
  step("generated scripts fresh", "node", ["--import", "tsx", "scripts/gen-lua.ts", "--check"]);
  step("generated dashboard fresh", "node", [
    "--import",
    "tsx",
    "scripts/gen-dashboard.ts",
    "--check",
  ]);
  step("types", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);
  // The deployable functions, type-checked as Deno (Supabase's runtime) sees them.
  step("deno types", bin("deno"), [
    "check",
    "--quiet",
    "supabase/functions/lull/index.ts",
    "supabase/functions/lull-processor/index.ts",
    "src/dev/serve-functions.ts",
  ]);
}

const dir = mkdtempSync(join(tmpdir(), "lull-vitest-"));
const report = join(dir, "report.json");
step("tests", bin("vitest"), [
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...extra,
], false);
let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed = r.numPassedTests ?? 0;
  // A suite that failed to load has no test results: count it as a failure too.
  const brokenFiles = (r.testResults ?? []).filter((f) =>
    f.status === "failed" && (f.assertionResults ?? []).length === 0
  ).length;
  failed = (r.numFailedTests ?? 0) + brokenFiles;
} else {
  failed = 1;
}
rmSync(dir, { recursive: true, force: true });
if (extra.length === 0) {
  // Real processes killed (isolates, redis-server): the guarantees under chaos. Short mode is
  // sized for CI; `npm run chaos -- --mode long` is the full accounting.
  step("chaos (short, seed 1)", "node", [
    "--import",
    "tsx",
    "chaos/run.ts",
    "--mode",
    "short",
    "--seed",
    "1",
  ]);
}
// Style/type checks count as one test each so a formatting slip cannot pass silently.
passed += passedChecks;
failed += failedChecks;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
