/**
 * Keeps background work (in-isolate flush timers) alive after a response. On Supabase Edge
 * Runtime that is `EdgeRuntime.waitUntil`; elsewhere (plain Deno, Node, tests) a shim keeps the
 * promise referenced and logs a rejection instead of letting it become an unhandled rejection
 * that would kill the process.
 */
import type { Logger } from "../core/ports.ts";

/** A `waitUntil` plus what a host needs to shut down cleanly. */
export interface WaitUntil {
  (work: Promise<unknown>): void;
  /** Work still running (the shim's own promises; EdgeRuntime's are not visible). */
  readonly pending: number;
  /** Resolves when all currently tracked work has settled. */
  drain(): Promise<void>;
  /** Which mechanism is in use. */
  readonly kind: "edge-runtime" | "shim";
}

interface EdgeRuntimeLike {
  waitUntil(p: Promise<unknown>): void;
}

/** The platform's `EdgeRuntime` global, when running on Supabase Edge Runtime. */
export function edgeRuntime(): EdgeRuntimeLike | undefined {
  const er = (globalThis as { EdgeRuntime?: Partial<EdgeRuntimeLike> }).EdgeRuntime;
  return er && typeof er.waitUntil === "function" ? (er as EdgeRuntimeLike) : undefined;
}

/**
 * Creates the waitUntil for this runtime. Rejections are logged either way: a failed timer is
 * not a lost message (the durable sweep flushes the buffer), but it must be visible.
 */
export function createWaitUntil(logger: Logger, platform = edgeRuntime()): WaitUntil {
  const tracked = new Set<Promise<unknown>>();
  const fn = ((work: Promise<unknown>) => {
    const guarded = work.then(
      () => undefined,
      (err: unknown) => {
        logger.error("background work failed", {
          error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        });
      },
    );
    tracked.add(guarded);
    void guarded.finally(() => tracked.delete(guarded));
    platform?.waitUntil(guarded);
  }) as WaitUntil;
  Object.defineProperties(fn, {
    pending: { get: () => tracked.size },
    kind: { value: platform ? "edge-runtime" : "shim" },
    drain: {
      value: async () => {
        while (tracked.size > 0) await Promise.allSettled([...tracked]);
      },
    },
  });
  return fn;
}
