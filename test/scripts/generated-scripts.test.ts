import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileScripts, renderModule, scriptsDir, staleScripts } from "../../scripts/gen-lua.ts";
import { scripts } from "../../src/scripts/generated.ts";

const sha1 = (s: string) => createHash("sha1").update(s, "utf8").digest("hex");

describe("src/scripts/generated.ts", () => {
  it("has one entry per .lua file, numKeys from the file name", () => {
    const files = readdirSync(scriptsDir).filter((f) => f.endsWith(".lua")).sort();
    const fromFiles = files.map((f) => {
      const m = /^([a-zA-Z]+)-(\d+)\.lua$/.exec(f);
      expect(m, `${f} must be named verbNoun-<numKeys>.lua`).not.toBeNull();
      return [m![1], Number(m![2])];
    });
    const generated = Object.values(scripts).map((s) => [s.name, s.numKeys]).sort((a, b) =>
      String(a[0]).localeCompare(String(b[0]))
    );
    expect(generated).toEqual(
      fromFiles.sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
  });

  it("every sha1 is the SHA1 of its source, and every source matches the .lua file", () => {
    const compiled = new Map(compileScripts().map((c) => [c.name, c]));
    for (const s of Object.values(scripts)) {
      expect(sha1(s.source), s.name).toBe(s.sha1);
      const c = compiled.get(s.name);
      expect(c, `${s.name} has no .lua file`).toBeDefined();
      expect(s.source, `${s.name} is stale: run npm run gen:scripts`).toBe(c!.source);
      // The raw file (before includes) is contained line for line, except include markers.
      const raw = readFileSync(join(scriptsDir, c!.file), "utf8").split("\n")
        .filter((l) => !l.startsWith("--- @include"));
      for (const line of raw) expect(s.source).toContain(line);
      expect(s.source).not.toContain("--- @include");
    }
  });

  it("every keyed script has a key-locking variant: the flag shebang, then the plain source", () => {
    for (const s of Object.values(scripts)) {
      if (s.numKeys === 0) {
        // SCAN, INFO, TIME, PING: not confined to KEYS, so they keep Upstash's global lock.
        expect(s.keyLocking, s.name).toBeNull();
        continue;
      }
      expect(s.keyLocking, `${s.name} has no key-locking variant`).not.toBeNull();
      expect(s.keyLocking!.source).toBe(`#!lua flags=allow-key-locking\n${s.source}`);
      expect(sha1(s.keyLocking!.source), s.name).toBe(s.keyLocking!.sha1);
      expect(s.keyLocking!.sha1).not.toBe(s.sha1);
    }
    expect(scripts.scanKeys.keyLocking).toBeNull();
    expect(scripts.readServerInfo.keyLocking).toBeNull();
  });

  it("the generator refuses to flag a keyed script that reaches outside its KEYS", () => {
    const dir = mkdtempSync(join(tmpdir(), "lull-gen-"));
    try {
      mkdirSync(join(dir, "includes"));
      writeFileSync(join(dir, "countKeys-1.lua"), "return redis.call('DBSIZE')\n");
      expect(() => compileScripts(dir)).toThrow(/countKeys-1\.lua: calls DBSIZE.*UNFLAGGABLE/);
      writeFileSync(join(dir, "countKeys-1.lua"), "return redis.call('GET', KEYS[1])\n");
      expect(compileScripts(dir)[0]!.keyLocking).not.toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--check reports a stale key-locking variant", () => {
    const compiled = compileScripts();
    const current = renderModule(compiled);
    const stale = current.replace(compiled[0]!.keyLocking!.sha1, "0".repeat(40));
    expect(staleScripts(stale, compiled)).toEqual([compiled[0]!.file]);
    expect(staleScripts(current, compiled)).toEqual([]);
  });

  it("the committed module is byte-for-byte what the generator writes", () => {
    const current = readFileSync(join(scriptsDir, "generated.ts"), "utf8");
    expect(current).toBe(renderModule(compileScripts()));
  });

  it("every script documents KEYS, ARGV and returns, and names each KEYS slot", () => {
    for (const c of compileScripts()) {
      const raw = readFileSync(join(scriptsDir, c.file), "utf8");
      expect(raw.startsWith("--[["), c.file).toBe(true);
      expect(raw, c.file).toMatch(/Returns/);
      for (let i = 1; i <= c.numKeys; i++) {
        expect(raw, `${c.file} header KEYS[${i}]`).toMatch(new RegExp(`KEYS\\[${i}\\]\\s+\\w`));
        expect(raw, `${c.file} local for KEYS[${i}]`).toMatch(
          new RegExp(`local \\w+ = KEYS\\[${i}\\] -- `),
        );
      }
      expect(raw, `${c.file} uses more KEYS than its name says`).not.toMatch(
        new RegExp(`KEYS\\[${c.numKeys + 1}\\]`),
      );
      for (const m of raw.matchAll(/local \w+ = (?:tonumber\()?ARGV\[(\d+)\]/g)) {
        expect(raw, `${c.file} header ARGV[${m[1]}]`).toMatch(
          new RegExp(`ARGV\\[${m[1]}\\]\\s+\\w`),
        );
      }
    }
  });
});
