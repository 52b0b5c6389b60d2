// The `lull` function: webhooks in, coalesced batches out. The platform's objects (its
// environment and Edge Runtime's `EdgeRuntime.waitUntil`) are read here, at the edge, and handed
// in; all wiring is in _shared/lull.ts.
import { createLullFunction, type EdgeRuntimeLike } from "../_shared/lull.ts";

const { EdgeRuntime } = globalThis as { EdgeRuntime?: EdgeRuntimeLike };

Deno.serve(
  createLullFunction(Deno.env.toObject(), EdgeRuntime ? { edgeRuntime: EdgeRuntime } : {}).handler,
);
