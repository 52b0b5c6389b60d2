/**
 * The only surface the core needs from Redis: every read and write is a Lua script, so an
 * adapter is two methods. Adapters (TCP via ioredis, Upstash REST) live next to this file.
 *
 * Adapter contract:
 * - A `NOSCRIPT` reply must surface as an Error whose message starts with "NOSCRIPT".
 * - A script error reply (`redis.error_reply`, runtime error) surfaces as an Error with the
 *   server's message.
 * - A call that may have reached the server but got no answer in time throws
 *   `RedisTimeoutError`; one that surely did not reach it throws `RedisUnavailableError`.
 * - Integer replies come back as numbers, bulk strings as strings, nil as null, arrays as arrays.
 */
export interface RedisClient {
  evalsha(sha1: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  eval(source: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  /** Closes connections the adapter owns. */
  close(): Promise<void>;
}
