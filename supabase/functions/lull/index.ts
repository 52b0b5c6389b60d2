// The `lull` function: webhooks in, coalesced batches out. All wiring is in _shared/lull.ts.
import { createLullFunction } from "../_shared/lull.ts";

Deno.serve(createLullFunction().handler);
