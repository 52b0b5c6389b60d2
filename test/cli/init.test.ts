/**
 * `lull init` on a scratch Supabase layout (a temp dir with supabase/config.toml): a fresh run
 * writes the function, its import map, the config section and every lull migration; a re-run
 * changes nothing; a changed file is refused and nothing is written. The written function is
 * bundled with @deno/eszip as `supabase functions deploy` does: the bundle holds only the
 * function's own module and lull comes from npm, so nothing outside supabase/functions is needed.
 */
import { build, Parser } from "@deno/eszip";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanEnv, repoRoot, runCli } from "./cli-stack.ts";

const version = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).version;
const shipped = readdirSync(join(repoRoot, "supabase", "migrations"))
  .filter((f) => f.includes("lull") && f.endsWith(".sql"));
let project: string;

const existingConfig = [
  'project_id = "my-app"',
  "",
  "[api]",
  "port = 54321",
  "",
  "[functions.hello]",
  "verify_jwt = true",
  "",
].join("\n");

beforeEach(() => {
  project = mkdtempSync(join(tmpdir(), "lull-init-"));
  mkdirSync(join(project, "supabase", "functions", "hello"), { recursive: true });
  writeFileSync(join(project, "supabase", "config.toml"), existingConfig);
  writeFileSync(join(project, "supabase", "functions", "hello", "index.ts"), "// theirs\n");
});

afterEach(() => {
  rmSync(project, { recursive: true, force: true });
});

/** Every file under the project, with its content. */
function snapshot(dir = project, prefix = ""): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix + entry.name;
    if (entry.isDirectory()) Object.assign(out, snapshot(join(dir, entry.name), rel + "/"));
    else out[rel] = readFileSync(join(dir, entry.name), "utf8");
  }
  return out;
}

const init = (args: string[] = []) => runCli(["init", ...args], { cwd: project, env: cleanEnv() });

describe("lull init", () => {
  it("writes the function, its import map, config.toml and every lull migration", async () => {
    expect(shipped.length).toBeGreaterThan(0);
    const r = await init();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const fn = join(project, "supabase", "functions", "lull");
    const index = readFileSync(join(fn, "index.ts"), "utf8");
    expect(index).toContain('from "lull/supabase"');
    expect(index).toContain("Deno.serve(createLullFunction().handler)");
    // No import leaves supabase/functions: no relative path climbing out, no file: URL.
    expect(index).not.toMatch(/from "\.\.?\//);
    expect(JSON.parse(readFileSync(join(fn, "deno.json"), "utf8"))).toEqual({
      imports: { lull: `npm:lull@${version}`, "lull/supabase": `npm:lull@${version}/supabase` },
    });
    const config = readFileSync(join(project, "supabase", "config.toml"), "utf8");
    expect(config.startsWith(existingConfig)).toBe(true);
    const section = config.slice(config.indexOf("[functions.lull]"));
    expect(section).toMatch(/^verify_jwt = false$/m);
    expect(section).toContain('import_map = "./functions/lull/deno.json"');
    for (const f of shipped) {
      expect(readFileSync(join(project, "supabase", "migrations", f), "utf8")).toBe(
        readFileSync(join(repoRoot, "supabase", "migrations", f), "utf8"),
      );
    }
    // The secrets: one line of generated values, then one line per variable to fill in.
    for (
      const v of [
        "LULL_INGEST_TOKEN=",
        "LULL_ADMIN_TOKEN=",
        "LULL_CRON_SECRET=",
        "LULL_PROCESSOR_SECRET=",
        "WHATSAPP_VERIFY_TOKEN=",
        "TELEGRAM_WEBHOOK_SECRET=",
        "WHATSAPP_APP_SECRET=",
        "TWILIO_AUTH_TOKEN=",
        "UPSTASH_REDIS_REST_URL=",
        "UPSTASH_REDIS_REST_TOKEN=",
        "LULL_PROCESSOR_URL=",
        "LULL_PUBLIC_URL=",
      ]
    ) expect(r.stdout).toMatch(new RegExp(`supabase secrets set .*${v}`));
    expect(r.stdout).toMatch(/LULL_ADMIN_TOKEN=[A-Za-z0-9_-]{32}/);
    // Their function is untouched.
    expect(readFileSync(join(project, "supabase", "functions", "hello", "index.ts"), "utf8"))
      .toBe("// theirs\n");
  });

  it("is idempotent: a second run changes nothing", async () => {
    expect((await init()).code).toBe(0);
    const before = snapshot();
    const again = await init(["--json"]);
    expect(again.code).toBe(0);
    expect(snapshot()).toEqual(before);
    const report = JSON.parse(again.stdout);
    expect(report.files.map((f: { outcome: string }) => f.outcome)).toEqual(
      report.files.map(() => "unchanged"),
    );
  });

  it("refuses a changed file, names it, and writes nothing at all", async () => {
    expect((await init()).code).toBe(0);
    const index = join(project, "supabase", "functions", "lull", "index.ts");
    writeFileSync(index, readFileSync(index, "utf8") + "// my change\n");
    // A migration removed meanwhile would be re-created by a successful run; not by a refused one.
    rmSync(join(project, "supabase", "migrations", shipped[0]!));
    const before = snapshot();
    const r = await init();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("supabase/functions/lull/index.ts: exists with other content");
    expect(r.stderr).toContain("nothing written");
    expect(snapshot()).toEqual(before);
  });

  it("refuses a [functions.lull] section that keeps the JWT check", async () => {
    writeFileSync(
      join(project, "supabase", "config.toml"),
      existingConfig + "[functions.lull]\nverify_jwt = true\n",
    );
    const r = await init();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("supabase/config.toml: has a [functions.lull] section");
    expect(existsSync(join(project, "supabase", "functions", "lull"))).toBe(false);
  });

  it("says what to do outside a Supabase project", async () => {
    rmSync(join(project, "supabase", "config.toml"));
    const r = await init();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("run `supabase init` there first");
  });

  it("writes a function that eszip bundles with lull left to npm", async () => {
    expect((await init()).code).toBe(0);
    const fn = join(project, "supabase", "functions", "lull");
    const entry = pathToFileURL(join(fn, "index.ts")).href;
    const externals: string[] = [];
    const bytes = await build([entry], async (specifier) => {
      if (!specifier.startsWith("file:")) {
        externals.push(specifier);
        return { kind: "external", specifier };
      }
      const content = await readFile(fileURLToPath(specifier), "utf8");
      return { kind: "module", specifier, headers: {}, content };
    }, pathToFileURL(join(fn, "deno.json")).href);
    const parser = await Parser.createInstance();
    const specifiers = (await parser.parseBytes(bytes)) as string[];
    await parser.load();
    // The eszip holds the function's module (and its import map), nothing from elsewhere.
    const local = specifiers.filter((s) => s.startsWith("file:"));
    expect(local.filter((s) => s.endsWith(".ts"))).toEqual([entry]);
    for (const s of local) expect(s.startsWith(pathToFileURL(fn).href + "/")).toBe(true);
    // deno_graph leaves npm: specifiers out of the graph (the platform installs them): the
    // bundled import map is what sends "lull/supabase" to npm.
    expect(externals.filter((s) => s.startsWith("file:"))).toEqual([]);
    const map = JSON.parse(
      String(await parser.getModuleSource(pathToFileURL(join(fn, "deno.json")).href)),
    );
    expect(map.imports["lull/supabase"]).toBe(`npm:lull@${version}/supabase`);
    expect(String(await parser.getModuleSource(entry))).toContain("Deno.serve");
  });
});
