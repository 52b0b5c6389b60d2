/**
 * Bundles both functions with @deno/eszip, as `supabase functions deploy` does: the module
 * graph from each index.ts, through its deno.json import map, into one eszip. npm: packages are
 * left out of the eszip (the platform installs them; deno_graph treats npm: specifiers as
 * external), so what must be inside is every local module: the function, _shared glue and all
 * of src/ it imports. The expected set comes from Deno's own view of the graph (`deno info`).
 */
import { build, Parser } from "@deno/eszip";
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const rootUrl = pathToFileURL(repoRoot + "/").href;

async function bundle(fn: string): Promise<{ specifiers: string[]; parser: Parser }> {
  const entry = pathToFileURL(join(repoRoot, "supabase", "functions", fn, "index.ts")).href;
  const importMap = pathToFileURL(join(repoRoot, "supabase", "functions", fn, "deno.json")).href;
  const bytes = await build([entry], async (specifier) => {
    if (!specifier.startsWith("file:")) return { kind: "external", specifier };
    const content = await readFile(fileURLToPath(specifier), "utf8");
    return { kind: "module", specifier, headers: {}, content };
  }, importMap);
  const parser = await Parser.createInstance();
  const specifiers = (await parser.parseBytes(bytes)) as string[];
  await parser.load();
  return { specifiers, parser };
}

interface InfoModule {
  kind: string;
  specifier: string;
  dependencies?: { code?: { specifier: string } }[];
}

/**
 * Local ES modules the function loads at run time, as Deno resolves its graph (`deno info`),
 * following code imports only: `import type` edges are erased and bundlers rightly skip them.
 */
function localModules(fn: string): string[] {
  const out = execFileSync(
    join(repoRoot, "node_modules", ".bin", "deno"),
    ["info", "--json", join("supabase", "functions", fn, "index.ts")],
    { cwd: repoRoot, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
  );
  const info = JSON.parse(out) as { roots: string[]; modules: InfoModule[] };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const queue = [...info.roots];
  while (queue.length > 0) {
    const spec = queue.pop()!;
    if (seen.has(spec)) continue;
    seen.add(spec);
    for (const dep of bySpecifier.get(spec)?.dependencies ?? []) {
      if (dep.code) queue.push(dep.code.specifier);
    }
  }
  return [...seen]
    .filter((s) => bySpecifier.get(s)?.kind === "esm" && s.startsWith(rootUrl))
    .filter((s) => !s.startsWith(rootUrl + "node_modules/"));
}

describe("eszip bundle of the Supabase functions", () => {
  it("lull: every local module of the graph, src/ included, is in the bundle", async () => {
    const { specifiers, parser } = await bundle("lull");
    const expected = localModules("lull");
    for (
      const must of [
        "supabase/functions/_shared/lull.ts",
        "src/http/handler.ts",
        "src/app.ts",
        "src/delivery/http-processor.ts",
        "src/delivery/function-processor.ts",
        "src/store/redis-store.ts",
        "src/redis/upstash-client.ts",
        "src/redis/tcp-client.ts",
        "src/providers/whatsapp.ts",
      ]
    ) {
      expect(expected).toContain(rootUrl + must);
    }
    for (const spec of expected) expect(specifiers).toContain(spec);
    // npm packages stay external: nothing from node_modules is inlined.
    expect(specifiers.filter((s) => s.includes("/node_modules/"))).toEqual([]);
    const entry = await parser.getModuleSource(rootUrl + "supabase/functions/lull/index.ts");
    expect(String(entry)).toContain("Deno.serve");
  });

  it("lull-processor: its graph (verifyDelivery from src/) is in the bundle", async () => {
    const { specifiers } = await bundle("lull-processor");
    const expected = localModules("lull-processor");
    expect(expected).toContain(rootUrl + "src/delivery/signature.ts");
    expect(expected).toContain(rootUrl + "supabase/functions/_shared/lull-processor.ts");
    for (const spec of expected) expect(specifiers).toContain(spec);
  });
});
