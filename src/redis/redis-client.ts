/**
 * Which compiled form of a script a client's server runs (`LuaScript.keyLocking` vs the plain
 * source): `"keyLocking"` for Upstash, where `#!lua flags=allow-key-locking` makes a script
 * lock only its KEYS; `"plain"` for Redis, which rejects that flag.
 */
export type ScriptVariant = "plain" | "keyLocking";

/**
 * The only surface the core needs from Redis: every read and write is a Lua script, so an
 * adapter is two methods. Adapters (TCP via ioredis, Upstash REST) live next to this file.
 *
 * Adapter contract:
 * - A `NOSCRIPT` reply must surface as an Error whose message starts with "NOSCRIPT".
 * - A script error reply (`redis.error_reply`, runtime error) surfaces as an Error with the
 *   server's message.
 * - A call whose outcome is unknown throws `RedisTimeoutError` ("may have committed"): no answer
 *   in time, the connection dropped after the request may have been sent, an answer that is not
 *   a Redis reply (a proxy's 5xx or HTML page). Only a call proven not to have run (never sent,
 *   refused before running: LOADING, BUSY, auth, plan limits) throws `RedisUnavailableError`.
 *
 * Replay policy (the one place it is stated): no adapter and no caller sends a script again
 * after an ambiguous outcome, because most scripts are not idempotent (a replayed append answers
 * "duplicate" for a new message, a replayed requeue "not found"). Adapters make exactly one
 * attempt per call; `runScript` re-sends only after NOSCRIPT (the script did not run). The only
 * replays are deliberate and of idempotent steps: the flusher may send `ackBatch` again (its
 * processed record answers a repeat) and any step again after `RedisUnavailableError`. At the
 * HTTP edge an ambiguous append is never answered as "not written": it gets 503 (or, with a
 * database, the durable outbox), and the provider's redelivery is deduplicated by message id.
 * - Integer replies come back as numbers, bulk strings as strings, nil as null, arrays as arrays.
 */
export interface RedisClient {
  /**
   * The script form this client's server should get; runScript picks it. Scripts without a
   * key-locking variant are always sent plain.
   * @default "plain"
   */
  readonly scriptVariant?: ScriptVariant;
  evalsha(sha1: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  eval(source: string, keys: string[], args: (string | number)[]): Promise<unknown>;
  /** Closes connections the adapter owns. */
  close(): Promise<void>;
}
