/**
 * Mirrors the Redis wake index's lowerings into the durable trigger's wake-up ({@link Wakeup}),
 * off the response path: every store call that can move a partition's wake-up earlier (an
 * append that starts a burst, a noteWake after a retry or supersede, a DLQ requeue) also lowers
 * lull.wakeup, through `waitUntil`. A lowering that fails or dies with its isolate only delays
 * the sweep until the trigger's heartbeat, whose sweep reads the Redis wake index itself. An
 * append whose lowering landed in the database's wake index (RedisStoreOptions.wakeIndex) is not
 * mirrored: the trigger reads that index itself. One that fell back to Redis is (database down,
 * or its migration not applied); so are the flusher's lowerings and requeues, which are rare and
 * do not say where they landed.
 */
import type { BufferStore } from "../core/types.ts";
import type { Wakeup } from "./wakeup.ts";

/** Options of {@link withWakeupMirror}. */
export interface WakeupMirrorOptions {
  wakeup: Wakeup;
  /** Runs the lowering after the response (EdgeRuntime.waitUntil). */
  waitUntil: (work: Promise<unknown>) => void;
  onError: (error: unknown) => void;
}

/** `store`, with the wake-up lowered wherever the store lowered its wake index. */
export function withWakeupMirror(store: BufferStore, options: WakeupMirrorOptions): BufferStore {
  const lower = (atMs: number | null) => {
    if (atMs === null) return;
    options.waitUntil(options.wakeup.lower(atMs).catch(options.onError));
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      switch (prop) {
        case "append":
          return async (...args: Parameters<BufferStore["append"]>) => {
            const result = await target.append(...args);
            // Landed in the database's wake index: the trigger reads that itself.
            if (result.wake?.index !== "database") lower(result.wakeAtMs);
            return result;
          };
        case "noteWake":
          return async (...args: Parameters<BufferStore["noteWake"]>) => {
            await target.noteWake(...args);
            lower(args[1]);
          };
        case "dlqRequeue":
          return async (...args: Parameters<BufferStore["dlqRequeue"]>) => {
            const result = await target.dlqRequeue(...args);
            lower(result.nowMs);
            return result;
          };
        default:
          return value.bind(target);
      }
    },
  });
}
