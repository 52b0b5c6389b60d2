/**
 * Reads a request body with a byte cap and a deadline. The cap is enforced while streaming, so a
 * huge or never-ending body is cut off at LULL_MAX_BODY_BYTES + one chunk instead of being
 * buffered; the deadline (LULL_BODY_TIMEOUT_MS, for the whole body, not per chunk) stops a
 * client that trickles a byte now and then from holding the request open.
 */
import { BodyReadError, BodyTimeoutError, PayloadTooLargeError } from "./errors.ts";

/**
 * The body's bytes, or {@link PayloadTooLargeError} as soon as more than `maxBytes` arrived
 * (or `Content-Length` already says so), or {@link BodyTimeoutError} when it has not ended
 * `timeoutMs` after reading started.
 */
export async function readBodyCapped(
  req: Request,
  maxBytes: number,
  timeoutMs = Infinity,
): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    // Do not even start reading; cancel so the runtime can drop the connection's input.
    await req.body?.cancel().catch(() => {});
    throw new PayloadTooLargeError(maxBytes);
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = Number.isFinite(timeoutMs)
    ? new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)))
    : new Promise<"timeout">(() => {});
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array> | "timeout";
      try {
        next = await Promise.race([reader.read(), expired]);
      } catch (err) {
        throw new BodyReadError(err);
      }
      if (next === "timeout") {
        // Not awaited: a cancel must not wait on the slow client it is getting rid of.
        void reader.cancel().catch(() => {});
        throw new BodyTimeoutError(timeoutMs);
      }
      if (next.done) break;
      const chunk = next.value;
      total += chunk.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new PayloadTooLargeError(maxBytes);
      }
      chunks.push(chunk);
    }
  } finally {
    clearTimeout(timer);
    try {
      reader.releaseLock();
    } catch {
      // already released by cancel on some runtimes
    }
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
