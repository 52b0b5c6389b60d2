#!/usr/bin/env node
// Reads the imports of src/ (static, `import type`, re-exports and dynamic `import()`) and prints
// the folder-level import graph, the folder cycles and every import that runs upward against the
// layer order below, so the structure report can be reproduced:
//
//   node scripts/layers.mjs            # summary + edges + cycles + upward imports
//   node scripts/layers.mjs --check    # same, exit 1 if anything runs upward or in a cycle
//
// A file directly in src/ belongs to the folder "(root)". Lower layers come first; a folder may
// import its own layer and any layer listed before it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const LAYERS = [
  "core",
  "runtime",
  "scripts",
  "redis",
  "store",
  "providers",
  "delivery",
  "outbox",
  "wakeup",
  "observability",
  "http",
  "(root)",
  "dev",
  "cli",
];

const SRC = resolve("src");

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

function folderOf(file) {
  const rel = relative(SRC, file);
  const parts = rel.split("/");
  return parts.length === 1 ? "(root)" : parts[0];
}

const files = walk(SRC).sort();
const edges = new Map(); // "from -> to" => [file: spec]
let lines = 0;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  lines += text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  const info = ts.preProcessFile(text, true, true);
  for (const imp of info.importedFiles) {
    const spec = imp.fileName;
    if (!spec.startsWith(".")) continue;
    const target = resolve(dirname(file), spec);
    if (!target.startsWith(SRC + "/")) continue;
    const from = folderOf(file);
    const to = folderOf(target);
    if (from === to) continue;
    const key = `${from} -> ${to}`;
    if (!edges.has(key)) edges.set(key, []);
    edges.get(key).push(`${relative(".", file)}: ${spec}`);
  }
}

const rank = (folder) => {
  const i = LAYERS.indexOf(folder);
  return i === -1 ? Number.POSITIVE_INFINITY : i;
};

const upward = [];
for (const [key, sites] of edges) {
  const [from, to] = key.split(" -> ");
  if (rank(to) > rank(from)) { for (const site of sites) upward.push(`${key}  ${site}`); }
}

// Folder cycles: every pair of folders that reach each other, reported as the strongly connected
// components (Tarjan) plus the mutual pairs inside them, which are what one fixes.
const graph = new Map();
for (const key of edges.keys()) {
  const [from, to] = key.split(" -> ");
  if (!graph.has(from)) graph.set(from, new Set());
  if (!graph.has(to)) graph.set(to, new Set());
  graph.get(from).add(to);
}
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
function strong(v) {
  idx.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v)) {
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1) components.push(comp.sort());
  }
}
for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
const mutual = [];
for (const [a, tos] of graph) {
  for (const b of tos) if (a < b && graph.get(b)?.has(a)) mutual.push(`${a} <-> ${b}`);
}
// Every elementary folder cycle, so "N cycles" means one thing.
const cycles = [];
const nodes = [...graph.keys()].sort();
for (let s = 0; s < nodes.length; s++) {
  const start = nodes[s];
  const path = [start];
  const seen = new Set([start]);
  const dfs = (v) => {
    for (const w of graph.get(v)) {
      if (w === start) cycles.push([...path, start].join(" -> "));
      else if (!seen.has(w) && nodes.indexOf(w) > s) {
        seen.add(w);
        path.push(w);
        dfs(w);
        path.pop();
        seen.delete(w);
      }
    }
  };
  dfs(start);
}

const unknown = [...graph.keys()].filter((f) => !LAYERS.includes(f));

console.log(`files: ${files.length}, lines: ${lines}`);
console.log(`layer order (low -> high): ${LAYERS.join(" < ")}`);
if (unknown.length) console.log(`folders not in the layer order: ${unknown.join(", ")}`);
console.log(`\nfolder edges (${edges.size}):`);
for (const key of [...edges.keys()].sort()) console.log(`  ${key} (${edges.get(key).length})`);
console.log(`\nmutual folder pairs (${mutual.length}):`);
for (const m of mutual.sort()) console.log(`  ${m}`);
console.log(`\nelementary folder cycles (${cycles.length}):`);
for (const c of cycles) console.log(`  ${c}`);
console.log(`\nstrongly connected folder groups (${components.length}):`);
for (const c of components) console.log(`  {${c.join(", ")}}`);
console.log(`\nupward imports (${upward.length}):`);
for (const u of upward.sort()) console.log(`  ${u}`);
const upwardEdges = new Set(upward.map((u) => u.split("  ")[0]));
console.log(
  `\nsummary: upward-imports=${upward.length} upward-folder-edges=${upwardEdges.size} ` +
    `mutual-folder-pairs=${mutual.length} elementary-cycles=${cycles.length} ` +
    `cyclic-groups=${components.length}`,
);
if (process.argv.includes("--check") && (upward.length || cycles.length || unknown.length)) {
  process.exit(1);
}
