#!/usr/bin/env node
// The `lull` command. The CLI is TypeScript (src/cli); tsx compiles it on the fly so there is
// no build step between editing the source and running it.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
