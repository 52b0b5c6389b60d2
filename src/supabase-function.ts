/**
 * The Supabase function factory (`lull/supabase`): environment -> parseConfig -> createStore (+
 * the Postgres outbox and the durable wake-up when a database URL is set) -> app
 * (breaker-wrapped store and outbox, processor, Flusher, handler). Built once per isolate; every request
 * reuses it. A function entry is one line: `Deno.serve(createLullFunction().handler)`, or, handing
 * the platform's objects in explicitly as this repository's entry does,
 * `Deno.serve(createLullFunction(Deno.env.toObject(), { edgeRuntime }).handler)`.
 */
import { parseConfig } from "./core/config.ts";
import type { Env } from "./core/config.ts";
import { CircuitOpenError, ConfigError } from "./core/errors.ts";
import { type App, createApp, POSTGRES_BREAKER } from "./app.ts";
import { CircuitBreaker } from "./core/breaker.ts";
import type { EdgeRuntimeLike } from "./core/ports.ts";
import { jsonError } from "./core/respond.ts";
import { readEnv } from "./runtime/env.ts";
import { createPostgresOutbox } from "./outbox/postgres-outbox.ts";
import { createStore } from "./store/create-store.ts";
import { createPostgresWakeup, withWakeIndexBreaker } from "./wakeup/postgres-wakeup.ts";

/** The platform objects a function entry hands in (the way a Hono adapter hands them over). */
export interface LullPlatform {
  /** Supabase Edge Runtime's `EdgeRuntime` global. @default the global, if any */
  edgeRuntime?: EdgeRuntimeLike;
}

/** What the function entry serves. */
export interface LullFunction {
  handler: (req: Request) => Promise<Response>;
  /** The wired app, or undefined when the configuration is invalid. */
  app?: App;
  close(): Promise<void>;
}

/**
 * Builds the `lull` function from the environment. An invalid configuration does not crash
 * the isolate: it is logged once, and every request gets a 500 `invalid_config` naming the
 * variables (never their values), which is what an operator looking at a failing webhook needs.
 */
export function createLullFunction(
  env: Env = readEnv(),
  platform: LullPlatform = {},
): LullFunction {
  let config;
  try {
    config = parseConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(
      JSON.stringify({ level: "error", msg: "invalid configuration", error: err.message }),
    );
    const variables = [...err.variables];
    return {
      handler: () =>
        Promise.resolve(
          jsonError(
            500,
            "invalid_config",
            `lull is misconfigured; check ${variables.join(", ")}`,
            err.issues.map((i) => ({ path: i.variables, message: i.message })),
          ),
        ),
      close: () => Promise.resolve(),
    };
  }
  // One pool per isolate: this runs once, at module load of the function. With a database the
  // Redis store keeps its partitions' wake-ups there (the trigger reads them in SQL), behind a
  // breaker so a dead database costs a burst one fast refusal, and Redis's index stands in.
  const database = config.databaseUrl;
  const outbox = database ? createPostgresOutbox({ url: database }) : undefined;
  const wakeup = database ? createPostgresWakeup({ url: database }) : undefined;
  const wakeIndex = wakeup &&
    withWakeIndexBreaker(
      wakeup,
      new CircuitBreaker({ name: "postgres_wake_index", ...POSTGRES_BREAKER }),
    );
  const { store, kind } = createStore(config, {
    ...(wakeIndex ? { wakeIndex, onWakeIndexError: logWakeIndexError } : {}),
  });
  if (kind === "memory") {
    console.error(JSON.stringify({
      level: "warn",
      msg: "no LULL_REDIS_URL or UPSTASH_REDIS_REST_*: using the in-memory store; " +
        "buffers live in this isolate only and are lost when it stops",
    }));
  }
  if (!database) {
    console.error(JSON.stringify({
      level: "warn",
      msg: "no LULL_DATABASE_URL or SUPABASE_DB_URL: the durable outbox is OFF; while Redis is " +
        "down messages are delivered directly (degraded, may duplicate) or answered 503",
    }));
  }
  const app = createApp({
    config,
    store,
    storeKind: kind,
    ...(platform.edgeRuntime ? { edgeRuntime: platform.edgeRuntime } : {}),
    ...(outbox ? { outbox } : {}),
    ...(wakeup ? { wakeup } : {}),
  });
  return { handler: app.handler, app, close: () => app.close() };
}

/**
 * The database wake index refused a call and Redis's index stood in: logged, unless the breaker is
 * open (then the refusal is its own, and the failures that opened it were logged).
 */
function logWakeIndexError(operation: string, error: unknown): void {
  if (error instanceof CircuitOpenError) return;
  console.error(JSON.stringify({
    level: "warn",
    msg: "the database wake index failed; the Redis wake index stands in",
    operation,
    error: error instanceof Error ? error.message : String(error),
  }));
}
