/**
 * What the admin routes read from a request — `?limit=`, a JSON body — and the 405 answer for a
 * method a route lacks.
 */
import { ValidationError } from "../../core/errors.ts";
import { jsonError } from "../../core/respond.ts";
import { readBodyCapped } from "../body.ts";
import type { AdminHandler, AdminRequest } from "./context.ts";

/** Default and ceiling for `?limit=` on list routes. */
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

/** 405 naming the methods the route has. */
export function methodNotAllowed(allow: string[]): Response {
  return jsonError(405, "method_not_allowed", `use ${allow.join(", ")}`, undefined, {
    allow: allow.join(", "),
  });
}

/** A route that only reads: GET and HEAD run `run`, anything else is 405. */
export function getOnly(run: (r: AdminRequest) => Promise<Response>): AdminHandler {
  return (r, m) =>
    m === "GET" || m === "HEAD" ? run(r) : Promise.resolve(methodNotAllowed(["GET", "HEAD"]));
}

/** Parses `?limit=`: a whole number 1..`max` (DEFAULT_LIMIT and MAX_LIMIT unless told). */
export function parseLimit(url: URL, fallback = DEFAULT_LIMIT, max = MAX_LIMIT): number {
  const raw = url.searchParams.get("limit");
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new ValidationError(`limit must be a whole number from 1 to ${max}`, [
      { path: ["limit"], message: `must be a whole number from 1 to ${max}` },
    ]);
  }
  return n;
}

/** A path segment, percent-decoded. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError("path segment is not valid percent-encoding");
  }
}

/**
 * The body as JSON, or undefined when it is empty. A thin adapter on the ingest routes' reader
 * (src/http/body.ts: capped at LULL_MAX_BODY_BYTES while streaming, LULL_BODY_TIMEOUT_MS for the
 * whole body), which hands back bytes.
 */
export async function readJsonBody(
  req: Request,
  limits: { maxBodyBytes: number; bodyTimeoutMs: number },
): Promise<unknown> {
  const text = new TextDecoder().decode(
    await readBodyCapped(req, limits.maxBodyBytes, limits.bodyTimeoutMs),
  );
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError("body is not valid JSON");
  }
}
