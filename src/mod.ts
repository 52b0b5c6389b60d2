/**
 * lull's package entry, for processor authors and embedders:
 *
 * ```ts
 * import { verifyDelivery, type Batch } from "lull";
 *
 * const rawBody = await req.text();
 * const check = await verifyDelivery({ headers: req.headers, rawBody, secrets: SECRET });
 * if (!check.ok) return new Response("bad signature", { status: 401 });
 * const batch: Batch = JSON.parse(rawBody);
 * ```
 *
 * or let {@link createBatchHandler} verify, dedupe, check the fence and answer 425 for you.
 * The Supabase function factory is `lull/supabase`.
 */
export {
  DEFAULT_TOLERANCE_SEC,
  SIGNATURE_HEADER,
  signDelivery,
  verifyDelivery,
} from "./delivery/signature.ts";
export type { VerifyDeliveryInput, VerifyFailure, VerifyResult } from "./delivery/signature.ts";
export { batchSchema, createBatchHandler, memoryLedger } from "./delivery/batch-handler.ts";
export type { BatchDecision, BatchHandlerOptions, BatchLedger } from "./delivery/batch-handler.ts";
export { createHttpProcessor } from "./delivery/http-processor.ts";
export type { HttpProcessorOptions } from "./delivery/http-processor.ts";
export { createFunctionProcessor } from "./delivery/function-processor.ts";
export type { FunctionProcessorOptions } from "./delivery/function-processor.ts";
export { outcomeFromStatus } from "./delivery/outcome.ts";
export { createApp } from "./app.ts";
export type { App, AppOptions } from "./app.ts";
export { createHandler } from "./http/handler.ts";
export { parseConfig } from "./core/config.ts";
export type { Config, Env } from "./core/config.ts";
export { createStore } from "./store/create-store.ts";
export type {
  Attachment,
  AttachmentKind,
  Batch,
  BufferedMessage,
  ContactCard,
  DeliveryOutcome,
  FlushReason,
  InboundMessage,
  Processor,
  Provider,
} from "./core/types.ts";
/** The shape of `meta.sender` on WhatsApp, Telegram and Twilio messages. */
export type { SenderIdentity } from "./providers/types.ts";
