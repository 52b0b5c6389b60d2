/**
 * The dashboard page (`GET /lull/admin`, `/lull/admin/dashboard`). It holds no data, so it needs
 * no token: its API calls carry the token the operator types in. A fresh nonce per response
 * keeps its content security policy strict.
 */
import { dashboardCsp, renderDashboardHtml } from "../dashboard/render.ts";

/** The page, with its nonce in the HTML and in the CSP header. */
export function dashboardResponse(): Response {
  const nonce = crypto.randomUUID().replace(/-/g, "");
  return new Response(renderDashboardHtml(nonce), {
    status: 200,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
      "content-security-policy": dashboardCsp(nonce),
    },
  });
}
