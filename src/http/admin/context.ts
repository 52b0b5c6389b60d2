/**
 * What an admin route is handed: the services ({@link AdminContext}) and the request, already
 * authorised ({@link AdminRequest}).
 */
import type { Outbox } from "../../outbox/outbox.ts";
import type { AppContext } from "../context.ts";

/**
 * What the admin routes need from the flusher (`src/core/flusher.ts`'s `Flusher` satisfies it).
 * Results are passed through to the JSON answer as they are.
 */
export interface AdminFlusher {
  /** Flush one conversation now; `force` claims a buffer that is not due yet. */
  flushConversation(conversation: string, options?: { force?: boolean }): Promise<unknown>;
  /** One durable sweep over every partition. */
  flushDue(): Promise<unknown>;
}

/** Context of the admin routes: the shared services plus the flusher. */
export type AdminContext = AppContext & {
  flusher: AdminFlusher;
  /**
   * Circuit breakers by name (ServiceContext's `CircuitBreaker`s fit), read for the metrics
   * state gauge. Optional: omitted means no breaker series.
   */
  breakers?: Record<string, { readonly state: string }>;
  /** The durable outbox, read for the depth gauges. Optional: omitted means no outbox series. */
  outbox?: { outbox: Pick<Outbox, "depth"> & Partial<Pick<Outbox, "purgeConversation">> };
};

/** An authorised request under `/lull/admin`, matched to a route. */
export interface AdminRequest {
  req: Request;
  url: URL;
  ctx: AdminContext;
  /** The audit name of the token presented (see tokenActor). */
  actor: string;
  /** The path segment the route's `:name` matched, percent-decoded (400 when it is not valid). */
  param(name: string): string;
}

/** A route's handler; it answers 405 itself for the methods it lacks. */
export type AdminHandler = (r: AdminRequest, method: string) => Promise<Response>;
