/**
 * How messages are stored and turned back into batches. Both stores use these, so a batch
 * built from Redis and one built from memory are byte-for-byte the same shape.
 *
 * Buffer entry: `<receivedAtMs>|<json>`; the store (Lua or MemoryStore) prefixes its own clock,
 * so `receivedAt` is store time, not isolate time.
 */
import type { BufferSettings } from "../core/config.ts";
import type {
  AuditEntry,
  Batch,
  BufferedMessage,
  FlushReason,
  InboundMessage,
} from "../core/types.ts";
import { RESPONSE_BODY_MAX_BYTES } from "../core/types.ts";
import { maskText } from "../core/mask.ts";

/** The JSON part of a buffer entry (everything but receivedAt). */
export function encodeMessage(message: InboundMessage): string {
  const body: Record<string, unknown> = {
    id: message.id,
    provider: message.provider,
    text: message.text,
  };
  if (message.sender !== undefined) body.sender = message.sender;
  if (message.sentAt !== undefined) body.sentAt = message.sentAt;
  // Both omitted when empty: every byte of an entry is held in Redis and counts toward MAX_BYTES,
  // and decode restores `[]` and `{}` (as it always did, so older versions read these entries).
  if (message.attachments !== undefined && message.attachments.length > 0) {
    body.attachments = message.attachments;
  }
  if (message.meta !== undefined && Object.keys(message.meta).length > 0) body.meta = message.meta;
  return JSON.stringify(body);
}

/** A full buffer entry as the store writes it. */
export function makeEntry(receivedAtMs: number, messageJson: string): string {
  return `${receivedAtMs}|${messageJson}`;
}

/** UTF-8 byte length (what Lua's `#` and MAX_BYTES count). */
export function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** ISO-8601 of a store-time millisecond value. */
export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Parses one buffer entry. */
export function decodeEntry(entry: string): BufferedMessage {
  const bar = entry.indexOf("|");
  const receivedAtMs = Number(entry.slice(0, bar));
  // Entries written before attachments existed have none: they decode to `[]`.
  const body = JSON.parse(entry.slice(bar + 1)) as
    & Omit<BufferedMessage, "receivedAt" | "attachments">
    & { attachments?: BufferedMessage["attachments"] };
  const out: BufferedMessage = {
    id: body.id,
    provider: body.provider,
    text: body.text,
    receivedAt: toIso(receivedAtMs),
    attachments: body.attachments ?? [],
    meta: body.meta ?? {},
  };
  if (body.sender !== undefined) out.sender = body.sender;
  if (body.sentAt !== undefined) out.sentAt = body.sentAt;
  // Keep key order stable for consumers that hash the body.
  return {
    id: out.id,
    provider: out.provider,
    text: out.text,
    ...(out.sender !== undefined ? { sender: out.sender } : {}),
    ...(out.sentAt !== undefined ? { sentAt: out.sentAt } : {}),
    receivedAt: out.receivedAt,
    attachments: out.attachments,
    meta: out.meta,
  };
}

/** Stored batch fields, as the batch hash keeps them. */
export interface BatchFields {
  batchId: string;
  conversation: string;
  fence: number;
  attempt: number;
  reason: FlushReason;
  firstAtMs: number;
  lastAtMs: number;
}

/** Builds the processor payload from stored fields and entries. */
export function buildBatch(fields: BatchFields, entries: string[], degraded = false): Batch {
  const messages = entries.map(decodeEntry);
  return {
    batchId: fields.batchId,
    conversation: fields.conversation,
    fence: fields.fence,
    attempt: fields.attempt,
    reason: fields.reason,
    degraded,
    firstAt: toIso(fields.firstAtMs),
    lastAt: toIso(fields.lastAtMs),
    text: messages.map((m) => m.text).join("\n"),
    messages,
  };
}

/** Open-buffer meta, as the meta hash keeps it. */
export interface BufferMeta {
  firstAtMs: number;
  lastAtMs: number;
  count: number;
  bytes: number;
}

/**
 * When an open buffer becomes claimable and why (docs/state-machine.md "Buffer due time").
 * `fullAtMs` is the time the buffer filled up (append time); callers pass the append's now.
 */
export function computeFlush(
  meta: BufferMeta,
  s: Pick<BufferSettings, "windowMs" | "graceMs" | "maxWaitMs" | "maxMessages" | "maxBytes">,
  fullAtMs: number,
): { flushAtMs: number; reason: FlushReason } {
  if (meta.count >= s.maxMessages) return { flushAtMs: fullAtMs, reason: "max_messages" };
  if (meta.bytes >= s.maxBytes) return { flushAtMs: fullAtMs, reason: "max_bytes" };
  const quietDue = meta.lastAtMs + s.windowMs + s.graceMs;
  const capDue = meta.firstAtMs + s.maxWaitMs;
  return capDue <= quietDue
    ? { flushAtMs: capDue, reason: "max_wait" }
    : { flushAtMs: quietDue, reason: "quiet" };
}

/** A new batch id: sortable by time, unguessable. */
export function newBatchId(nowMs: number, randomHex: string): string {
  return `b_${nowMs.toString(36)}_${randomHex}`;
}

/** Caps text at `maxBytes` UTF-8 bytes without splitting a character. */
export function capUtf8(text: string, maxBytes: number): string {
  const enc = new TextEncoder();
  if (enc.encode(text).length <= maxBytes) return text;
  let out = "";
  let used = 0;
  for (const ch of text) {
    const n = enc.encode(ch).length;
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}

/**
 * What a dead letter keeps of the processor's response body: at most RESPONSE_BODY_MAX_BYTES,
 * masked like message text (`<N chars>`) unless LULL_LOG_PII, since an agent's error page may
 * echo the customer's words. "" when there was no body.
 */
export function deadLetterResponseBody(body: string | undefined, logPii: boolean): string {
  if (body === undefined || body === "") return "";
  return maskText(capUtf8(body, RESPONSE_BODY_MAX_BYTES), logPii);
}

/** An audit entry with its optional fields filled. */
export function fullAuditEntry(entry: AuditEntry): Required<AuditEntry> {
  return { ...entry, detail: entry.detail ?? "", subject: entry.subject ?? "" };
}
