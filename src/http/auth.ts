/**
 * Bearer-token checks shared by the routes that use them (generic ingest, sweep, conversation
 * inspection). Every comparison is constant-time and tries every accepted token (rotation).
 */
import { timingSafeEqualString } from "../delivery/signature.ts";

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(headers: Headers): string | null {
  const value = headers.get("authorization");
  if (!value) return null;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(value);
  return m ? m[1]! : null;
}

/** Whether the request's bearer token equals one of `accepted` (no early exit between them). */
export function bearerMatches(headers: Headers, accepted: readonly string[]): boolean {
  const token = bearerToken(headers);
  if (token === null) return false;
  let ok = false;
  for (const candidate of accepted) {
    if (candidate.length > 0) ok = timingSafeEqualString(token, candidate) || ok;
  }
  return ok;
}
