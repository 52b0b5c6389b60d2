/**
 * Glue for the `lull` function in this repository: the same factory a project gets from the
 * package (`import { createLullFunction } from "lull/supabase"`), imported from the source.
 */
export { createLullFunction } from "../../../src/supabase-function.ts";
export type { LullFunction, LullPlatform } from "../../../src/supabase-function.ts";
export type { EdgeRuntimeLike } from "../../../src/core/ports.ts";
