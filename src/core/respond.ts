/**
 * Every HTTP answer lull gives is JSON built here, so error bodies have one shape:
 * `{ "error": { "code", "message", "issues"? } }`.
 */

/** A JSON response. */
export function json(status: number, body: unknown, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(body), { status, headers: h });
}

/** A JSON error response in DESIGN.md's shape. */
export function jsonError(
  status: number,
  code: string,
  message: string,
  issues?: unknown[],
  headers: HeadersInit = {},
): Response {
  const error: Record<string, unknown> = { code, message };
  if (issues !== undefined) error.issues = issues;
  return json(status, { error }, headers);
}
