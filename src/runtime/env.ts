/**
 * Reads the process environment on whichever runtime we are on. This file is the one place in
 * src/ (besides src/dev and src/cli) that touches runtime globals, through `globalThis` so the
 * core still type-checks without Deno or Node types.
 */
import type { Env } from "../core/config.ts";

/** The environment as a plain object (Deno.env on Deno, process.env on Node). */
export function readEnv(): Env {
  const g = globalThis as {
    Deno?: { env: { toObject(): Record<string, string> } };
    process?: { env: Record<string, string | undefined> };
  };
  if (g.Deno?.env) return g.Deno.env.toObject();
  if (g.process?.env) return { ...g.process.env };
  return {};
}
