/**
 * Bearer-token checks shared by everything that takes one (the generic ingest adapter, the sweep
 * and conversation-inspection routes). Every comparison is constant-time and tries every
 * accepted token (rotation).
 */
import { timingSafeEqual } from "./crypto.ts";

/**
 * The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, blanks
 * around the token ignored), or null when there is none.
 */
export function bearerToken(headers: Headers): string | null {
  const m = /^[ \t]*bearer[ \t]+(.*?)[ \t]*$/i.exec(headers.get("authorization") ?? "");
  return m?.[1] || null;
}

/** Whether the request's bearer token equals one of `accepted` (no early exit between them). */
export function bearerMatches(headers: Headers, accepted: readonly string[]): boolean {
  const token = bearerToken(headers);
  if (token === null) return false;
  let ok = false;
  for (const candidate of accepted) {
    if (candidate.length > 0) ok = timingSafeEqual(token, candidate) || ok;
  }
  return ok;
}
