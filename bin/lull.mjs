#!/usr/bin/env node
// The `lull` command. In this repository the CLI is TypeScript (src/cli) and tsx compiles it on
// the fly, so there is no build step between editing the source and running it. The published
// package carries the compiled CLI (dist/, built by `npm pack`) and no src/.
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else {
  await import(new URL("../dist/cli/main.js", import.meta.url).href);
}
