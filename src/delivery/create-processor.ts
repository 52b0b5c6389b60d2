/**
 * Picks the processor from config: LULL_PROCESSOR_URL, else LULL_PROCESSOR_FUNCTION, else none
 * (every delivery then retries with a clear error, so nothing is lost while unconfigured).
 */
import type { Config } from "../core/config.ts";
import type { Processor } from "../core/types.ts";
import { createFunctionProcessor } from "./function-processor.ts";
import { createHttpProcessor } from "./http-processor.ts";

/** The processor the config names. */
export function createProcessor(config: Config, options: { fetch?: typeof fetch } = {}): Processor {
  if (config.processorUrl) {
    return createHttpProcessor({
      url: config.processorUrl,
      secrets: config.processorSecrets,
      timeoutMs: config.deliveryTimeoutMs,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }
  if (config.processorFunction && config.supabaseUrl && config.supabaseServiceRoleKey) {
    return createFunctionProcessor({
      supabaseUrl: config.supabaseUrl,
      serviceRoleKey: config.supabaseServiceRoleKey,
      name: config.processorFunction,
      secrets: config.processorSecrets,
      timeoutMs: config.deliveryTimeoutMs,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }
  return () =>
    Promise.resolve({
      kind: "retry",
      error: "no processor configured (set LULL_PROCESSOR_URL or LULL_PROCESSOR_FUNCTION)",
    });
}
