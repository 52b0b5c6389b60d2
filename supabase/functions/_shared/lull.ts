/**
 * Glue for the `lull` function in this repository: the same factory a project gets from the
 * package (`import { createLullFunction } from "lull/supabase"`), imported from the source.
 */
export { createLullFunction } from "../../../src/runtime/supabase-function.ts";
export type { LullFunction } from "../../../src/runtime/supabase-function.ts";
