/**
 * The event-stream cursor codec: cursors travel as base64url JSON (`{ "<partition>": "<stream
 * id>" }`) so clients (the dashboard, `lull tail`) can treat them as opaque strings. Shared by the
 * admin API that hands them out and the CLI that hands them back.
 */
import { ValidationError } from "./errors.ts";
import type { EventCursor } from "./types.ts";

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): string {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder("utf-8", { fatal: true }).decode(
    Uint8Array.from(bin, (c) => c.charCodeAt(0)),
  );
}

/** Event cursors travel as base64url JSON so clients can treat them as opaque strings. */
export function encodeEventCursor(cursor: EventCursor): string {
  return toBase64Url(JSON.stringify(cursor));
}

/** Inverse of {@link encodeEventCursor}; throws {@link ValidationError} on anything malformed. */
export function decodeEventCursor(text: string): EventCursor {
  const bad = () =>
    new ValidationError("cursor is not a cursor this server handed out", [
      { path: ["cursor"], message: "must be the opaque cursor from a previous events answer" },
    ]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fromBase64Url(text));
  } catch {
    throw bad();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw bad();
  const out: EventCursor = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (!/^\d+$/.test(k) || typeof v !== "string" || !/^\d+-\d+$/.test(v)) throw bad();
    out[Number(k)] = v;
  }
  return out;
}
