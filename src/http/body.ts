/**
 * Reads a request body with a byte cap and a deadline. A body without Content-Length is
 * streamed and the cap enforced while streaming, so a huge or never-ending body is cut off at
 * LULL_MAX_BODY_BYTES + one chunk instead of being buffered; a Content-Length over the cap is
 * refused before reading, one within it is read whole. The deadline (LULL_BODY_TIMEOUT_MS, for the whole body, not per chunk) stops a
 * client that trickles a byte now and then from holding the request open.
 */
import { Deadlines } from "../core/deadlines.ts";
import { BodyReadError, BodyTimeoutError, PayloadTooLargeError } from "./errors.ts";

/**
 * Body deadlines by check interval: one interval per distinct tick for all requests reading a
 * body, instead of a timer and a `Promise.race` per request (and per chunk).
 */
const deadlinesByTick = new Map<number, Deadlines>();

function bodyDeadlines(timeoutMs: number): Deadlines {
  // A tenth of the timeout, 5-100 ms: how late at most a trickling body is cut off.
  const tickMs = Math.min(100, Math.max(5, Math.floor(timeoutMs / 10)));
  let deadlines = deadlinesByTick.get(tickMs);
  if (deadlines === undefined) {
    deadlines = new Deadlines({ tickMs });
    deadlinesByTick.set(tickMs, deadlines);
  }
  return deadlines;
}

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
  if (declared !== null && /^\d+$/.test(declared.trim())) {
    // Framed by Content-Length (at most the cap, checked above): the runtime delivers exactly
    // that many bytes, so the body is taken whole (Deno then skips the JS stream). The length
    // is still checked after reading, for requests built in process.
    const whole = req.arrayBuffer().then(
      (buffer) => new Uint8Array(buffer),
      (err: unknown) => {
        throw new BodyReadError(err);
      },
    );
    const bytes = Number.isFinite(timeoutMs)
      ? await bodyDeadlines(timeoutMs).race(whole, timeoutMs, () => {
        // The body is locked by the read, so it cannot be cancelled here; the 408 answers with
        // `connection: close`, which ends the read with the connection.
        return new BodyTimeoutError(timeoutMs);
      })
      : await whole;
    if (bytes.byteLength > maxBytes) throw new PayloadTooLargeError(maxBytes);
    return bytes;
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const read = readCapped(reader, maxBytes);
  if (!Number.isFinite(timeoutMs)) return await read;
  return await bodyDeadlines(timeoutMs).race(read, timeoutMs, () => {
    // Not awaited: a cancel must not wait on the slow client it is getting rid of. The pending
    // read then ends and its result is ignored.
    void reader.cancel().catch(() => {});
    return new BodyTimeoutError(timeoutMs);
  });
}

/**
 * Reads to the end, cutting off past `maxBytes`. The reader's lock is not released after the
 * end: the stream is finished, and releasing it costs an error object per request in Deno.
 */
async function readCapped(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch (err) {
      throw new BodyReadError(err);
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
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
