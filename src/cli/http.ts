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
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
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
