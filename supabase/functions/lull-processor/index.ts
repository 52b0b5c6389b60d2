// The example processor: verifies, dedupes and logs each batch. See _shared/lull-processor.ts.
import { createProcessorHandler } from "../_shared/lull-processor.ts";

Deno.serve(createProcessorHandler());
