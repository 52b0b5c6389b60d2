/**
 * The route table of DESIGN.md. The function sees `/lull/...` on Supabase; locally and behind
 * some proxies the path still carries `/functions/v1`, so both forms are accepted.
 */

/** Route names, also used as the `route` label of `lull_http_requests_total`. */
export type RouteName =
  | "messages"
  | "webhook_whatsapp"
  | "webhook_telegram"
  | "webhook_twilio"
  | "flush"
  | "conversation"
  | "health"
  | "metrics"
  | "admin"
  | "not_found";

/** A matched route. */
export interface RouteMatch {
  name: RouteName;
  /** Methods the route answers; anything else gets 405 with `Allow`. Empty = route decides. */
  methods: readonly string[];
  /** The normalised path (`/lull/...`). */
  path: string;
  /**
   * `:key` of /lull/conversations/:key, or `<bot>` of /lull/webhooks/telegram/<bot>; still
   * percent-encoded.
   */
  param?: string;
}

const EXACT: Record<string, { name: RouteName; methods: readonly string[] }> = {
  "/lull/messages": { name: "messages", methods: ["POST"] },
  "/lull/webhooks/whatsapp": { name: "webhook_whatsapp", methods: ["GET", "POST"] },
  "/lull/webhooks/telegram": { name: "webhook_telegram", methods: ["POST"] },
  "/lull/webhooks/twilio": { name: "webhook_twilio", methods: ["POST"] },
  "/lull/flush": { name: "flush", methods: ["POST"] },
  "/lull/health": { name: "health", methods: ["GET"] },
  "/lull/metrics": { name: "metrics", methods: ["GET"] },
};

/** `/functions/v1/lull/x/` -> `/lull/x`; anything outside `/lull` is returned unchanged. */
export function normalizePath(pathname: string): string {
  let p = pathname;
  if (p === "/functions/v1" || p.startsWith("/functions/v1/")) p = p.slice("/functions/v1".length);
  if (p.length > 1 && p.endsWith("/")) p = p.replace(/\/+$/, "");
  return p === "" ? "/" : p;
}

/** Finds the route for a URL path, or null (404). */
export function matchRoute(pathname: string): RouteMatch | null {
  const path = normalizePath(pathname);
  const exact = EXACT[path];
  if (exact) return { ...exact, path };
  if (path.startsWith("/lull/webhooks/telegram/")) {
    // One route per bot (TELEGRAM_WEBHOOK_SECRET name=secret,...); the handler 404s unknown bots.
    const param = path.slice("/lull/webhooks/telegram/".length);
    if (param.length > 0 && !param.includes("/")) {
      return { name: "webhook_telegram", methods: ["POST"], path, param };
    }
    return null;
  }
  if (path.startsWith("/lull/conversations/")) {
    const param = path.slice("/lull/conversations/".length);
    if (param.length > 0 && !param.includes("/")) {
      return { name: "conversation", methods: ["GET"], path, param };
    }
    return null;
  }
  if (path === "/lull/admin" || path.startsWith("/lull/admin/")) {
    return { name: "admin", methods: [], path };
  }
  return null;
}
