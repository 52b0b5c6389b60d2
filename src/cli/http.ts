/**
 * HTTP calls from the CLI to a running lull function, with errors that say what answered.
 */
import { CommandError } from "./cli-errors.ts";

/** POSTs JSON and returns the parsed JSON answer; non-2xx becomes a {@link CommandError}. */
export async function postJson(
  url: string,
  token: string | undefined,
  body: unknown,
  timeoutMs = 60_000,
): Promise<unknown> {
  return await requestJson("POST", url, token, body, timeoutMs);
}

/** GETs JSON; non-2xx becomes a {@link CommandError}. */
export async function getJson(
  url: string,
  token: string | undefined,
  timeoutMs = 30_000,
): Promise<unknown> {
  return await requestJson("GET", url, token, undefined, timeoutMs);
}

/** One JSON request with a bearer token and a deadline. */
export async function requestJson(
  method: string,
  url: string,
  token: string | undefined,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new CommandError("unreachable", `cannot reach ${url}: ${(e as Error).message}`, { url });
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // not JSON: keep the text for the error message
  }
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new CommandError(
      e?.code ?? `http_${res.status}`,
      `${url} answered ${res.status}: ${e?.message ?? text.slice(0, 300)}`,
      { url, status: res.status },
    );
  }
  return parsed;
}
