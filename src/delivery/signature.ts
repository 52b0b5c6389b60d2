/**
 * Delivery signatures: `X-Lull-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 * lull signs with the first LULL_PROCESSOR_SECRET; processors verify against any of them, so a
 * secret can be rotated without dropping deliveries. Web Crypto only (Deno, Node >= 20, Workers).
 */

import { hmacHex, timingSafeEqual } from "../core/crypto.ts";

/** Header carrying the delivery signature. */
export const SIGNATURE_HEADER = "X-Lull-Signature";

/** Default replay window: a signature older (or newer) than this is rejected. @default 300 */
export const DEFAULT_TOLERANCE_SEC = 300;

const encoder = new TextEncoder();

function toBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? encoder.encode(body) : body;
}

/** Hex HMAC-SHA256 of `"<t>.<raw body>"`, the `v1` part of the signature. */
export async function deliveryDigest(
  secret: string,
  rawBody: string | Uint8Array,
  timestampSec: number,
): Promise<string> {
  const prefix = encoder.encode(`${timestampSec}.`);
  const body = toBytes(rawBody);
  const message = new Uint8Array(prefix.length + body.length);
  message.set(prefix, 0);
  message.set(body, prefix.length);
  return await hmacHex("SHA-256", secret, message);
}

/**
 * The `X-Lull-Signature` value for a body: `t=<nowSec>,v1=<hex>`.
 * @param secret the signing secret (the first of LULL_PROCESSOR_SECRET)
 * @param rawBody exactly the bytes that will be sent
 * @param nowSec unix seconds (injected so tests pin it)
 */
export async function signDelivery(
  secret: string,
  rawBody: string | Uint8Array,
  nowSec: number,
): Promise<string> {
  const t = Math.floor(nowSec);
  return `t=${t},v1=${await deliveryDigest(secret, rawBody, t)}`;
}

/** Inputs of {@link verifyDelivery}. */
export interface VerifyDeliveryInput {
  /** The `X-Lull-Signature` value, or the request's headers (the value is read from them). */
  signature?: string | null;
  headers?: Headers | Record<string, string | undefined>;
  /** The request body exactly as received (read it once with `await req.text()`). */
  rawBody: string | Uint8Array;
  /** Accepted secrets: an array or a comma list (rotation: any of them verifies). */
  secrets: string[] | string;
  /** Now in ms since the epoch. @default Date.now() */
  nowMs?: number;
  /** Replay window in seconds, both directions. @default 300 */
  toleranceSec?: number;
}

/** Why a signature was rejected (for logs; answer 401 either way). */
export type VerifyFailure =
  | "missing_signature"
  | "malformed_signature"
  | "no_secrets"
  | "expired"
  | "mismatch";

/** Result of {@link verifyDelivery}. */
export type VerifyResult =
  | { ok: true; timestampSec: number }
  | { ok: false; reason: VerifyFailure };

function headerValue(
  headers: Headers | Record<string, string | undefined> | undefined,
): string | null {
  if (!headers) return null;
  if (typeof (headers as Headers).get === "function") {
    return (headers as Headers).get(SIGNATURE_HEADER);
  }
  const wanted = SIGNATURE_HEADER.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === wanted && typeof v === "string") return v;
  }
  return null;
}

/**
 * Verifies a lull delivery, for processor authors:
 *
 * ```ts
 * const rawBody = await req.text();
 * const check = await verifyDelivery({ headers: req.headers, rawBody, secrets: SECRET });
 * if (!check.ok) return new Response("bad signature", { status: 401 });
 * ```
 *
 * Rejects timestamps outside ±`toleranceSec` (replays), compares digests in constant time, and
 * accepts a match with any of the secrets (rotation). Several `v1=` parts are allowed.
 */
export async function verifyDelivery(input: VerifyDeliveryInput): Promise<VerifyResult> {
  const raw = input.signature ?? headerValue(input.headers);
  if (!raw) return { ok: false, reason: "missing_signature" };
  let t: number | undefined;
  const digests: string[] = [];
  for (const part of raw.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === "t" && /^\d{1,12}$/.test(v)) t = Number(v);
    else if (k === "v1" && /^[0-9a-f]{64}$/i.test(v)) digests.push(v.toLowerCase());
  }
  if (t === undefined || digests.length === 0) return { ok: false, reason: "malformed_signature" };
  const secrets = (typeof input.secrets === "string" ? input.secrets.split(",") : input.secrets)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (secrets.length === 0) return { ok: false, reason: "no_secrets" };
  const nowSec = Math.floor((input.nowMs ?? Date.now()) / 1000);
  const tolerance = input.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  if (Math.abs(nowSec - t) > tolerance) return { ok: false, reason: "expired" };
  let matched = false;
  // Check every secret/digest pair (no early exit) so timing does not reveal which one matched.
  for (const secret of secrets) {
    const expected = await deliveryDigest(secret, input.rawBody, t);
    for (const d of digests) matched = timingSafeEqual(expected, d) || matched;
  }
  return matched ? { ok: true, timestampSec: t } : { ok: false, reason: "mismatch" };
}
