/**
 * Mirrors the Redis wake index's lowerings into the durable trigger's wake-up ({@link Wakeup}),
 * off the response path: every store call that can move a partition's wake-up earlier (an
 * append that starts a burst, a noteWake after a retry or supersede, a DLQ requeue) also lowers
 * lull.wakeup, through `waitUntil`. A lowering that fails or dies with its isolate only delays
 * the sweep until the trigger's heartbeat, whose sweep reads the Redis wake index itself. With the
 * wake index in the database the trigger reads that, and an append's lowering that landed there
 * is not mirrored.
 */
import type { BufferStore } from "../core/types.ts";
import type { Wakeup } from "./wakeup.ts";

/** Options of {@link withWakeupMirror}. */
export interface WakeupMirrorOptions {
  wakeup: Wakeup;
  /**
   * The store keeps its wake-ups in the database's wake index, which the trigger reads itself:
   * only an append whose lowering fell back to Redis's index (database down, or its migration not
   * applied) is mirrored. Lowerings by the flusher (retry, supersede) and requeues are mirrored
   * either way: they are rare, and the store does not say where they landed.
   */
  storeWakesInDatabase?: boolean;
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
            if (!(options.storeWakesInDatabase && result.wake?.index === "database")) {
              lower(result.wakeAtMs);
            }
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
