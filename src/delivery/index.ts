/** Delivery to processors: signing, verification, HTTP and Supabase-function processors. */
export {
  DEFAULT_TOLERANCE_SEC,
  SIGNATURE_HEADER,
  signDelivery,
  timingSafeEqualString,
  verifyDelivery,
} from "./signature.ts";
export type { VerifyDeliveryInput, VerifyFailure, VerifyResult } from "./signature.ts";
export { createHttpProcessor } from "./http-processor.ts";
export type { HttpProcessorOptions } from "./http-processor.ts";
export { createFunctionProcessor } from "./function-processor.ts";
export type { FunctionProcessorOptions } from "./function-processor.ts";
export { createProcessor, processorConfigured } from "./create-processor.ts";
export { outcomeFromStatus } from "./outcome.ts";
