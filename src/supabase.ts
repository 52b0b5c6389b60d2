/**
 * `lull/supabase`: the Supabase Edge Function factory. A project's
 * `supabase/functions/lull/index.ts` (written by `npx lull init`) is:
 *
 * ```ts
 * import { createLullFunction } from "lull/supabase";
 *
 * Deno.serve(createLullFunction().handler);
 * ```
 *
 * Configuration comes from the function's environment (`supabase secrets set ...`).
 */
export { createLullFunction } from "./supabase-function.ts";
export type { LullFunction, LullPlatform } from "./supabase-function.ts";
export type { EdgeRuntimeLike } from "./core/ports.ts";
export { readEnv } from "./runtime/env.ts";
