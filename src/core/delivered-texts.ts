/**
 * What a `delivered` event keeps of its batch's messages (the `texts` field): the dashboard's
 * recent-batches view reads it back from the event stream, so showing delivered texts costs no
 * Redis command beyond the XADD the ack writes anyway.
 *
 * Masked at the source like every event (`<N chars>` unless LULL_LOG_PII), each text capped at
 * {@link DELIVERED_TEXT_MAX_BYTES}, the whole field at {@link DELIVERED_TEXTS_MAX_BYTES} (messages
 * past it are only counted), attachments as their kind only (no ids, urls or captions).
 */
import type { AttachmentKind, BufferedMessage } from "./types.ts";
import { maskText } from "./mask.ts";

const encoder = new TextEncoder();

function byteLength(s: string): number {
  return encoder.encode(s).length;
}

/** The longest prefix of `text` (whole code points) within `maxBytes` of UTF-8. */
function capUtf8(text: string, maxBytes: number): string {
  if (byteLength(text) <= maxBytes) return text;
  let out = "";
  let used = 0;
  for (const ch of text) {
    const n = byteLength(ch);
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}

/** How much of one message's text a delivered event keeps, in UTF-8 bytes. */
export const DELIVERED_TEXT_MAX_BYTES = 500;
/** How large the whole `texts` field of a delivered event may be, in UTF-8 bytes. */
export const DELIVERED_TEXTS_MAX_BYTES = 4096;

/** One delivered message as its event keeps it. */
export interface DeliveredText {
  /** The text, `<N chars>` when masked; at most DELIVERED_TEXT_MAX_BYTES. */
  text: string;
  /** The text was longer and is cut. */
  truncated?: boolean;
  /** Kinds of the message's attachments, in order; absent when it had none. */
  attachments?: AttachmentKind[];
}

/** The decoded `texts` field of a delivered event. */
export interface DeliveredTexts {
  /** Texts were masked at the source (LULL_LOG_PII was off). */
  masked: boolean;
  messages: DeliveredText[];
  /** Messages left out because the field reached DELIVERED_TEXTS_MAX_BYTES. */
  omitted: number;
}

/** The `texts` field for a delivered batch's messages (masked unless `logPii`, capped). */
export function encodeDeliveredTexts(
  messages: readonly Pick<BufferedMessage, "text" | "attachments">[],
  logPii: boolean,
): string {
  const out: DeliveredText[] = [];
  // The envelope with the largest `omitted` it can carry: what is left is room for messages.
  let used = byteLength(
    JSON.stringify({ masked: !logPii, messages: [], omitted: messages.length }),
  );
  let omitted = 0;
  for (const m of messages) {
    if (omitted > 0) {
      omitted++;
      continue;
    }
    const full = maskText(m.text, logPii);
    const text = capUtf8(full, DELIVERED_TEXT_MAX_BYTES);
    const entry: DeliveredText = { text };
    if (text.length < full.length) entry.truncated = true;
    const kinds = (m.attachments ?? []).map((a) => a.kind);
    if (kinds.length > 0) entry.attachments = kinds;
    const size = byteLength(JSON.stringify(entry)) + (out.length > 0 ? 1 : 0);
    if (used + size > DELIVERED_TEXTS_MAX_BYTES) {
      omitted++;
      continue;
    }
    out.push(entry);
    used += size;
  }
  return JSON.stringify({ masked: !logPii, messages: out, omitted });
}

/** Reads a `texts` field back; null when absent or not one this module wrote. */
export function decodeDeliveredTexts(field: string | undefined): DeliveredTexts | null {
  if (field === undefined || field === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(field);
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const p = parsed as Record<string, unknown>;
  if (!Array.isArray(p.messages)) return null;
  const messages: DeliveredText[] = [];
  for (const m of p.messages as unknown[]) {
    if (typeof m !== "object" || m === null) return null;
    const e = m as Record<string, unknown>;
    if (typeof e.text !== "string") return null;
    const entry: DeliveredText = { text: e.text };
    if (e.truncated === true) entry.truncated = true;
    if (Array.isArray(e.attachments)) {
      entry.attachments = e.attachments.filter((k): k is AttachmentKind => typeof k === "string");
    }
    messages.push(entry);
  }
  return {
    masked: p.masked !== false,
    messages,
    omitted: typeof p.omitted === "number" && p.omitted > 0 ? p.omitted : 0,
  };
}

/** A `texts` field with every text masked (for readers that must mask, like `lull tail`). */
export function maskDeliveredTexts(field: string): string {
  const decoded = decodeDeliveredTexts(field);
  if (decoded === null) return maskText(field, false);
  if (decoded.masked) return field;
  return JSON.stringify({
    masked: true,
    messages: decoded.messages.map((m) => {
      const { truncated: _cut, ...rest } = m;
      // A cut text's true length is unknown here: say at least that much.
      return {
        ...rest,
        text: m.truncated ? `<${[...m.text].length}+ chars>` : maskText(m.text, false),
      };
    }),
    omitted: decoded.omitted,
  });
}
