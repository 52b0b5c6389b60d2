/**
 * The admin dashboard page, served at `GET /lull/admin` and `/lull/admin/dashboard` (and by
 * `lull dashboard --url` on localhost). Its sources are dashboard.html, dashboard.css and
 * dashboard.ts in this folder, compiled by scripts/gen-dashboard.ts into generated.ts.
 *
 * Hosted Supabase rewrites `text/html` answers of GET requests to `text/plain`, so deployed the
 * page renders through `lull dashboard --url <function URL>`; the API it calls works everywhere.
 */
import { DASHBOARD_HTML, DASHBOARD_NONCE_PLACEHOLDER } from "./generated.ts";

export { DASHBOARD_HTML, DASHBOARD_NONCE_PLACEHOLDER };

/** The dashboard page with `nonce` set on its inline script and style (for the CSP header). */
export function renderDashboardHtml(nonce: string): string {
  return DASHBOARD_HTML.replaceAll(DASHBOARD_NONCE_PLACEHOLDER, nonce);
}

/** The Content-Security-Policy that goes with {@link renderDashboardHtml}'s `nonce`. */
export function dashboardCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}
