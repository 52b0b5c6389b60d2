// The `lull` function: webhooks in, coalesced batches out. Written by `npx lull init`; the lull
// version is pinned in ./deno.json (this function's import map). Configure it with
// `supabase secrets set` (the command `lull init` printed); deploy with
// `supabase functions deploy lull --no-verify-jwt`.
import { createLullFunction } from "lull/supabase";

Deno.serve(createLullFunction().handler);
