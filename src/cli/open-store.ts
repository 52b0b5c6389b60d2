/**
 * The store the CLI acts on directly (requeue, flush --direct, repair, ...), with the durable
 * trigger told about it: a change that makes something due (a requeue, a repaired buffer) lowers
 * the Redis wake index inside the store, and here also `lull.wakeup` in Postgres when the
 * configuration names a database, so the trigger comes back for it at once instead of at the
 * next heartbeat. `close()` waits for those writes.
 */
import type { Config } from "../core/config.ts";
import type { BufferStore } from "../core/types.ts";
import { createStore } from "../store/create-store.ts";
import { withWakeupMirror } from "../wakeup/mirror.ts";
import { createPostgresWakeup } from "../wakeup/postgres-wakeup.ts";

/** createStore, mirrored into lull.wakeup when a database is configured. */
export function openCliStore(config: Config): BufferStore {
  const { store } = createStore(config);
  if (!config.databaseUrl) return store;
  const wakeup = createPostgresWakeup({ url: config.databaseUrl });
  const pending: Promise<unknown>[] = [];
  const mirrored = withWakeupMirror(store, {
    wakeup,
    waitUntil: (work) => pending.push(work),
    onError: (error) =>
      process.stderr.write(
        `lull: could not tell the durable trigger (${(error as Error).message}); ` +
          "it comes back at its next heartbeat\n",
      ),
  });
  return new Proxy(mirrored, {
    get(target, prop, receiver) {
      if (prop !== "close") return Reflect.get(target, prop, receiver);
      return async () => {
        await Promise.allSettled(pending);
        await Promise.allSettled([wakeup.close(), store.close()]);
      };
    },
  });
}
