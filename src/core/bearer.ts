/**
 * Bearer-token checks shared by everything that takes one (the generic ingest adapter, the sweep
 * and conversation-inspection routes, the admin API). Every comparison is constant-time and
 * tries every accepted token (rotation).
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

/**
 * The entry of `accepted` that the request's bearer token equals (the first, when listed twice),
 * or null. Every candidate is compared, so the timing does not tell which one matched.
 */
export function matchedBearer(headers: Headers, accepted: readonly string[]): string | null {
  const token = bearerToken(headers);
  if (token === null) return null;
  let matched: string | null = null;
  for (const candidate of accepted) {
    if (candidate.length > 0 && timingSafeEqual(token, candidate)) matched ??= candidate;
  }
  return matched;
}

/** Whether the request's bearer token equals one of `accepted` (no early exit between them). */
export function bearerMatches(headers: Headers, accepted: readonly string[]): boolean {
  return matchedBearer(headers, accepted) !== null;
}
