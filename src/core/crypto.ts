/**
 * The one definition of each crypto primitive lull uses: constant-time comparison, HMAC, SHA-256
 * and hex/base64 encoding, on Web Crypto (`crypto.subtle`). Shared by the provider adapters,
 * delivery signing, the audit fingerprints, the fallback batch id and the admin token check.
 * No `node:crypto`: this runs on Deno and Node alike.
 */

const encoder = new TextEncoder();

/** Hash functions the providers sign with. */
export type HmacHash = "SHA-1" | "SHA-256";

/**
 * Compares two strings in time that depends only on their lengths, never on where they first
 * differ, so a caller probing a secret byte by byte learns nothing. Strings of different
 * lengths are unequal (the length itself is not treated as secret: signatures have fixed sizes).
 */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const length = Math.max(x.length, y.length);
  // Fold the length difference in and walk the longer input, so there is no early exit.
  let diff = x.length ^ y.length;
  for (let i = 0; i < length; i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

/** HMAC of `data` (a string is UTF-8 encoded) keyed with the UTF-8 bytes of `secret`. */
export async function hmac(
  hash: HmacHash,
  secret: string,
  data: string | Uint8Array,
): Promise<Uint8Array> {
  let keyBytes = encoder.encode(secret);
  // Web Crypto refuses zero-length HMAC keys. HMAC zero-pads keys to the block size, so a
  // single 0x00 byte is the same key and gives the same MAC as an empty one.
  if (keyBytes.length === 0) keyBytes = new Uint8Array(1);
  const key = await crypto.subtle.importKey(
    "raw",
    keyBytes,
    { name: "HMAC", hash },
    false,
    ["sign"],
  );
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const signature = await crypto.subtle.sign("HMAC", key, bytes as Uint8Array<ArrayBuffer>);
  return new Uint8Array(signature);
}

/** Lower-case hex HMAC (WhatsApp's `X-Hub-Signature-256`, lull's own delivery signature). */
export async function hmacHex(
  hash: HmacHash,
  secret: string,
  data: string | Uint8Array,
): Promise<string> {
  return toHex(await hmac(hash, secret, data));
}

/** Standard base64 (with padding) HMAC (Twilio's `X-Twilio-Signature`). */
export async function hmacBase64(
  hash: HmacHash,
  secret: string,
  data: string | Uint8Array,
): Promise<string> {
  return toBase64(await hmac(hash, secret, data));
}

/** Lower-case hex SHA-256 of the UTF-8 bytes of `text`. */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text))));
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Standard base64 of bytes (btoa over a binary string; fine for digest-sized inputs). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
