/**
 * The published package, as a user gets it: `npm pack` (which builds dist/), then the tarball
 * installed into a scratch project in a temp dir (its dependencies from the npm registry), then
 * imported from Node (and type-checked by tsc under NodeNext resolution) and from Deno (npm:
 * specifiers resolved from that node_modules). A processor built with createBatchHandler answers
 * a signed delivery, a repeat, a stale fence and a supersede as the contract says; the Supabase
 * factory from `lull/supabase` serves /lull/health. The packed `lull` bin runs `init`.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../cli/cli-stack.ts";

const deno = join(repoRoot, "node_modules", ".bin", "deno");
const tsc = join(repoRoot, "node_modules", ".bin", "tsc");
let work: string;
let project: string;
let tarball: string;
let files: string[];

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

const processorScript = `
import { createBatchHandler, signDelivery, verifyDelivery } from "lull";
import { createLullFunction } from "lull/supabase";

const SECRET = "pack-test-secret";
const seen = [];
const handler = createBatchHandler({
  secrets: SECRET,
  handle: (batch) => {
    seen.push(batch.batchId);
    return batch.text === "supersede me" ? "supersede" : "done";
  },
});
function batch(batchId, fence, text) {
  return { batchId, conversation: "support:42", fence, attempt: 1, reason: "quiet",
    degraded: false, firstAt: "2026-01-01T00:00:00Z", lastAt: "2026-01-01T00:00:01Z", text,
    messages: [{ id: "m-" + batchId, provider: "generic", text, receivedAt: "2026-01-01T00:00:01Z",
      meta: {} }] };
}
async function deliver(body, secret = SECRET) {
  const raw = JSON.stringify(body);
  const sig = await signDelivery(secret, raw, Math.floor(Date.now() / 1000));
  const res = await handler(new Request("http://processor/", {
    method: "POST", body: raw, headers: { "x-lull-signature": sig },
  }));
  return res.status;
}
const raw = JSON.stringify(batch("b-0", 1, "x"));
const check = await verifyDelivery({
  rawBody: raw, secrets: SECRET,
  signature: await signDelivery(SECRET, raw, Math.floor(Date.now() / 1000)),
});
const statuses = [
  await deliver(batch("b-1", 5, "hi")),
  await deliver(batch("b-1", 5, "hi")),
  await deliver(batch("b-2", 3, "old")),
  await deliver(batch("b-3", 6, "supersede me")),
  await deliver(batch("b-4", 7, "bad"), "wrong-secret"),
];
const fn = createLullFunction({});
const health = await fn.handler(new Request("http://127.0.0.1/lull/health"));
await fn.close();
console.log(JSON.stringify({ verified: check.ok, statuses, seen, health: health.status }));
`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "lull-pack-"));
  const packed = JSON.parse(
    run("npm", ["pack", "--json", "--pack-destination", work], repoRoot),
  ) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, packed[0]!.filename);
  files = packed[0]!.files.map((f) => f.path);
  project = join(work, "processor-app");
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "processor-app", private: true, type: "module" }, null, 2),
  );
  run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], project);
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed lull package", () => {
  it("ships the compiled entries, the CLI and the lull migrations, and no sources or tests", () => {
    for (
      const f of [
        "dist/mod.js",
        "dist/mod.d.ts",
        "dist/supabase.js",
        "dist/supabase.d.ts",
        "dist/cli/main.js",
        "bin/lull.mjs",
        "package.json",
      ]
    ) expect(files).toContain(f);
    expect(files.some((f) => /^supabase\/migrations\/\d+_lull_cron\.sql$/.test(f))).toBe(true);
    expect(files.filter((f) => f.startsWith("src/") || f.startsWith("test/"))).toEqual([]);
  });

  it("is imported from Node: verify, dedupe, fence, supersede, and the Supabase factory", () => {
    writeFileSync(join(project, "processor.mjs"), processorScript);
    const result = JSON.parse(run("node", ["processor.mjs"], project).trim().split("\n").at(-1)!);
    expect(result).toEqual({
      verified: true,
      // new batch 200, its repeat 200 (deduped), a lower fence 409, supersede 425, bad sig 401
      statuses: [200, 200, 409, 425, 401],
      // handle ran for the new batch and the supersede only
      seen: ["b-1", "b-3"],
      health: 200,
    });
  });

  it("type-checks a TypeScript processor against the shipped .d.ts (NodeNext)", () => {
    writeFileSync(
      join(project, "typed.ts"),
      [
        'import { createBatchHandler, type Batch, type BatchDecision } from "lull";',
        'import { createLullFunction, type LullFunction } from "lull/supabase";',
        "const decide = (b: Batch): BatchDecision => b.messages.length > 1 ? 'done' : 'supersede';",
        'export const h = createBatchHandler({ secrets: "s", handle: decide });',
        "export const f: LullFunction = createLullFunction({});",
        "// @ts-expect-error fence is a number",
        "export const wrong: Batch['fence'] = 'seven';",
        "",
      ].join("\n"),
    );
    const out = run(tsc, [
      "--noEmit",
      "--strict",
      "--skipLibCheck",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
      "--lib",
      "es2022,dom",
      "typed.ts",
    ], project);
    expect(out).toBe("");
  });

  it("is imported from Deno through npm: specifiers (node_modules of the project)", () => {
    writeFileSync(
      join(project, "deno.json"),
      JSON.stringify({ nodeModulesDir: "manual" }, null, 2),
    );
    writeFileSync(
      join(project, "processor-deno.ts"),
      processorScript.replace('from "lull";', 'from "npm:lull";').replace(
        'from "lull/supabase";',
        'from "npm:lull/supabase";',
      ),
    );
    const out = run(deno, [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-env",
      "--allow-net",
      "--allow-sys",
      "processor-deno.ts",
    ], project);
    const result = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(result.statuses).toEqual([200, 200, 409, 425, 401]);
    expect(result.health).toBe(200);
  });

  it("runs `lull init` from the installed bin", () => {
    mkdirSync(join(project, "supabase"));
    writeFileSync(join(project, "supabase", "config.toml"), 'project_id = "pack-test"\n');
    run(join(project, "node_modules", ".bin", "lull"), ["init"], project);
    expect(existsSync(join(project, "supabase", "functions", "lull", "index.ts"))).toBe(true);
    expect(readdirSync(join(project, "supabase", "migrations")).some((f) => f.includes("lull")))
      .toBe(true);
  });
});
