/**
 * `GET /lull/metrics`: the Prometheus scrape, behind the admin token.
 */
import type { OutboxDepth } from "../../outbox/outbox.ts";
import type { StatsSnapshot } from "../../core/types.ts";
import { createMetrics, type Metrics } from "../../observability/metrics.ts";
import type { AppContext } from "../context.ts";
import { authorise } from "./auth.ts";
import type { AdminContext } from "./context.ts";
import { methodNotAllowed } from "./request.ts";

function isRenderable(m: AppContext["metrics"]): m is Metrics {
  return typeof (m as Partial<Metrics>).render === "function";
}

/**
 * `GET /lull/metrics`: this isolate's metrics plus the store's deployment-wide gauges, as
 * Prometheus text. A store outage does not fail the scrape: the store gauges are left out and
 * `lull_store_up` reads 0, which is itself the signal to alert on.
 */
export async function handleMetrics(req: Request, ctx: AdminContext): Promise<Response> {
  const { denied } = await authorise(req, ctx);
  if (denied) return denied;
  const method = req.method.toUpperCase();
  if (method !== "GET" && method !== "HEAD") return methodNotAllowed(["GET", "HEAD"]);

  let stats: StatsSnapshot | undefined;
  try {
    stats = await ctx.store.stats();
  } catch (err) {
    ctx.logger.warn("metrics: store stats unavailable", {
      error: err instanceof Error ? err.message : String(err),
    });
  }
  const breakers: Record<string, string> = {};
  for (const [name, breaker] of Object.entries(ctx.breakers ?? {})) {
    if (breaker) breakers[name] = breaker.state;
  }
  let outbox: OutboxDepth | undefined;
  if (ctx.outbox) {
    try {
      outbox = await ctx.outbox.outbox.depth();
    } catch (err) {
      ctx.logger.warn("metrics: outbox depth unavailable", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
  // A context built with a plain sink still gets the store gauges.
  const metrics = isRenderable(ctx.metrics) ? ctx.metrics : createMetrics();
  return new Response(metrics.render({ stats, breakers, ...(outbox ? { outbox } : {}) }), {
    status: 200,
    headers: {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}
