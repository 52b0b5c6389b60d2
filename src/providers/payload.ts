/**
 * Boundary helpers shared by the adapters: bytes to JSON or form fields, zod failures to
 * {@link ValidationError}, provider clocks (unix seconds) to ISO strings. Everything that can go
 * wrong with a hostile body ends here as a ValidationError, never as a TypeError or RangeError.
 */
import type { z } from "zod";
import { ValidationError, zodIssues } from "../core/errors.ts";

/** One strict decoder for every body: a decode without `stream` starts from a clean state. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes UTF-8 strictly: a webhook body with invalid UTF-8 is rejected, not mangled. */
export function decodeUtf8(raw: Uint8Array): string {
  try {
    return strictUtf8.decode(raw);
  } catch {
    throw new ValidationError("body is not valid UTF-8", [{ path: [], message: "invalid UTF-8" }]);
  }
}

/** Parses a JSON body. Any failure (syntax, encoding, runaway nesting) is a ValidationError. */
export function parseJsonBody(raw: Uint8Array): unknown {
  const text = decodeUtf8(raw);
  try {
    return JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new ValidationError("body is not valid JSON", [{ path: [], message: detail }]);
  }
}

/**
 * Parses an `application/x-www-form-urlencoded` body into name -> values (a name may repeat;
 * values keep their order).
 */
export function parseFormBody(raw: Uint8Array): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(decodeUtf8(raw))) {
    const values = fields.get(name);
    if (values) values.push(value);
    else fields.set(name, [value]);
  }
  return fields;
}

/** Runs a schema; a failure becomes a ValidationError with `message` and zod's issues. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  message: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(message, zodIssues(result.error));
  return result.data;
}

/** Latest unix time accepted (year 9999): later values cannot be rendered as ISO strings. */
const MAX_UNIX_SECONDS = 253402300799;

/** True for a whole number of unix seconds that `Date` can render. */
export function isUnixSeconds(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value <= MAX_UNIX_SECONDS;
}

/** Unix seconds to an ISO timestamp. Callers validate with {@link isUnixSeconds} first. */
export function unixSecondsToIso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** A plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * True when `value` nests at most `maxDepth` objects/arrays deep. Iterative, so a hostile,
 * deeply nested value cannot overflow the stack here (or later, when the store serialises it).
 */
export function nestsWithin(value: unknown, maxDepth: number): boolean {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth + 1 > maxDepth) return false;
    for (const child of Object.values(v)) stack.push({ v: child, depth: depth + 1 });
  }
  return true;
}
