/**
 * Checks a LULL_REDIS_URL before anything connects to it, so a typo is reported at start-up
 * with the fix, not 5 s later as an unreachable server.
 */

const EXAMPLE = "redis://localhost:6379";

/**
 * What is wrong with a Redis URL (scheme, host, port, database), or null when it is usable.
 * The message does not repeat the variable name; the caller adds it.
 */
export function redisUrlProblem(value: string): string | null {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    return `must be a URL with a scheme: put redis:// (or rediss://) in front, like ${EXAMPLE}`;
  }
  if (scheme === "http" || scheme === "https") {
    return "is an HTTP URL: for Upstash set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN " +
      `instead; LULL_REDIS_URL takes redis:// or rediss:// (like ${EXAMPLE})`;
  }
  if (scheme !== "redis" && scheme !== "rediss") {
    return `must start with redis:// or rediss:// (got ${scheme}://), like ${EXAMPLE}`;
  }
  const port = /^[^:]+:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/.exec(value)?.[1];
  if (port !== undefined && port !== "") {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1 || n > 65535) {
      return `has port "${port}": a port is a number from 1 to 65535, like ${EXAMPLE}`;
    }
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `is not a valid URL, expected something like ${EXAMPLE}`;
  }
  if (url.hostname === "") return `has no host, expected something like ${EXAMPLE}`;
  const db = url.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) {
    return `has "/${db}" after the host: only a database number may follow (${EXAMPLE}/0)`;
  }
  return null;
}
