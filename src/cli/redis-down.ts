/**
 * "Is Redis down?" for the CLI commands that go through the function (`lull send`): when the
 * function answers that its buffer is unavailable, the CLI checks the Redis itself and says so
 * plainly, naming only what the user set up (never lull's internal parts).
 */
import type { Connection } from "./connect.ts";
import { probeRedisUrl, probeUpstash, RedisUnreachableError } from "../dev/redis-probe.ts";

/** How long the CLI's own check waits. */
const CHECK_TIMEOUT_MS = 1500;

/**
 * A sentence saying Redis is down and what to do, or null when it answers (or the CLI cannot
 * tell: no Redis in its configuration).
 */
export async function redisDownMessage(conn: Connection): Promise<string | null> {
  const redis = conn.config.redis;
  try {
    if (redis.kind === "tcp") await probeRedisUrl(redis.url, CHECK_TIMEOUT_MS);
    else if (redis.kind === "upstash") {
      await probeUpstash(redis.url, redis.token, CHECK_TIMEOUT_MS);
    } else return null;
    return null;
  } catch (err) {
    if (!(err instanceof RedisUnreachableError)) throw err;
    if (conn.stack?.store === "redis-server") {
      return "Redis is down: the redis-server that lull dev started is not answering " +
        `(${err.reason === "refused" ? "connection refused" : err.reason}). Restart lull dev.`;
    }
    return `Redis is down: ${err.message}`;
  }
}
