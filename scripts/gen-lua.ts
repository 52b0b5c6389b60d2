/**
 * Compiles every `src/scripts/<verbNoun>-<numKeys>.lua` into the committed module
 * `src/scripts/generated.ts` (name, source, sha1, numKeys), so the runtime-agnostic core ships
 * its Lua without reading files (edge functions have no file system for it).
 *
 * `--- @include "name"` lines are replaced by `src/scripts/includes/name.lua` (each included at
 * most once per script), BullMQ-style; the sha1 is of the expanded source, exactly what EVAL gets.
 *
 * Each script that declares keys also gets a key-locking variant for Upstash: the same source
 * behind the shebang `#!lua flags=allow-key-locking` (Upstash docs, "Key-Based Locking"), with its
 * own sha1. Upstash then locks only the script's KEYS instead of the whole database, so scripts
 * on disjoint conversations run in parallel. Plain Redis rejects the flag, so the TCP adapter
 * sends the plain source. A script that touches keys not in its KEYS (SCAN, INFO, ...) must not
 * carry the flag: scripts with no keys are skipped, and any other goes in {@link UNFLAGGABLE}.
 *
 * Usage: `node --import tsx scripts/gen-lua.ts` writes the module; `--check` exits 1 if it is
 * stale (naming the scripts that differ) and writes nothing.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The `allow-key-locking` variant of a script. */
export interface KeyLockingVariant {
  source: string;
  sha1: string;
}

/** One compiled script. */
export interface CompiledScript {
  name: string;
  file: string;
  source: string;
  sha1: string;
  numKeys: number;
  /** The Upstash key-locking variant, or null (then `keyLockingSkipped` says why). */
  keyLocking: KeyLockingVariant | null;
  keyLockingSkipped?: string;
}

/** The shebang line Upstash documents for key-based locking of a script. */
export const KEY_LOCKING_SHEBANG = "#!lua flags=allow-key-locking";

/**
 * Scripts that declare keys but must still take Upstash's global lock, by name, with the reason.
 * Scripts with no keys (SCAN, INFO, TIME, PING) are skipped without being listed.
 */
export const UNFLAGGABLE: Readonly<Record<string, string>> = {};

/**
 * Commands that reach beyond the keys a script declares (the whole keyspace or the server). A
 * keyed script that calls one must be listed in {@link UNFLAGGABLE}, or the generator fails.
 */
const DATABASE_WIDE =
  /redis\.p?call\(\s*['"](SCAN|KEYS|INFO|FLUSHDB|FLUSHALL|DBSIZE|RANDOMKEY|SCRIPT|CONFIG)['"]/i;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Where the `.lua` files live. */
export const scriptsDir = join(root, "src", "scripts");
/** The generated module. */
export const generatedPath = join(scriptsDir, "generated.ts");

const FILE_NAME = /^([a-z][A-Za-z]*)-(\d+)\.lua$/;
const INCLUDE = /^--- @include "([A-Za-z0-9_-]+)"\s*$/;

/** SHA1 hex of a script source, as Redis computes it for EVALSHA. */
export function sha1(source: string): string {
  return createHash("sha1").update(source, "utf8").digest("hex");
}

/** Expands `--- @include` lines; each include appears at most once. */
export function expandIncludes(source: string, dir: string, file: string): string {
  const seen = new Set<string>();
  return source.split("\n").map((line) => {
    const m = INCLUDE.exec(line);
    if (!m) return line;
    const name = m[1]!;
    if (seen.has(name)) throw new Error(`${file}: "${name}" included twice`);
    seen.add(name);
    return readFileSync(join(dir, "includes", `${name}.lua`), "utf8").replace(/\n$/, "");
  }).join("\n");
}

/** Reads and compiles every script in `dir`, sorted by name. */
export function compileScripts(dir: string = scriptsDir): CompiledScript[] {
  const files = readdirSync(dir).filter((f) => f.endsWith(".lua")).sort();
  return files.map((file) => {
    const m = FILE_NAME.exec(file);
    if (!m) throw new Error(`${file}: script files must be named verbNoun-<numKeys>.lua`);
    const source = expandIncludes(readFileSync(join(dir, file), "utf8"), dir, file);
    const name = m[1]!;
    const numKeys = Number(m[2]);
    const skipped = keyLockingSkipReason(name, numKeys, source);
    if (skipped === undefined && DATABASE_WIDE.test(source)) {
      const command = DATABASE_WIDE.exec(source)![1]!;
      throw new Error(
        `${file}: calls ${command.toUpperCase()}, which touches keys outside KEYS; list it in ` +
          "UNFLAGGABLE (scripts/gen-lua.ts) with the reason, so it keeps Upstash's global lock",
      );
    }
    const keyLocking = skipped === undefined ? keyLockingVariant(source) : null;
    return {
      name,
      file,
      source,
      sha1: sha1(source),
      numKeys,
      keyLocking,
      ...(skipped === undefined ? {} : { keyLockingSkipped: skipped }),
    };
  });
}

/** Why a script gets no key-locking variant, or undefined when it gets one. */
function keyLockingSkipReason(name: string, numKeys: number, source: string): string | undefined {
  if (UNFLAGGABLE[name] !== undefined) return UNFLAGGABLE[name];
  if (numKeys === 0) return "declares no keys";
  if (source.startsWith("#!")) return "already has a shebang";
  return undefined;
}

/** The plain source behind the key-locking shebang (the gateway strips exactly that line). */
export function keyLockingVariant(source: string): KeyLockingVariant {
  const flagged = `${KEY_LOCKING_SHEBANG}\n${source}`;
  return { source: flagged, sha1: sha1(flagged) };
}

/** The text of generated.ts for a list of compiled scripts. */
export function renderModule(scripts: CompiledScript[]): string {
  const out: string[] = [
    "// GENERATED by scripts/gen-lua.ts from src/scripts/*.lua. Do not edit: edit the .lua",
    "// file and run `npm run gen:scripts`. A test fails when this file is stale.",
    "",
    "/** A compiled Lua script: run it only through runScript(). */",
    "export interface LuaScript {",
    "  /** verbNoun from the file name. */",
    "  readonly name: string;",
    "  /** Source with includes expanded (what EVAL sends). */",
    "  readonly source: string;",
    "  /** SHA1 of `source` (what EVALSHA sends). */",
    "  readonly sha1: string;",
    "  /** Number of KEYS the script takes (from the file name). */",
    "  readonly numKeys: number;",
    "  /**",
    "   * The same script behind `#!lua flags=allow-key-locking`, for Upstash: it then locks only",
    "   * the KEYS, not the whole database. Null for scripts that touch keys outside KEYS.",
    "   */",
    "  readonly keyLocking: { readonly source: string; readonly sha1: string } | null;",
    "}",
    "",
  ];
  for (const s of scripts) {
    out.push(`/** ${s.file} */`);
    out.push(renderEntry(s));
    out.push("");
  }
  out.push("/** Every script, by name. */");
  out.push("export const scripts = {");
  for (const s of scripts) out.push(`  ${s.name},`);
  out.push("} as const;");
  out.push("");
  return out.join("\n");
}

/** The generated constant of one script. */
function renderEntry(s: CompiledScript): string {
  const lines = [
    `export const ${s.name}: LuaScript = {`,
    `  name: ${JSON.stringify(s.name)},`,
    `  source: ${JSON.stringify(s.source)},`,
    `  sha1: ${JSON.stringify(s.sha1)},`,
    `  numKeys: ${s.numKeys},`,
  ];
  if (s.keyLocking === null) {
    lines.push(`  // Global lock on Upstash: ${s.keyLockingSkipped ?? "unflaggable"}.`);
    lines.push("  keyLocking: null,");
  } else {
    lines.push("  keyLocking: {");
    lines.push(`    source: ${JSON.stringify(s.keyLocking.source)},`);
    lines.push(`    sha1: ${JSON.stringify(s.keyLocking.sha1)},`);
    lines.push("  },");
  }
  lines.push("};");
  return lines.join("\n");
}

/** Names of scripts whose generated entry differs from the sources ("" = module header). */
export function staleScripts(current: string, scripts: CompiledScript[]): string[] {
  const stale: string[] = [];
  for (const s of scripts) {
    if (!current.includes(renderEntry(s))) stale.push(s.file);
  }
  if (stale.length === 0 && current !== renderModule(scripts)) {
    stale.push("(a script was removed or the module header changed)");
  }
  return stale;
}

function main(argv: string[]): number {
  const scripts = compileScripts();
  const rendered = renderModule(scripts);
  let current = "";
  try {
    current = readFileSync(generatedPath, "utf8");
  } catch {
    // missing: everything is stale
  }
  if (argv.includes("--check")) {
    const stale = staleScripts(current, scripts);
    if (stale.length === 0) {
      console.log(`src/scripts/generated.ts is fresh (${scripts.length} scripts)`);
      return 0;
    }
    console.error(
      `src/scripts/generated.ts is stale; run \`npm run gen:scripts\`. Differs: ${
        stale.join(", ")
      }`,
    );
    return 1;
  }
  if (current !== rendered) writeFileSync(generatedPath, rendered);
  console.log(`wrote src/scripts/generated.ts (${scripts.length} scripts)`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exit(main(process.argv.slice(2)));
}
