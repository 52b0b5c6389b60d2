// The example processor: verifies, dedupes and logs each batch. See _shared/lull-processor.ts.
// Its one setting comes from the platform's environment, read here and handed in.
import { createProcessorHandler } from "../_shared/lull-processor.ts";

Deno.serve(createProcessorHandler({ secrets: Deno.env.get("LULL_PROCESSOR_SECRET") ?? "" }));
