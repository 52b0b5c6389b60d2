/**
 * Admin routes (`/lull/admin/...`) and the Prometheus scrape (`GET /lull/metrics`): the entry
 * and the route table. Each route group lives in `src/http/admin/` (auth, buffers,
 * conversations, dlq, flush, events, batches, audit, the dashboard page, metrics).
 *
 * Everything here needs `Authorization: Bearer <LULL_ADMIN_TOKEN>`, except the dashboard page
 * itself, which holds no data: its API calls carry the token the operator types in. When
 * LULL_ADMIN_TOKEN is unset the whole surface answers 404, so an unconfigured deployment does
 * not even reveal that it exists. Conversation keys are PII: see `admin/labels.ts`.
 */
import { LullError, ValidationError } from "../core/errors.ts";
import { json, jsonError } from "../core/respond.ts";
import type { AppContext } from "./context.ts";
import { httpStatusOf } from "./errors.ts";
import { auditRoute } from "./admin/audit.ts";
import { authorise } from "./admin/auth.ts";
import { batchesRoute } from "./admin/batches.ts";
import { buffersRoute } from "./admin/buffers.ts";
import type { AdminContext, AdminHandler } from "./admin/context.ts";
import { inspectRoute, purgeRoute } from "./admin/conversations.ts";
import { dashboardResponse } from "./admin/dashboard.ts";
import { dlqItemRoute, dlqListRoute, dlqRequeueRoute } from "./admin/dlq.ts";
import { eventsRoute, latestEventsRoute } from "./admin/events.ts";
import { flushRoute } from "./admin/flush.ts";
import { decodeSegment, getOnly, methodNotAllowed } from "./admin/request.ts";

export type { AdminContext, AdminFlusher } from "./admin/context.ts";
export type { DeliveredBatchView } from "./admin/batches.ts";
export { handleMetrics } from "./admin/metrics.ts";

const PREFIX = "/lull/admin";

/** One row of the route table. */
interface AdminRoute {
  /** The path after `/lull/admin`, by segment; `:name` matches any one segment. */
  path: string[];
  /** Only requests with this method match (the next row gets the others). */
  method?: string;
  run: AdminHandler;
}

/** First match wins. */
const routes: AdminRoute[] = [
  { path: ["buffers"], run: buffersRoute },
  { path: ["conversations", ":conversation"], method: "DELETE", run: purgeRoute },
  { path: ["conversations", ":conversation"], run: inspectRoute },
  { path: ["dlq"], run: dlqListRoute },
  { path: ["dlq", ":batchId"], run: dlqItemRoute },
  { path: ["dlq", ":batchId", "requeue"], run: dlqRequeueRoute },
  { path: ["flush"], run: flushRoute },
  { path: ["audit"], run: auditRoute },
  { path: ["stats"], run: getOnly(async ({ ctx }) => json(200, await ctx.store.stats())) },
  { path: ["events"], run: eventsRoute },
  { path: ["events", "latest"], run: latestEventsRoute },
  { path: ["batches"], run: batchesRoute },
];

/** The route for `segs` and its raw `:name` segments, or null. */
function match(
  segs: string[],
  method: string,
): { run: AdminHandler; params: Map<string, string> } | null {
  for (const r of routes) {
    if (r.path.length !== segs.length || (r.method && r.method !== method)) continue;
    if (!r.path.every((p, i) => p.startsWith(":") || p === segs[i])) continue;
    const params = new Map<string, string>();
    r.path.forEach((p, i) => p.startsWith(":") && params.set(p.slice(1), segs[i]!));
    return { run: r.run, params };
  }
  return null;
}

/** Maps thrown errors to the JSON error shape (statuses: httpStatusOf in src/http/errors.ts). */
function errorResponse(ctx: AppContext, err: unknown): Response {
  const known = httpStatusOf(err);
  if (known && err instanceof LullError) {
    const issues = err instanceof ValidationError && err.issues.length ? err.issues : undefined;
    return jsonError(known.status, err.code, err.message, issues, known.headers);
  }
  ctx.logger.error("admin route failed", {
    error: err instanceof Error ? err.message : String(err),
    code: err instanceof LullError ? err.code : undefined,
  });
  return jsonError(500, "internal_error", "the admin request failed; see the function logs");
}

/**
 * Handles a request under `/lull/admin` (`path` without any `/functions/v1` prefix, e.g.
 * `/lull/admin/dlq`). See DESIGN.md and the route table above.
 */
export async function handleAdmin(
  req: Request,
  path: string,
  ctx: AdminContext,
): Promise<Response> {
  const method = req.method.toUpperCase();
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (trimmed !== PREFIX && !trimmed.startsWith(PREFIX + "/")) {
    return jsonError(404, "not_found", "not found");
  }
  const sub = trimmed.slice(PREFIX.length);

  if (sub === "" || sub === "/dashboard") {
    // Not exposed at all without a token: same 404 as the API.
    if (!ctx.config.adminToken) return jsonError(404, "not_found", "not found");
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed(["GET", "HEAD"]);
    return dashboardResponse();
  }

  const auth = await authorise(req, ctx);
  if (auth.denied) return auth.denied;

  try {
    const found = match(sub.split("/").filter((s) => s !== ""), method);
    if (!found) return jsonError(404, "not_found", `no admin route ${trimmed}`);
    const url = new URL(req.url);
    const param = (name: string) => decodeSegment(found.params.get(name) ?? "");
    return await found.run({ req, url, ctx, actor: auth.actor, param }, method);
  } catch (err) {
    return errorResponse(ctx, err);
  }
}
