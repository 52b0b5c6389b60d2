/**
 * The exact bytes and headers of one delivery, shared by both processors: the body is the Batch
 * serialised once, and the signature covers those very bytes.
 */
import type { Batch } from "../core/types.ts";
import { SIGNATURE_HEADER, signDelivery } from "./signature.ts";

/** Body and headers of a delivery. */
export interface DeliveryRequest {
  body: string;
  headers: Record<string, string>;
}

/**
 * Serialises the batch and signs it with the first secret (no secret: unsigned, which only a
 * local setup should do; the config layer warns about it).
 */
export async function buildDeliveryRequest(
  batch: Batch,
  secrets: string[],
  nowMs: number,
): Promise<DeliveryRequest> {
  const body = JSON.stringify(batch);
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "Idempotency-Key": batch.batchId,
    "X-Lull-Fence": String(batch.fence),
  };
  const secret = secrets[0];
  if (secret !== undefined) {
    headers[SIGNATURE_HEADER] = await signDelivery(secret, body, Math.floor(nowMs / 1000));
  }
  return { body, headers };
}
