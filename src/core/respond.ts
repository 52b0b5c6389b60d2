/**
 * Every HTTP answer lull gives is JSON built here, so error bodies have one shape:
 * `{ "error": { "code", "message", "issues"? } }`.
 */

const JSON_TYPE = "application/json; charset=utf-8";

/** A JSON response. */
export function json(status: number, body: unknown, headers: HeadersInit = {}): Response {
  // The usual case, a plain record without its own content type, goes to Response as a record:
  // building a Headers first and having Response copy it again cost as much as the JSON.
  if (
    isPlainRecord(headers) && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")
  ) {
    return new Response(JSON.stringify(body), {
      status,
      headers: { ...headers, "content-type": JSON_TYPE },
    });
  }
  const h = new Headers(headers);
  h.set("content-type", JSON_TYPE);
  return new Response(JSON.stringify(body), { status, headers: h });
}

function isPlainRecord(headers: HeadersInit): headers is Record<string, string> {
  return !Array.isArray(headers) && Object.getPrototypeOf(headers) === Object.prototype;
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
